// The owner's portal as an installed app: registers the service worker (static/sw.js), asks it
// to keep the last handled calls for offline, and turns Web Push on or off for this browser
// on /portal/notifications. Loaded on the owner's pages only.
"use strict";
(function () {
  if (!("serviceWorker" in navigator)) return;

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; } catch (e) { return ""; }
  }

  function fromBase64url(text) {
    const plain = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    return Uint8Array.from(plain, (c) => c.charCodeAt(0));
  }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body),
    });
  }

  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data && event.data.kind === "refreshed") document.body.dataset.offlineReady = event.data.ok ? "yes" : "no";
  });

  function showPush(state) {
    const status = document.getElementById("push-state");
    if (!status) return;
    status.textContent = status.dataset["label" + state] || "";
    document.getElementById("push-on").hidden = state === "On" || state === "Unsupported";
    document.getElementById("push-off").hidden = state !== "On";
  }

  async function pushSetup(registration) {
    const on = document.getElementById("push-on");
    if (!on) return;
    if (!("PushManager" in window) || !registration.pushManager) { showPush("Unsupported"); return; }
    const existing = await registration.pushManager.getSubscription();
    if (existing) {
      // tell the console again: this sign-in now holds it (and signing out ends it)
      await post("/portal/push/subscriptions", existing.toJSON());
      showPush("On");
    } else {
      showPush("Off");
    }
    on.addEventListener("click", async () => {
      try {
        if ((await Notification.requestPermission()) !== "granted") { showPush("Blocked"); return; }
        const subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: fromBase64url(on.dataset.key),
        });
        const answer = await post("/portal/push/subscriptions", subscription.toJSON());
        showPush(answer.ok ? "On" : "Failed");
      } catch (error) {
        showPush("Failed");
      }
    });
    document.getElementById("push-off").addEventListener("click", async () => {
      const subscription = await registration.pushManager.getSubscription();
      if (subscription) {
        await post("/portal/push/subscriptions/remove", { endpoint: subscription.endpoint });
        await subscription.unsubscribe();
      }
      showPush("Off");
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/portal" }).then(async () => {
      const registration = await navigator.serviceWorker.ready;
      if (registration.active) registration.active.postMessage({ kind: "refresh" });
      await pushSetup(registration);
    }).catch(() => { document.body.dataset.offlineReady = "no"; });
  });
})();
