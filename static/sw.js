// Mazkira's service worker, for the owner's portal (scope /portal, served as /sw.js).
// Online, every page comes from the network. The portal asks it to keep the last handled calls
// (/portal/offline) in a cache named for the signed-in owner; with no network, a portal page
// is that list. Any page of a guest or of another role deletes the cache (static/app.js), so
// signing out leaves nothing of his behind. Web Push messages are shown as notifications.
"use strict";

const PREFIX = "mazkira-portal-";
const OFFLINE = "/portal/offline";
const ASSETS = ["/static/app.css", "/static/favicon.svg", "/static/icon.svg"];

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

async function ownCache() {
  const names = (await caches.keys()).filter((name) => name.startsWith(PREFIX));
  return names.length === 1 ? caches.open(names[0]) : null;
}

// Fetch the owner's offline list while signed in, keep it under his key, drop anyone else's.
async function refresh() {
  const answer = await fetch(OFFLINE, { credentials: "same-origin", redirect: "manual" });
  const key = answer.headers.get("X-Offline-Key") || "";
  if (answer.status !== 200 || !/^[0-9a-f]{16,64}$/.test(key)) return "";
  const name = PREFIX + key;
  for (const other of await caches.keys()) {
    if (other.startsWith(PREFIX) && other !== name) await caches.delete(other);
  }
  const cache = await caches.open(name);
  await cache.put(OFFLINE, answer);
  await cache.addAll(ASSETS);
  return name;
}

self.addEventListener("message", (event) => {
  if (!event.data || event.data.kind !== "refresh") return;
  const source = event.source;
  event.waitUntil(
    refresh().then(
      (name) => source && source.postMessage({ kind: "refreshed", ok: Boolean(name) }),
      () => source && source.postMessage({ kind: "refreshed", ok: false }),
    ),
  );
});

async function fromCache(request, path) {
  const cache = await ownCache();
  const kept = cache && (await cache.match(path));
  return kept || Response.error();
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => fromCache(request, OFFLINE)));
  } else if (ASSETS.includes(url.pathname)) {
    event.respondWith(fetch(request).catch(() => fromCache(request, url.pathname)));
  }
});

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (error) {
    message = { body: event.data ? event.data.text() : "" };
  }
  const url = typeof message.url === "string" && /^\/(?!\/)/.test(message.url) ? message.url : "/portal";
  event.waitUntil(
    self.registration.showNotification(message.title || "Mazkira", {
      body: message.body || "",
      tag: message.tag || undefined,
      icon: "/static/icon.svg",
      dir: "auto",
      data: { url },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/portal";
  event.waitUntil(self.clients.openWindow(url));
});
