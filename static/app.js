// Mazkira's small script: only what htmx cannot do by itself — keyboard shortcuts, ticking
// clocks, and a last save of the call log when the tab is closed.
"use strict";

(function () {
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));

  // The one way a length of time reads, the twin of console/base/labels.py `duration`: the
  // page carries its formats in the reader's language (`duration_words`).
  const words = Object.assign(
    { s: "%(seconds)s s", m: "%(minutes)s m", h: "%(hours)s h %(minutes)02d m", d: "%(days)s d %(hours)s h", over: "over by %(duration)s" },
    JSON.parse(document.documentElement.dataset.durations || "{}"));
  function fill(format, values) {
    return format.replace(/%\((\w+)\)(02d|s)/g, (all, name, kind) => String(values[name]).padStart(kind === "02d" ? 2 : 0, "0"));
  }
  function duration(seconds, days = true) {
    const whole = Math.max(0, Math.floor(seconds));
    if (whole < 60) return fill(words.s, { seconds: whole });
    const hours = Math.floor(whole / 3600), minutes = Math.floor(whole / 60) % 60;
    if (!hours) return fill(words.m, { minutes: minutes });
    if (days && hours >= 24) return fill(words.d, { days: Math.floor(hours / 24), hours: hours % 24 });
    return fill(words.h, { hours: hours, minutes: minutes });
  }
  function timeLeft(seconds) { return seconds >= 0 ? duration(seconds) : fill(words.over, { duration: duration(-seconds) }); }
  window.mazkira = Object.assign(window.mazkira || {}, { duration: duration, timeLeft: timeLeft });

  // Waiting times, what is left and the call timer tick without a round trip.
  function pad(n) { return String(n).padStart(2, "0"); }
  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-timer-since]").forEach((el) => {
      const end = callIdle(el, now);
      const s = Math.max(0, Math.floor((end - Date.parse(el.dataset.timerSince)) / 1000));
      el.textContent = (s >= 3600 ? Math.floor(s / 3600) + ":" : "") + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
    });
    // A queue row's times say when in `datetime` alone (partials/lead_row.html).
    document.querySelectorAll("time[data-due], time.countdown").forEach((el) => {
      const left = (Date.parse(el.dataset.due || el.dateTime) - now) / 1000;
      el.textContent = timeLeft(left);
      el.classList.toggle("red", left < 0);
      el.classList.toggle("amber", left >= 0 && !!el.dataset.warn && now >= Date.parse(el.dataset.warn));
    });
    document.querySelectorAll("time[data-since], time.waited").forEach((el) => {
      const seconds = (now - Date.parse(el.dataset.since || el.dateTime)) / 1000;
      el.textContent = duration(seconds);
      el.classList.toggle("late", seconds >= 5 * 60);
      el.classList.toggle("very-late", seconds >= 30 * 60);
    });
  }
  // A call log nobody types in: a minute before the idle time (data-idle-seconds, the
  // server's CALL_IDLE_MINUTES) she is asked whether she is still on the call; at it the timer
  // stops where the server will end the talk and she is asked to wrap up. Returns the moment
  // the timer shows.
  function callIdle(el, now) {
    if (el.dataset.timerUntil) return Date.parse(el.dataset.timerUntil);
    const idle = Number(el.dataset.idleSeconds) * 1000;
    if (!idle || !el.dataset.activeAt) return now;
    const form = el.closest("form");
    const quiet = now - Date.parse(el.dataset.activeAt), stopped = quiet > idle;
    const ask = form && form.querySelector("[data-idle-ask]"), told = form && form.querySelector("[data-idle-stopped]");
    if (ask) ask.hidden = stopped || quiet < idle - 60000;
    if (told && told.hidden !== !stopped) {
      told.hidden = !stopped;
      if (stopped) form.querySelector('[data-key-target="outcome"]')?.focus();
    }
    if (!stopped) return now;
    el.dataset.timerUntil = new Date(Date.parse(el.dataset.activeAt) + idle).toISOString();
    el.classList.add("stopped");
    return Date.parse(el.dataset.timerUntil);
  }
  // What counts as activity on the call is what the server counts: typing, "still on the call".
  function callActive(form) {
    const timer = form && form.querySelector("[data-timer-since][data-active-at]");
    if (timer && !timer.dataset.timerUntil) { timer.dataset.activeAt = new Date().toISOString(); tick(); }
  }
  document.addEventListener("input", (event) => callActive(event.target.closest && event.target.closest("form[data-autosave]")));
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-still-here]");
    if (button) callActive(button.closest("form"));
  });
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);

  // Shortcuts go by the key's place, not its letter: on the Hebrew layout J arrives as "ח".
  function keyOf(event) {
    const code = event.code || "";
    if (/^Key[A-Z]$/.test(code)) return code.slice(3).toLowerCase();
    if (/^Digit[0-9]$/.test(code)) return code.slice(5);
    if (code === "Slash") return event.shiftKey ? "?" : "/";
    return (event.key || "").toLowerCase();
  }
  window.mazkira.keyOf = keyOf;

  // The queue: J/K (or Tab) move the selection, Enter opens, C takes.
  function rows() { return Array.from(document.querySelectorAll("[data-keyboard-list] tbody tr.lead-row")); }
  function selected() { return document.querySelector("[data-keyboard-list] tr.selected"); }
  function select(delta) {
    const list = rows();
    if (!list.length) return;
    const current = list.indexOf(selected());
    const next = list[Math.min(list.length - 1, Math.max(0, current + delta))] || list[0];
    list.forEach((r) => r.classList.remove("selected"));
    next.classList.add("selected");
    next.focus({ preventScroll: false });
  }
  function click(selector, scope) {
    const el = (scope || document).querySelector(selector);
    if (el) { el.click(); return true; }
    return false;
  }
  function focus(name) {
    const el = document.querySelector(`[data-key-target="${name}"]`);
    if (el) { el.focus(); return true; }
    return false;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const help = document.getElementById("shortcuts");
    if (event.key === "Escape" && typing(document.activeElement)) { document.activeElement.blur(); return; }
    if (typing(event.target)) return;
    const key = keyOf(event);
    let handled = true;
    if (key === "?") { if (help && !help.open) help.showModal(); }
    else if (key === "j") select(1);
    else if (key === "k") select(-1);
    else if (key === "enter" && selected() && (event.target === selected() || event.target === document.body)) click("[data-open]", selected());
    else if (key === "c" && selected()) handled = click("[data-claim]", selected());
    else if (key === "e") handled = focus("notes");
    else if (key === "/") handled = focus("search") || click('[data-key="/"]');
    else if (key === "h") handled = focus("handoff");
    else handled = click(`[data-key="${CSS.escape(key)}"]`);
    if (handled) event.preventDefault();
  });

  // A row reached by Tab is the selected one, as if J had brought her there.
  document.addEventListener("focusin", (event) => {
    const row = event.target.closest && event.target.closest("[data-keyboard-list] tr.lead-row");
    if (!row || row.classList.contains("selected")) return;
    rows().forEach((r) => r.classList.remove("selected"));
    row.classList.add("selected");
  });

  // "Load more" by keyboard keeps her there: the next "load more", or the first row it brought.
  let loadingFrom = -1;
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt.matches && event.detail.elt.matches("[data-more]")) loadingFrom = rows().length;
  });
  document.addEventListener("htmx:afterSettle", () => {
    if (loadingFrom < 0 || document.activeElement !== document.body) return;
    const next = document.querySelector("[data-more]") || rows()[loadingFrom];
    loadingFrom = -1;
    if (next) next.focus();
  });

  // Clicking a queue row opens its lead (links and buttons inside keep their own meaning).
  document.addEventListener("click", (event) => {
    const row = event.target.closest("[data-keyboard-list] tr.lead-row");
    if (row && !event.target.closest("a, button, input, select, form")) window.location = row.querySelector("[data-open]").href;
  });

  // The call log saves every few seconds through htmx. Until the server has what she typed, a
  // copy waits in localStorage: a reload, a closed tab or a dropped network loses nothing.
  const draftKey = (form) => "mazkira:call:" + form.dataset.autosave;
  function snapshot(form) {
    const fields = {};
    new FormData(form).forEach((value, name) => { if (name !== "csrf_token") fields[name] = value; });
    return fields;
  }
  function keepCopy(form) {
    try { localStorage.setItem(draftKey(form), JSON.stringify(snapshot(form))); } catch (e) { /* full or private */ }
  }
  function restoreCopy(form) {
    let fields = null;
    try { fields = JSON.parse(localStorage.getItem(draftKey(form)) || "null"); } catch (e) { fields = null; }
    if (!fields) return;
    Object.entries(fields).forEach(([name, value]) => {
      const field = form.elements.namedItem(name);
      if (field && "value" in field) field.value = value;
    });
    if (window.htmx) htmx.trigger(form, "focusout");
  }
  function lastSave() {
    const form = document.querySelector("form[data-autosave]");
    if (form && navigator.sendBeacon) navigator.sendBeacon(form.dataset.autosave, new FormData(form));
  }
  document.addEventListener("input", (event) => {
    const form = event.target.closest && event.target.closest("form[data-autosave]");
    if (form) keepCopy(form);
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const form = document.querySelector("form[data-autosave]");
    if (!form || !event.detail.successful) return;
    const path = event.detail.requestConfig && event.detail.requestConfig.path;
    const sent = event.detail.requestConfig && event.detail.requestConfig.parameters;
    const saved = path === form.dataset.autosave || (path || "").endsWith("/wrap-up");
    if (!saved) return;
    const current = JSON.stringify(snapshot(form));
    const sentFields = sent ? JSON.stringify(Object.fromEntries(
      Object.entries(sent instanceof FormData ? Object.fromEntries(sent) : sent).filter(([n]) => n !== "csrf_token"))) : "";
    if ((path || "").endsWith("/wrap-up") || sentFields === current) localStorage.removeItem(draftKey(form));
  });
  document.addEventListener("submit", (event) => {
    if (event.target.matches("form[data-autosave]")) localStorage.removeItem(draftKey(event.target));
  });
  document.addEventListener("DOMContentLoaded", () => {
    const form = document.querySelector("form[data-autosave]");
    if (form) restoreCopy(form);
  });
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") lastSave(); });
  window.addEventListener("pagehide", lastSave);
})();

