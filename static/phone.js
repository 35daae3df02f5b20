// The console's phone: the browser registers at the agency's SIP server over WebSocket (JsSIP)
// with short-lived credentials from /phone/credentials, shows its state in the top bar, and
// rings with a banner (whose line, the greeting, who calls) that the live socket pushes the
// moment Mazkira routes the call to her, usually before the INVITE; fetched by the call's SIP
// Call-ID only when the socket is down.
// Answering opens the lead page with the call log running; the record itself comes from the
// SIP server's events, not from here.
// Transfer (T): the panel (/phone/transfer/<Call-ID>, htmx) lists whom the call may go to; a
// transfer it makes carries a SIP address (xfer-<token>) that the caller is referred to (blind),
// or that she calls first with the caller on hold (warm), then connects them (C: her call to him
// ends and the caller is referred to him) or goes back to the caller (R). The SIP server asks
// Mazkira about every REFER and call to such an address, so nothing else can be dialled.
"use strict";

(function () {
  const badge = document.getElementById("phone");
  const box = document.getElementById("phone-call");
  if (!badge || !box || !window.JsSIP) return;
  const banner = document.getElementById("phone-banner");
  const controls = document.getElementById("phone-controls");
  const keypad = document.getElementById("phone-keypad");
  const timer = document.getElementById("phone-timer");
  const audio = document.getElementById("phone-audio");
  const transferBox = document.getElementById("phone-transfer-box");
  const transferState = document.getElementById("phone-transfer-state");
  let callId = null; // the SIP Call-ID of her call now
  let consult = null; // her call to him first (warm), while the caller waits on hold
  let transferTo = null; // the SIP address of the transfer under way
  let ua = null;
  let session = null;
  let refreshTimer = null;
  let ringTimer = null;
  let tickTimer = null;
  let sound = null;
  let registered = false;
  let early = null; // a pushed banner waiting for its INVITE: { call, timer, then }
  let domain = "";
  let contact = ""; // her SIP contact, which names her (sip:<user hex>@….invalid)
  // Tones in the audio (RFC 4733 events through rtpengine), which carriers pass on; SIP INFO
  // is often dropped on the way.
  const DTMF = { transportType: "RFC2833" };
  // Her audio devices: the microphone and speaker she chose (kept in this browser), and a level
  // meter to check the microphone while the panel is open.
  const devices = document.getElementById("phone-devices");
  const level = devices && devices.querySelector("[data-phone-level]");
  let check = null; // { stream, context, frame } while the level is shown
  // The first time she uses the phone in this browser the panel opens by itself to check the
  // microphone, until she says it works (kept in localStorage); a blocked one is said there.
  const firstUse = devices && devices.querySelector("[data-phone-first]");
  const blockedNote = devices && devices.querySelector("[data-phone-blocked]");
  const CHECKED = "mazkira.phone.checked";
  let present = new Set(); // the devices this browser has now (a chosen one may be unplugged)

  function show(state) {
    badge.dataset.state = state;
    const key = "label" + state.charAt(0).toUpperCase() + state.slice(1);
    badge.textContent = badge.dataset[key] || state;
  }
  function idleState() { return registered ? "connected" : ua && ua.isConnected() ? "offline" : "reconnecting"; }

  async function credentials() {
    const answer = await fetch("/phone/credentials", { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!answer.ok) throw new Error("credentials " + answer.status);
    return answer.json();
  }

  // Fresh credentials before these expire; the next REGISTER uses them.
  function refreshLater(seconds) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      try {
        const c = await credentials();
        ua.set("authorization_user", c.username);
        ua.set("password", c.password);
        ua.register();
        refreshLater(c.refresh_in);
      } catch (e) { refreshLater(30); }
    }, Math.max(seconds, 10) * 1000);
  }

  async function microphone() {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      stream.getTracks().forEach((track) => track.stop());
      return true;
    } catch (e) { return false; }
  }

  function chosen(kind) {
    try { return localStorage.getItem("mazkira.phone." + kind) || ""; } catch (e) { return ""; }
  }
  function media() {
    const mic = chosen("audioinput");
    return { audio: present.has(mic) ? { deviceId: { exact: mic } } : true, video: false };
  }
  function speaker() {
    const out = chosen("audiooutput");
    if (present.has(out) && audio.setSinkId) audio.setSinkId(out).catch(() => {});
  }
  async function listDevices() {
    if (!devices || !navigator.mediaDevices.enumerateDevices) return;
    const found = await navigator.mediaDevices.enumerateDevices();
    present = new Set(found.map((device) => device.deviceId));
    for (const select of devices.querySelectorAll("select[data-phone-device]")) {
      const kind = select.dataset.phoneDevice;
      const mine = found.filter((device) => device.kind === kind);
      select.replaceChildren(...mine.map((device, n) =>
        new Option(device.label || kind + " " + (n + 1), device.deviceId, false, device.deviceId === chosen(kind))));
      select.closest("label").hidden = !mine.length || (kind === "audiooutput" && !audio.setSinkId);
    }
  }
  function stopCheck() {
    if (!check) return;
    cancelAnimationFrame(check.frame);
    check.stream.getTracks().forEach((track) => track.stop());
    check.context.close().catch(() => {});
    check = null;
    level.value = 0;
  }
  async function startCheck() {
    stopCheck();
    try {
      const stream = await navigator.mediaDevices.getUserMedia(media());
      const context = new (window.AudioContext || window.webkitAudioContext)();
      const analyser = context.createAnalyser();
      context.createMediaStreamSource(stream).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      check = { stream, context, frame: 0 };
      const measure = () => {
        analyser.getFloatTimeDomainData(samples);
        level.value = Math.min(1, 4 * Math.max(...samples.map(Math.abs)));
        check.frame = requestAnimationFrame(measure);
      };
      measure();
      if (blockedNote) blockedNote.hidden = true;
    } catch (e) { blocked(); }
  }
  function blocked() {
    show("blocked");
    if (blockedNote) blockedNote.hidden = false;
  }
  function checkedBefore() {
    try { return localStorage.getItem(CHECKED) === "1"; } catch (e) { return true; }
  }
  function firstCheck(allowed) {
    if (!devices || checkedBefore()) return;
    if (firstUse) firstUse.hidden = !allowed;
    if (!allowed && blockedNote) blockedNote.hidden = false;
    devices.open = true; // its toggle starts the level meter
  }
  function checkDone() {
    try { localStorage.setItem(CHECKED, "1"); } catch (e) { /* asked again next time */ }
    if (firstUse) firstUse.hidden = true;
    devices.open = false;
  }
  if (devices) {
    devices.querySelector("[data-phone-checked]")?.addEventListener("click", checkDone);
    devices.addEventListener("toggle", () => { if (devices.open) startCheck(); else stopCheck(); });
    devices.addEventListener("change", (event) => {
      const kind = event.target.dataset.phoneDevice;
      if (!kind) return;
      try { localStorage.setItem("mazkira.phone." + kind, event.target.value); } catch (e) { /* kept for this page only */ }
      if (kind === "audiooutput") speaker(); else if (devices.open) startCheck();
    });
  }

  async function start() {
    if (!(await microphone())) { blocked(); firstCheck(false); return; }
    listDevices().catch(() => {}).then(() => firstCheck(true));
    navigator.mediaDevices.addEventListener("devicechange", () => listDevices().catch(() => {}));
    let c;
    try { c = await credentials(); } catch (e) { show("offline"); return; }
    const user = c.uri.slice(4, c.uri.indexOf("@"));
    domain = c.uri.slice(c.uri.indexOf("@") + 1);
    contact = "sip:" + user + "@" + Math.random().toString(36).slice(2, 10) + ".invalid;transport=ws";
    ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(c.ws_url)],
      uri: c.uri,
      authorization_user: c.username,
      password: c.password,
      // The contact names her, so the SIP server can say who answered.
      contact_uri: contact,
      register_expires: 300,
      session_timers: false,
      user_agent: "Mazkira",
    });
    ua.on("connected", () => show(registered ? "connected" : "starting"));
    ua.on("disconnected", () => { registered = false; if (!session) show("reconnecting"); });
    ua.on("registered", () => { registered = true; if (!session) show("connected"); });
    ua.on("unregistered", () => { registered = false; if (!session) show("offline"); });
    ua.on("registrationFailed", () => { registered = false; if (!session) show("offline"); });
    ua.on("newRTCSession", (event) => { if (event.originator === "remote") ringing(event.session, event.request); });
    ua.start();
    refreshLater(c.refresh_in);
  }

  // A ring: two short tones every two seconds, until answered or gone.
  function ring() {
    const beep = (at) => {
      try {
        sound = sound || new (window.AudioContext || window.webkitAudioContext)();
        const osc = sound.createOscillator(), gain = sound.createGain();
        osc.frequency.value = 440; gain.gain.value = 0.06;
        osc.connect(gain); gain.connect(sound.destination);
        osc.start(sound.currentTime + at); osc.stop(sound.currentTime + at + 0.35);
      } catch (e) { /* no sound available */ }
    };
    beep(0); beep(0.5);
    ringTimer = setInterval(() => { beep(0); beep(0.5); }, 2000);
  }
  function quiet() { clearInterval(ringTimer); ringTimer = null; }

  const bannerOf = (call) => Array.from(banner.querySelectorAll("[data-call]")).find((el) => el.dataset.call === call);

  // The banner the live socket pushed (app.js): shown at once, even before her phone has the
  // INVITE; gone again if no INVITE comes while it rings her.
  document.addEventListener("mz:ringing", (event) => {
    const { call, html, seconds } = event.detail;
    if (session) {
      if (ringingCall === call && !session.isEstablished()) banner.innerHTML = html;
      return;
    }
    if (early) clearTimeout(early.timer);
    early = { call: call, timer: setTimeout(() => { if (!session) over(null); }, (seconds + 2) * 1000) };
    show("ringing");
    box.hidden = false;
    controls.hidden = true;
    banner.innerHTML = html;
  });

  let ringingCall = null;
  function ringing(incoming, request) {
    if (session) { incoming.terminate({ status_code: 486, reason_phrase: "Busy Here" }); return; }
    session = incoming;
    ringingCall = request.call_id;
    if (devices && devices.open) devices.open = false; // the call first: the check waits
    // Answered or declined on the pushed banner before the INVITE came: done now.
    const then = early && early.call === request.call_id ? early.then : null;
    if (early) { clearTimeout(early.timer); early = null; }
    show("ringing");
    box.hidden = false;
    controls.hidden = true;
    if (!bannerOf(request.call_id)) banner.textContent = "";
    ring();
    // Fetched only when the socket is down, or (a backstop) when its push has not come 2 s
    // after the INVITE, so the banner and its buttons are never missing.
    const fetchBanner = () => {
      if (session !== incoming || bannerOf(request.call_id)) return;
      fetch("/phone/calls/" + encodeURIComponent(request.call_id), { credentials: "same-origin" })
        .then((answer) => (answer.ok ? answer.text() : ""))
        .then((html) => { if (session === incoming && html && !bannerOf(request.call_id)) banner.innerHTML = html; });
    };
    const socketUp = document.getElementById("live-state")?.classList.contains("on");
    if (socketUp) setTimeout(fetchBanner, 2000); else fetchBanner();
    callId = request.call_id;
    incoming.on("peerconnection", (event) => listen(event.peerconnection));
    incoming.on("confirmed", () => talking(incoming));
    incoming.on("ended", () => over(incoming));
    incoming.on("failed", () => over(incoming));
    if (then) then();
  }

  function listen(connection) {
    connection.addEventListener("track", (event) => {
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      speaker();
      audio.play().catch(() => {});
    });
  }

  function answer() {
    if (!session && early) { early.then = answer; return; }
    if (!session || session.isEstablished()) return;
    quiet();
    stopCheck();
    session.answer({ mediaConstraints: media() });
  }
  // Declined (603) with her contact, which names her: the SIP server tells Mazkira who said no.
  function reject() {
    if (!session && early) { early.then = reject; return; }
    if (session && !session.isEstablished()) session.terminate({ status_code: 603, reason_phrase: "Decline", extraHeaders: ["Contact: <" + contact + ">"] });
  }
  function hangUp() { if (session) session.terminate(); }

  // Her call out from a lead, shown to the callee as the business's number (the SIP server
  // asks Mazkira, which also starts her call log on the lead).
  function dial(number, lead) {
    if (!ua || !registered || session) return;
    const outgoing = ua.call("sip:" + number + "@" + domain, {
      mediaConstraints: media(),
      extraHeaders: ["X-Mazkira-Lead: " + lead],
    });
    session = outgoing;
    outgoing.on("sending", (event) => { callId = event.request.call_id; });
    show("ringing");
    box.hidden = false;
    banner.textContent = "";
    controls.hidden = false;
    listen(outgoing.connection);
    outgoing.on("confirmed", () => talking(outgoing, lead));
    outgoing.on("ended", () => over(outgoing));
    outgoing.on("failed", () => over(outgoing));
  }

  // Answered: the banner gives way to the call's controls, and the lead opens with its log.
  function talking(current, dialled) {
    quiet();
    show("talking");
    const ringingLead = banner.querySelector("[data-lead]");
    const lead = dialled || (ringingLead && ringingLead.dataset.lead);
    banner.textContent = "";
    controls.hidden = false;
    const since = Date.now();
    tickTimer = setInterval(() => {
      const s = Math.floor((Date.now() - since) / 1000);
      timer.textContent = String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
    }, 1000);
    window.addEventListener("beforeunload", stay);
    if (lead && window.htmx) {
      const path = "/leads/" + lead;
      // In place, so this page (and the call in it) stays.
      htmx.ajax("GET", path, { target: "#main", select: "#main", swap: "outerHTML" }).then(() => {
        if (session === current) history.pushState({}, "", path + "#call-log");
      });
    }
  }

  function over(current) {
    if (session !== current) return;
    if (consult) { const c = consult; consult = null; c.terminate(); }
    transferTo = null;
    callId = null;
    closeTransfer();
    say("");
    transferButtons(false);
    quiet();
    clearInterval(tickTimer);
    session = null;
    ringingCall = null;
    if (early) { clearTimeout(early.timer); early = null; }
    window.removeEventListener("beforeunload", stay);
    banner.textContent = "";
    controls.hidden = true;
    keypad.hidden = true;
    box.hidden = true;
    timer.textContent = "00:00";
    controls.querySelectorAll("[aria-pressed]").forEach((b) => b.setAttribute("aria-pressed", "false"));
    audio.srcObject = null;
    show(idleState());
  }

  // Leaving the page would drop the call: the browser asks first.
  function stay(event) { event.preventDefault(); event.returnValue = ""; }

  // --- transfer ---------------------------------------------------------------------------
  function say(what) {
    transferState.hidden = !what;
    transferState.textContent = what ? transferState.dataset["label" + what.charAt(0).toUpperCase() + what.slice(1)] : "";
  }
  function transferButtons(consulting) {
    controls.querySelector('[data-phone="connect"]').hidden = !consulting;
    controls.querySelector('[data-phone="return"]').hidden = !consulting;
  }
  function closeTransfer() {
    transferBox.hidden = true;
    transferBox.textContent = "";
    controls.querySelector('[data-phone="transfer"]').setAttribute("aria-expanded", "false");
  }
  function openTransfer() {
    if (!session || !session.isEstablished() || !callId || consult || transferTo) return;
    if (!transferBox.hidden) { closeTransfer(); return; }
    say("");
    transferBox.hidden = false;
    controls.querySelector('[data-phone="transfer"]').setAttribute("aria-expanded", "true");
    // fetch, not htmx.ajax: htmx drops a second request from the same source while the lead
    // page it opened on answering is still loading.
    fetch("/phone/transfer/" + encodeURIComponent(callId), { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then((answer) => answer.text())
      .then((html) => {
        if (transferBox.hidden) return;
        transferBox.innerHTML = html;
        htmx.process(transferBox);
        const first = transferBox.querySelector("button, input");
        if (first) first.focus();
      });
  }
  // The panel answered with a transfer made: carry it out.
  document.addEventListener("htmx:afterSettle", () => {
    const made = transferBox.querySelector("[data-transfer-token]");
    if (!made || made.dataset.started || !session) return;
    made.dataset.started = "1";
    transferTo = "sip:" + made.dataset.transferToken + "@" + domain;
    if (made.dataset.transferKind === "warm") callFirst(); else refer();
  });
  // The caller is referred to him; when his phone answers the caller, she leaves the call.
  function refer() {
    const current = session;
    current.refer(transferTo, {
      eventHandlers: {
        requestFailed: () => { if (session === current) { transferTo = null; unhold(); say("refused"); } },
        accepted: () => { if (session === current) current.terminate(); },
        failed: () => { if (session === current) { transferTo = null; unhold(); say("failed"); } },
      },
    });
  }
  function unhold() {
    if (session && session.isOnHold().local) session.unhold();
    controls.querySelector('[data-phone="hold"]').setAttribute("aria-pressed", "false");
    const receivers = session && session.connection ? session.connection.getReceivers() : [];
    if (receivers.length) { audio.srcObject = new MediaStream(receivers.map((r) => r.track)); audio.play().catch(() => {}); }
  }
  function callFirst() {
    session.hold();
    controls.querySelector('[data-phone="hold"]').setAttribute("aria-pressed", "true");
    const first = ua.call(transferTo, { mediaConstraints: media() });
    consult = first;
    listen(first.connection);
    first.on("confirmed", () => { if (consult === first) transferButtons(true); });
    const gone = () => {
      if (consult !== first) return; // she connected them, or the call is over
      consult = null;
      transferTo = null;
      transferButtons(false);
      closeTransfer();
      unhold();
      say("declined");
    };
    first.on("ended", gone);
    first.on("failed", gone);
  }
  function connect() {
    if (!consult || !consult.isEstablished()) return;
    const first = consult;
    consult = null;
    transferButtons(false);
    first.terminate();
    refer();
  }
  function backToCaller() {
    if (!consult) return;
    consult.terminate(); // its "ended" brings her back to the caller
  }

  function toggle(name) {
    if (!session || !session.isEstablished()) return;
    const button = controls.querySelector(`[data-phone="${name}"]`);
    if (name === "mute") {
      if (session.isMuted().audio) session.unmute({ audio: true }); else session.mute({ audio: true });
      button.setAttribute("aria-pressed", String(session.isMuted().audio));
    } else if (name === "hold") {
      if (session.isOnHold().local) session.unhold(); else session.hold();
      button.setAttribute("aria-pressed", String(session.isOnHold().local));
    } else if (name === "keypad") {
      keypad.hidden = !keypad.hidden;
      button.setAttribute("aria-expanded", String(!keypad.hidden));
    }
  }

  document.addEventListener("click", (event) => {
    const call = event.target.closest("[data-phone-dial]");
    if (call) { dial(call.dataset.phoneDial, call.dataset.phoneLead); return; }
    const button = event.target.closest("[data-phone], [data-dtmf]");
    if (!button || !box.contains(button)) return;
    const action = button.dataset.phone;
    if (button.dataset.dtmf && session && session.isEstablished()) session.sendDTMF(button.dataset.dtmf, DTMF);
    else if (action === "answer") answer();
    else if (action === "reject") reject();
    else if (action === "hangup") hangUp();
    else if (action === "transfer") openTransfer();
    else if (action === "connect") connect();
    else if (action === "return") backToCaller();
    else if (action) toggle(action);
  });

  // While a call rings or goes on, its keys come first (A answers rather than opening alerts).
  window.addEventListener("keydown", (event) => {
    if (!(session || early) || event.ctrlKey || event.metaKey || event.altKey) return;
    const el = document.activeElement;
    if (el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName))) return;
    const key = window.mazkira && window.mazkira.keyOf ? window.mazkira.keyOf(event) : event.key.toLowerCase();
    // A pushed banner rings before its INVITE: A and X are kept for when it comes.
    const ringingNow = !session || !session.isEstablished();
    let handled = true;
    if (ringingNow && key === "a") answer();
    else if (ringingNow && key === "x") reject();
    else if (!ringingNow && key === "q") hangUp();
    else if (!ringingNow && key === "m") toggle("mute");
    else if (!ringingNow && key === "l") toggle("hold");
    else if (!ringingNow && key === "t") openTransfer();
    else if (!ringingNow && key === "c" && consult) connect();
    else if (!ringingNow && key === "r" && consult) backToCaller();
    else if (!ringingNow && event.key === "Escape" && !transferBox.hidden) closeTransfer();
    else if (!ringingNow && /^[0-9*#]$/.test(event.key) && !keypad.hidden) session.sendDTMF(event.key, DTMF);
    else handled = false;
    if (handled) { event.preventDefault(); event.stopImmediatePropagation(); }
  }, true);

  // For the browser tests: the call's WebRTC connection, to read its statistics.
  window.mazkiraPhone = {
    connection: () => (consult ? consult.connection : session ? session.connection : null),
    state: () => badge.dataset.state,
    session: () => session,
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
