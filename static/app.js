// Mazkira's small script: only what htmx cannot do by itself — keyboard shortcuts, ticking
// clocks, and a last save of the call log when the tab is closed.
"use strict";

(function () {
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));

  // Waiting times and the call timer tick without a round trip.
  function pad(n) { return String(n).padStart(2, "0"); }
  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-timer-since]").forEach((el) => {
      const s = Math.max(0, Math.floor((now - Date.parse(el.dataset.timerSince)) / 1000));
      el.textContent = (s >= 3600 ? Math.floor(s / 3600) + ":" : "") + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
    });
    document.querySelectorAll("time[data-since]").forEach((el) => {
      const minutes = Math.floor((now - Date.parse(el.dataset.since)) / 60000);
      el.classList.toggle("late", minutes >= 5);
      el.classList.toggle("very-late", minutes >= 30);
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);

  // The queue: J/K move the selection, Enter opens, C takes.
  function rows() { return Array.from(document.querySelectorAll("[data-keyboard-list] tbody tr[data-href]")); }
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
    const key = event.key.toLowerCase();
    let handled = true;
    if (key === "?") { if (help && !help.open) help.showModal(); }
    else if (key === "j") select(1);
    else if (key === "k") select(-1);
    else if (key === "enter" && selected()) click("[data-open]", selected());
    else if (key === "c" && selected()) handled = click("[data-claim]", selected());
    else if (key === "e") handled = focus("notes");
    else if (key === "/") handled = focus("search") || click('[data-key="/"]');
    else if (key === "h") handled = focus("handoff");
    else handled = click(`[data-key="${CSS.escape(key)}"]`);
    if (handled) event.preventDefault();
  });

  // Clicking a queue row opens its lead (links and buttons inside keep their own meaning).
  document.addEventListener("click", (event) => {
    const row = event.target.closest("[data-keyboard-list] tr[data-href]");
    if (row && !event.target.closest("a, button, input, select, form")) window.location = row.dataset.href;
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
