"""The owner's portal as an installed app: its manifest, its service worker, the list of his
last calls it keeps for offline, and Web Push (his browsers' subscriptions, what reaches him)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console.base.errors import Invalid
from console.base.i18n import current_locale, gettext, speaking_to
from console.channels import push
from console.channels.notify import queue_push
from console.people.tenancy import visible_businesses
from console.screens import portal
from console.screens.portal import ReviewFilters
from models import Role
from routes.access import signed_in, user_of
from routes.forms import is_htmx, now, see_other
from routes.templating import TEMPLATES, render

THEME = "#1d2330"
SERVICE_WORKER = TEMPLATES.parent / "static" / "sw.js"


async def manifest(request: Request) -> Response:
    """The web app manifest, in the reader's language: opens on the portal, standalone."""
    locale = current_locale()
    body = {
        "id": "/portal",
        "name": gettext("Mazkira: my business"),
        "short_name": gettext("Mazkira"),
        "description": gettext("Every call the agency handled for your business."),
        "lang": locale,
        "dir": "rtl" if locale == "he" else "ltr",
        "start_url": "/portal",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": THEME,
        "icons": [
            {"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"},
            {
                "src": "/static/icon.svg",
                "sizes": "any",
                "type": "image/svg+xml",
                "purpose": "maskable",
            },
        ],
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        media_type="application/manifest+json",
        headers={"Vary": "Cookie"},
    )


async def service_worker(request: Request) -> Response:
    """static/sw.js from the site's root, so it may control /portal."""
    script = SERVICE_WORKER.read_bytes()
    return Response(
        script,
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/portal"},
    )


def offline_key(request: Request) -> str:
    """The name of this owner's offline cache: his id signed, so no one's can be guessed."""
    secret = str(request.app.state.settings.secret_key).encode()
    message = f"offline:{user_of(request).id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


@signed_in(Role.OWNER)
async def offline(request: Request) -> Response:
    """His last handled calls as one page that needs nothing else, for the service worker."""
    async with request.app.state.db.transaction(write=False) as session:
        review = await portal.review(session, user_of(request), ReviewFilters(), now=now(request))
    response = render(request, "portal/offline.html", {"review": review, "kept_at": now(request)})
    response.headers["X-Offline-Key"] = offline_key(request)
    return response


@signed_in(Role.OWNER)
async def settings_page(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        context = await _settings(session, request)
    return render(request, "portal/notifications.html", context)


@signed_in(Role.OWNER)
async def save_kinds(request: Request) -> Response:
    """What reaches him by push: the checked kinds (a choice; nothing typed)."""
    form = await request.form()
    kinds = [str(value) for value in form.getlist("kinds")]
    async with request.app.state.db.transaction() as session:
        chosen = await push.set_kinds(session, user_of(request), kinds)
        context = await _settings(session, request, kinds=chosen)
    if not is_htmx(request):
        return see_other(request, "/portal/notifications")
    context["saved"] = True
    return render(request, "portal/notifications.html", context, block="kinds_form")


@signed_in(Role.OWNER)
async def send_test(request: Request) -> Response:
    """A notification to each of his browsers now, to see that they get it (a button)."""
    user = user_of(request)
    moment = now(request)
    with speaking_to(user):
        title = gettext("Mazkira: a test notification")
        body = gettext("Notifications reach this device.")
    async with request.app.state.db.transaction() as session:
        businesses = await visible_businesses(session, user)  # a message belongs to one
        sent = 0
        if businesses:
            sent = await queue_push(
                session,
                user,
                kind="test",
                key=f"push-test:{user.id}:{moment.isoformat()}",
                business_id=businesses[0].id,
                title=title,
                body=body,
                path="/portal/notifications",
                now=moment,
            )
        context = await _settings(session, request)
    if not is_htmx(request):
        return see_other(request, "/portal/notifications")
    context["tested"] = sent
    return render(request, "portal/notifications.html", context, block="test_form")


async def _settings(
    session: Any, request: Request, kinds: list[str] | None = None
) -> dict[str, Any]:
    user = user_of(request)
    return {
        "kinds": push.KINDS,
        "chosen": kinds if kinds is not None else list(user.push_kinds or []),
        "public_key": await push.public_key(session),
        "devices": await push.devices(session, user),
    }


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise Invalid("A push subscription is a JSON object.", field="endpoint") from None


@signed_in(Role.OWNER)
async def subscribe(request: Request) -> Response:
    """A browser of his (its `PushSubscription.toJSON()`), checked strictly; 422 stores nothing."""
    settings = request.app.state.settings
    subscription = push.check_subscription(
        await _json(request), test_origin=settings.push_test_origin
    )
    async with request.app.state.db.transaction() as session:
        await push.subscribe(
            session,
            user_of(request),
            subscription,
            session_id=request.state.session_id,
            now=now(request),
        )
    return JSONResponse({"subscribed": True}, status_code=201)


@signed_in(Role.OWNER)
async def unsubscribe(request: Request) -> Response:
    payload = await _json(request)
    endpoint = payload.get("endpoint") if isinstance(payload, dict) else None
    if not isinstance(endpoint, str) or not endpoint:
        raise Invalid("The push endpoint is missing or too long.", field="endpoint")
    async with request.app.state.db.transaction() as session:
        removed = await push.unsubscribe(session, user_of(request), endpoint)
    return JSONResponse({"removed": removed})
