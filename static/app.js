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

  // The call log saves every few seconds through htmx; when the tab goes away, one last save.
  function lastSave() {
    const form = document.querySelector("form[data-autosave]");
    if (form && navigator.sendBeacon) navigator.sendBeacon(form.dataset.autosave, new FormData(form));
  }
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") lastSave(); });
  window.addEventListener("pagehide", lastSave);
})();