// The live console. htmx's ws extension keeps one socket per page (reconnecting with backoff);
// this extension says hello (page, cursor), drops what the page has already seen, and turns the
// server's fragments into updates: rows upserted in place, counts refreshed, a sound for news.
(function () {
  const body = () => document.body;
  const cursor = {};
  let refreshTimer = null;

  function userId() { return body().dataset.user || ""; }

  // The page's socket, and the mode its last hello told: a call log opened or wrapped up in
  // place (htmx) says hello again, so the others see "on a call" start and end at once.
  let live = null;
  let toldMode = null;

  function currentMode() {
    return document.querySelector("form[data-autosave]") ? "calling" : (body().dataset.mode || "viewing");
  }

  // Where the page is: #main's own, since a page opened in place (the lead page when she
  // answers a call) brings its own #main; else the body's.
  let toldPage = null;
  function currentPage() {
    const main = document.getElementById("main");
    return (main && main.dataset.page) || body().dataset.page || "other";
  }

  function hello(socket) {
    toldMode = currentMode();
    toldPage = currentPage();
    socket.send(JSON.stringify({
      type: "hello",
      page: toldPage,
      mode: toldMode,
      cursor: cursor,
      since: body().dataset.since,
    }));
  }

  function filtersAllow(row) {
    const params = new URLSearchParams(location.search);
    for (const key of ["business", "channel", "stage"]) {
      const wanted = params.get(key);
      if (wanted && row.dataset[key] !== wanted) return false;
    }
    const holder = params.get("holder");
    if (holder === "mine" && row.dataset.holder !== userId()) return false;
    if (holder === "unassigned" && row.dataset.holder) return false;
    return true;
  }

  function taskAllowed(row) {
    const status = new URLSearchParams(location.search).get("status") || "open";
    return (row.dataset.for || "").split(" ").includes(userId()) && row.dataset.status === status;
  }

  // The queue's order, (queue_rank, queue_at, id) as console/leads/leads.py sorts it; each row
  // carries its place as "rank.time.id" (fixed-width time), "load more" the place it goes on from.
  function parsePlace(text) {
    const [rank, at, id] = (text || "").split(".");
    return [Number(rank), at || "", id || ""];
  }
  function precedes(x, y) {
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i];
    return false;
  }

  // Where a live queue row goes: before the first row it precedes, or last; but a row whose
  // place is past where "load more" goes on from is left for it to bring in its turn.
  function placeRow(el, target, existing) {
    const place = parsePlace(el.dataset.place);
    const more = document.querySelector("[data-more]");
    if (more && precedes(parsePlace(more.dataset.after), place)) {
      if (existing) { el.setAttribute("hx-swap-oob", "delete"); return el; }
      el.remove();
      return null;
    }
    const others = Array.from(target.querySelectorAll("tr.lead-row")).filter((r) => r !== existing);
    const next = others.find((r) => precedes(place, parsePlace(r.dataset.place))) || null;
    if (existing) {
      if (existing.classList.contains("selected")) el.classList.add("selected");
      const following = others.find((r) => existing.compareDocumentPosition(r) & Node.DOCUMENT_POSITION_FOLLOWING) || null;
      if (following === next) { el.setAttribute("hx-swap-oob", "true"); return el; }
      if (document.activeElement === existing) setTimeout(() => document.getElementById(el.id)?.focus(), 0);
      existing.remove();
    }
    const wrapper = document.createElement(target.tagName);
    wrapper.setAttribute("hx-swap-oob", next ? "beforebegin:#" + next.id : "beforeend:#" + target.id);
    el.replaceWith(wrapper);
    wrapper.appendChild(el);
    target.querySelectorAll(".empty-row").forEach((r) => r.remove());
    return wrapper;
  }

  // "50 of 224": the rows on the page, of the leads the filters let through.
  function countShown() {
    const status = document.getElementById("queue-more");
    if (!status) return;
    const shown = status.querySelector("[data-shown]"), matching = status.querySelector("[data-matching]");
    if (shown) shown.textContent = document.querySelectorAll("#queue-rows tr.lead-row").length;
    const nav = document.querySelector("nav.filters[data-matching]");
    if (matching && nav) matching.textContent = nav.dataset.matching;
  }

  function upsert(el) {
    const target = document.querySelector(el.dataset.upsert);
    const existing = document.getElementById(el.id);
    const allowed = el.dataset.upsert === "#task-rows" ? taskAllowed(el) : filtersAllow(el);
    el.removeAttribute("data-upsert");
    if (!target || !allowed) {
      if (existing) { el.setAttribute("hx-swap-oob", "delete"); return el; }
      el.remove();
      return null;
    }
    if (el.dataset.place && target.id === "queue-rows") return placeRow(el, target, existing);
    if (existing) {
      // A replaced row keeps the keyboard selection it had.
      if (existing.classList.contains("selected")) el.classList.add("selected");
      el.setAttribute("hx-swap-oob", "true");
      return el;
    }
    const wrapper = document.createElement(target.tagName);
    wrapper.setAttribute("hx-swap-oob", (el.dataset.upsertAt || "beforeend") + ":#" + target.id);
    el.removeAttribute("data-upsert-at");
    el.replaceWith(wrapper);
    wrapper.appendChild(el);
    target.querySelectorAll(".empty-row").forEach((r) => r.remove());
    return wrapper;
  }

  function refreshCounts() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      if (!document.querySelector("nav.filters")) return;
      htmx.ajax("GET", location.pathname + location.search, {
        target: "nav.filters", select: "nav.filters", swap: "outerHTML", headers: { "HX-Request": "true" },
      }).then(() => { setTitle(); countShown(); });
    }, 400);
  }

  const baseTitle = document.title.replace(/^\(\d+\)\s*/, "");
  function setTitle() {
    const nav = document.querySelector("nav.filters[data-waiting]");
    if (!nav) return;
    const waiting = parseInt(nav.dataset.waiting, 10) || 0;
    document.title = (waiting ? "(" + waiting + ") " : "") + baseTitle;
  }

  // The news sound. A browser lets a page make sound only after a gesture on it (Chrome also
  // counts one on the page before, so the sign-in click carries over to the inbox): the page starts
  // its audio at once, resumes it on her first click or key if it was held back, and meanwhile
  // shows "sound is off — click to turn on" (#sound-off, for those who get news).
  let audio = null;
  const beeps = { played: 0 };
  function showSound() {
    const button = document.getElementById("sound-off");
    if (button) button.hidden = !audio || audio.state === "running";
  }
  function startSound() {
    if (!document.getElementById("sound-off")) return;
    if (!audio) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      audio = new Context();
      audio.addEventListener("statechange", showSound);
    }
    if (audio.state === "suspended") audio.resume().catch(() => { /* still held back */ });
    showSound();
  }
  document.addEventListener("pointerdown", () => { if (!audio || audio.state !== "running") startSound(); }, true);
  document.addEventListener("keydown", () => { if (!audio || audio.state !== "running") startSound(); }, true);
  document.addEventListener("DOMContentLoaded", startSound);
  function beep() {
    if (!audio || audio.state !== "running") return;
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = 880; gain.gain.value = 0.08;
    osc.connect(gain); gain.connect(audio.destination);
    osc.start(); osc.stop(audio.currentTime + 0.18);
    beeps.played += 1;
  }
  window.mazkira.sound = () => ({ state: audio ? audio.state : "none", played: beeps.played });

  function attention(el) {
    beep();
    if ("Notification" in window && Notification.permission === "granted") {
      const note = new Notification(el.dataset.title || "", { body: el.dataset.body || "", tag: el.dataset.href });
      note.onclick = () => { window.focus(); location.href = el.dataset.href; };
    }
  }

  // The wallboard: fetch the board again at most once a second, however many events arrive.
  let boardTimer = null;
  function refreshBoard() {
    if (boardTimer) return;
    boardTimer = setTimeout(() => {
      boardTimer = null;
      if (!document.getElementById("wallboard")) return;
      htmx.ajax("GET", "/agency/wallboard", { target: "#wallboard", select: "#wallboard", swap: "outerHTML" });
    }, 1000);
  }

  function softReload() {
    htmx.ajax("GET", location.pathname + location.search, { target: "#main", select: "#main", swap: "outerHTML" });
  }

  function personalize(root) {
    const me = userId();
    (root || document).querySelectorAll("[data-only-for]").forEach((el) => { el.hidden = el.dataset.onlyFor !== me; });
    (root || document).querySelectorAll("tr.lead-row[data-holder]").forEach((row) => {
      row.classList.toggle("mine", !!me && row.dataset.holder === me);
    });
  }

  // Where htmx will put a pushed element ("true" or a style: the element of its id; "style:selector":
  // that selector). A part this page does not show (a row filtered out or not loaded yet, a lead's
  // panel this page has not) has nowhere to go and is dropped, rather than an htmx error.
  function hasTarget(el) {
    const swap = el.getAttribute("hx-swap-oob") || "true", colon = swap.indexOf(":");
    if (colon >= 0) return !!document.querySelector(swap.slice(colon + 1));
    return !!el.id && !!document.getElementById(el.id);
  }

  function transform(text) {
    const match = /^<!--mz (\{.*?\})-->/.exec(text);
    if (match) {
      const meta = JSON.parse(match[1]);
      if (meta.b && meta.s) {
        if ((cursor[meta.b] || 0) >= meta.s) return "";
        cursor[meta.b] = meta.s;
      }
      text = text.slice(match[0].length);
    }
    const template = document.createElement("template");
    template.innerHTML = text;
    const fragment = template.content;
    fragment.querySelectorAll("template[data-reload]").forEach((el) => {
      el.remove();
      if (el.dataset.reload === "page") location.reload(); else softReload();
    });
    fragment.querySelectorAll("template[data-refresh]").forEach((el) => {
      el.remove();
      if (el.dataset.refresh === "wallboard") refreshBoard(); else refreshCounts();
    });
    fragment.querySelectorAll("template[data-attention]").forEach((el) => { el.remove(); attention(el); });
    // A call ringing her phone: its banner, for phone.js to show at once.
    fragment.querySelectorAll("template[data-ringing]").forEach((el) => {
      el.remove();
      const detail = { call: el.dataset.ringing, seconds: Number(el.dataset.seconds) || 20, html: el.innerHTML };
      document.dispatchEvent(new CustomEvent("mz:ringing", { detail: detail }));
    });
    Array.from(fragment.children).forEach((el) => { if (el.dataset && el.dataset.upsert) upsert(el); });
    Array.from(fragment.children).forEach((el) => { if (!hasTarget(el)) el.remove(); });
    const holder = document.createElement("div");
    holder.appendChild(fragment);
    return holder.innerHTML;
  }

  htmx.defineExtension("mz-live", {
    transformResponse: function (text, xhr) { return xhr ? text : transform(text); },
  });

  // Back within a second or two after a drop: htmx-ext-ws would wait up to 64 s (full jitter);
  // here 0.25 s, 0.5 s, then every second, each shortened by up to a quarter so that a restarted
  // server is not met by every console at the same instant.
  htmx.config.wsReconnectDelay = (retries) => Math.min(1000, 250 * 2 ** retries) * (1 - Math.random() / 4);

  // What #live-state shows: "on" (a green dot), "reconnecting" (in words), "off" (a grey dot:
  // before the first connection, or refused for good). It is drawn again when a page swapped in
  // place brings a new one.
  let liveState = "off";
  let socket = null;
  function showLive(state) {
    if (state) liveState = state;
    const el = document.getElementById("live-state");
    if (!el) return;
    el.classList.toggle("on", liveState === "on");
    el.dataset.state = liveState;
    el.textContent = liveState === "reconnecting" ? el.dataset.labelReconnecting || "" : "";
  }

  // The extension retries from a timer it keeps, calling its socket wrapper's init(), which
  // closes an open socket to open another: a socket already back (opened at once on `online`)
  // is left alone. (htmx 2 keeps the wrapper in the body's internal data.)
  function socketWrapper() {
    const internal = body()["htmx-internal-data"], wrapper = internal && internal.webSocket;
    if (wrapper && !wrapper.mzInit) {
      wrapper.mzInit = wrapper.init;
      wrapper.init = function () {
        if (this.socket && this.socket.readyState <= WebSocket.OPEN) return undefined;
        return this.mzInit();
      };
    }
    return wrapper;
  }

  document.addEventListener("htmx:wsOpen", (event) => {
    socket = event.detail.event.target;
    live = event.detail.socketWrapper;
    socketWrapper();
    showLive("on");
    hello(live);
  });
  document.addEventListener("htmx:wsClose", (event) => {
    const closed = event.detail.event;
    socketWrapper();
    if (socket && closed.target !== socket) return;  // not the open socket: an old one, replaced
    socket = live = null;
    // 1006, 1011, 1012, 1013: the extension tries again; any other code is final
    showLive([1006, 1011, 1012, 1013].includes(closed.code) || !navigator.onLine ? "reconnecting" : "off");
  });
  window.addEventListener("offline", () => { if (body().hasAttribute("ws-connect")) showLive("reconnecting"); });
  // The network is back: a fresh socket now (one that lived through the drop may be dead), its
  // hello replays what the page missed.
  window.addEventListener("online", () => {
    const wrapper = socketWrapper();
    if (wrapper && !(wrapper.socket && wrapper.socket.readyState === WebSocket.CONNECTING)) wrapper.mzInit();
  });
  document.addEventListener("htmx:wsAfterMessage", () => { personalize(); countShown(); });
  document.addEventListener("htmx:afterSettle", (event) => {
    personalize(event.target);
    showLive();
    showSound();
    if (live && (currentMode() !== toldMode || currentPage() !== toldPage)) hello(live);
  });
  document.addEventListener("DOMContentLoaded", () => {
    personalize();
    setTitle();
    const button = document.getElementById("enable-notifications");
    if (button && "Notification" in window && Notification.permission === "default") {
      button.hidden = false;
      button.addEventListener("click", () => Notification.requestPermission().then(() => { button.hidden = true; }));
    }
  });
})();

// Editors with rows added by htmx (the hours' windows): a [data-remove] button takes away the
// closest element its value names.
document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("button[data-remove]");
  if (button) button.closest(button.dataset.remove)?.remove();
});

// A canned reply chosen from the list is put in the message box, to be read and sent.
document.addEventListener("change", (event) => {
  const picker = event.target.closest && event.target.closest("select[data-canned-for]");
  if (!picker || !picker.value) return;
  const box = document.getElementById(picker.dataset.cannedFor);
  if (box) { box.value = picker.value; box.focus(); }
  picker.value = "";
});

// A statement's "Print" button (no inline script: the CSP allows none).
document.addEventListener("click", (event) => {
  if (event.target.closest && event.target.closest("button[data-print]")) window.print();
});

// The owner's offline copy of his last calls (static/sw.js) never outlives his sign-in: any page
// of a guest (after signing out) or of another role deletes it.
if ("caches" in window && !document.body.classList.contains("role-owner")) {
  caches.keys().then((names) => Promise.all(
    names.filter((name) => name.startsWith("mazkira-portal-")).map((name) => caches.delete(name)),
  )).catch(() => {});
}
