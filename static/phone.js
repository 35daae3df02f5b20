// The console's phone: the browser registers at the agency's SIP server over WebSocket (JsSIP)
// with short-lived credentials from /phone/credentials, shows its state in the top bar, and
// rings with a banner (whose line, the greeting, who calls) that the live socket pushes the
// moment Mazkira routes the call to her, usually before the INVITE; fetched by the call's SIP
// Call-ID only when the socket is down.
// Answering opens the lead page with the call log running; the record itself comes from the
// SIP server's events, not from here.
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
  let ua = null;
  let session = null;
  let refreshTimer = null;
  let ringTimer = null;
  let tickTimer = null;
  let sound = null;
  let registered = false;
  let early = null; // a pushed banner waiting for its INVITE: { call, timer }
  let domain = "";
  // Tones in the audio (RFC 4733 events through rtpengine), which carriers pass on; SIP INFO
  // is often dropped on the way.
  const DTMF = { transportType: "RFC2833" };

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

  async function start() {
    if (!(await microphone())) { show("blocked"); return; }
    let c;
    try { c = await credentials(); } catch (e) { show("offline"); return; }
    const user = c.uri.slice(4, c.uri.indexOf("@"));
    domain = c.uri.slice(c.uri.indexOf("@") + 1);
    ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(c.ws_url)],
      uri: c.uri,
      authorization_user: c.username,
      password: c.password,
      // The contact names her, so the SIP server can say who answered.
      contact_uri: "sip:" + user + "@" + Math.random().toString(36).slice(2, 10) + ".invalid;transport=ws",
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
    incoming.on("peerconnection", (event) => listen(event.peerconnection));
    incoming.on("confirmed", () => talking(incoming));
    incoming.on("ended", () => over(incoming));
    incoming.on("failed", () => over(incoming));
  }

  function listen(connection) {
    connection.addEventListener("track", (event) => {
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      audio.play().catch(() => {});
    });
  }

  function answer() {
    if (!session || session.isEstablished()) return;
    quiet();
    session.answer({ mediaConstraints: { audio: true, video: false } });
  }
  function reject() { if (session && !session.isEstablished()) session.terminate({ status_code: 603, reason_phrase: "Decline" }); }
  function hangUp() { if (session) session.terminate(); }

  // Her call out from a lead, shown to the callee as the business's number (the SIP server
  // asks Mazkira, which also starts her call log on the lead).
  function dial(number, lead) {
    if (!ua || !registered || session) return;
    const outgoing = ua.call("sip:" + number + "@" + domain, {
      mediaConstraints: { audio: true, video: false },
      extraHeaders: ["X-Mazkira-Lead: " + lead],
    });
    session = outgoing;
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
    else if (action) toggle(action);
  });

  // While a call rings or goes on, its keys come first (A answers rather than opening alerts).
  window.addEventListener("keydown", (event) => {
    if (!session || event.ctrlKey || event.metaKey || event.altKey) return;
    const el = document.activeElement;
    if (el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName))) return;
    const key = window.mazkira && window.mazkira.keyOf ? window.mazkira.keyOf(event) : event.key.toLowerCase();
    const ringingNow = !session.isEstablished();
    let handled = true;
    if (ringingNow && key === "a") answer();
    else if (ringingNow && key === "x") reject();
    else if (!ringingNow && key === "q") hangUp();
    else if (!ringingNow && key === "m") toggle("mute");
    else if (!ringingNow && key === "l") toggle("hold");
    else if (!ringingNow && /^[0-9*#]$/.test(event.key) && !keypad.hidden) session.sendDTMF(event.key, DTMF);
    else handled = false;
    if (handled) { event.preventDefault(); event.stopImmediatePropagation(); }
  }, true);

  // For the browser tests: the call's WebRTC connection, to read its statistics.
  window.mazkiraPhone = { connection: () => (session ? session.connection : null), state: () => badge.dataset.state };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
