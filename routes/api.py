"""The JSON API v1: a bearer token in, JSON out. Requests and answers are console/api/payloads.py,
the queries console/api/queries.py."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console.api import openapi, payloads, queries
from console.base import ratelimit
from console.base.errors import NotFound, Unauthorized, UnsupportedMedia
from console.channels import webhooks
from console.intake.arrivals import TOKEN_REFUSED
from console.people import api_tokens
from console.people.audit import Actor, record_read
from console.people.tenancy import parse_id
from models import User
from routes.errors import console_error
from routes.forms import now, speak_the_callers_language

ApiEndpoint = Callable[[Request, User], Awaitable[Response]]


def bearer(endpoint: ApiEndpoint) -> Callable[[Request], Awaitable[Response]]:
    """The token's user, or 401 with `WWW-Authenticate`; then the token's rate limit."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        speak_the_callers_language(request)
        try:
            user = await _token_user(request)
        except Unauthorized as refused:
            return await _challenge(request, refused)
        return await endpoint(request, user)

    return guarded


async def _challenge(request: Request, refused: Unauthorized) -> Response:
    response = await console_error(request, refused)
    challenge = 'Bearer realm="mazkira"'
    if "authorization" in request.headers:
        challenge += ', error="invalid_token"'  # RFC 6750: one was sent, and is no good
    response.headers["WWW-Authenticate"] = challenge
    return response


async def _token_hash(request: Request) -> str:
    """The hash of the bearer token sent, within its rate limit (counted before any read, so a
    flood of guesses costs the database nothing)."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("Send your API token in the header Authorization: Bearer <token>.")
    token_hash = api_tokens.secret_hash(secret.strip())
    if token_hash is None:
        raise Unauthorized(TOKEN_REFUSED)
    state = request.app.state
    await ratelimit.check(state.limiter, f"api:{token_hash}", state.settings.api_rate_per_token)
    return token_hash


async def _token_user(request: Request) -> User:
    token_hash = await _token_hash(request)
    state, at = request.app.state, now(request)
    async with state.db.transaction(write=False) as session:
        found = await api_tokens.authenticate_hash(session, token_hash)
    if found is None:
        raise Unauthorized(TOKEN_REFUSED)
    token, user = found
    if api_tokens.needs_touch(token, at):
        async with state.db.transaction() as session:
            await api_tokens.touch_token(session, token.id, now=at)
    return user


def _json(answer: BaseModel, status: int = 200) -> Response:
    """The answer as JSON, written by pydantic's serializer in one step (the same text as
    `json.dumps` of `model_dump(mode="json")`, without the dict between)."""
    return Response(answer.model_dump_json(), status_code=status, media_type="application/json")


async def document(request: Request) -> Response:
    """`GET /api/v1/openapi.json`: the API described, for people and generators."""
    return JSONResponse(openapi.document())


@bearer
async def list_leads(request: Request, user: User) -> Response:
    query = payloads.parse_query(payloads.LeadQuery, request.query_params)
    async with request.app.state.db.transaction(write=False) as session:
        return _json(await queries.leads_page(session, user, query))


@bearer
async def show_lead(request: Request, user: User) -> Response:
    """One lead; the view is audited as the lead page's is."""
    db = request.app.state.db
    viewer = Actor(user, now(request), getattr(request.state, "client_address", ""))
    async with db.transaction(write=False) as session:
        lead = await queries.lead_by_id(session, user, request.path_params["lead_id"])
    # the opening, as the lead page's (routes/leads.py)
    await request.app.state.views.lead_viewed(lead.id, lead.business_id, actor=viewer, via="api")
    return _json(lead)


async def create_lead(request: Request) -> Response:
    """201 with the new lead; 200 with the earlier one for a repeated Idempotency-Key. The token
    is checked as the lead is written, with its group (no read of its own before)."""
    speak_the_callers_language(request)
    try:
        token_hash = await _token_hash(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise UnsupportedMedia("Send the lead as JSON (Content-Type: application/json).")
        new = payloads.parse_new_lead(await request.body())
        key = request.headers.get("idempotency-key")
        arrival = queries.lead_arrival(token_hash, new, now=now(request), idempotency_key=key)
        arrived = await request.app.state.arrivals.receive(arrival)
        lead = await queries.arrived_lead(request.app.state.db, token_hash, arrived)
    except Unauthorized as refused:
        return await _challenge(request, refused)
    return _json(lead, 200 if arrived.duplicate else 201)


@bearer
async def lead_interactions(request: Request, user: User) -> Response:
    """A lead's interactions; the read is audited as a view of the lead."""
    query = payloads.parse_query(payloads.PageQuery, request.query_params)
    lead_id = parse_id(request.path_params["lead_id"])
    db = request.app.state.db
    async with db.transaction(write=False) as session:
        page = await queries.interactions_page(session, user, str(lead_id), query)
    if page.items:
        async with db.transaction() as session:
            await record_read(
                session,
                "lead.viewed",
                "lead",
                lead_id,
                page.items[0].business_id,
                actor=_reader(request, user),
                via="api",
                part="interactions",
            )
    return _json(page)


@bearer
async def show_interaction(request: Request, user: User) -> Response:
    """One interaction; the read is audited as the lead's is."""
    interaction_id = request.path_params["interaction_id"]
    db = request.app.state.db
    async with db.transaction(write=False) as session:
        found = await queries.interaction_by_id(session, user, interaction_id)
    async with db.transaction() as session:
        await record_read(
            session,
            "interaction.viewed",
            "interaction",
            found.id,
            found.business_id,
            actor=_reader(request, user),
            via="api",
        )
    return _json(found)


def _reader(request: Request, user: User) -> Actor:
    return Actor(user, now(request), getattr(request.state, "client_address", ""))


@bearer
async def list_contacts(request: Request, user: User) -> Response:
    query = payloads.parse_query(payloads.ContactQuery, request.query_params)
    async with request.app.state.db.transaction(write=False) as session:
        return _json(await queries.contacts_page(session, user, query))


@bearer
async def show_contact(request: Request, user: User) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        return _json(await queries.contact_by_id(session, user, request.path_params["contact_id"]))


@bearer
async def list_tasks(request: Request, user: User) -> Response:
    query = payloads.parse_query(payloads.TaskQuery, request.query_params)
    async with request.app.state.db.transaction(write=False) as session:
        return _json(await queries.tasks_page(session, user, query))


@bearer
async def show_task(request: Request, user: User) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        return _json(await queries.task_by_id(session, user, request.path_params["task_id"]))


@bearer
async def mark_task_done(request: Request, user: User) -> Response:
    async with request.app.state.db.transaction() as session:
        task = await queries.mark_task_done(
            session, user, request.path_params["task_id"], now=now(request)
        )
    return _json(task)


@bearer
async def kpis(request: Request, user: User) -> Response:
    query = payloads.parse_query(payloads.KpiQuery, request.query_params)
    async with request.app.state.db.transaction(write=False) as session:
        return _json(await queries.kpis_for(session, user, query, now=now(request)))


def _admin_only(user: User) -> None:
    if user.role != "admin":
        raise NotFound("Not found.")


def _webhook_out(view: webhooks.EndpointView) -> payloads.WebhookOut:
    return payloads.WebhookOut.model_validate(
        {**_endpoint_fields(view.endpoint), "deliveries": view.deliveries}
    )


def _endpoint_fields(endpoint: object) -> dict[str, object]:
    names = ("id", "url", "events", "business_id", "created_at", "paused_at")
    return {name: getattr(endpoint, name) for name in names}


@bearer
async def list_webhooks(request: Request, user: User) -> Response:
    """The agency's endpoints, each with its recent deliveries and their answers."""
    _admin_only(user)
    async with request.app.state.db.transaction(write=False) as session:
        views = await webhooks.endpoints(session)
    return _json(payloads.WebhookList(items=[_webhook_out(view) for view in views]))


@bearer
async def create_webhook(request: Request, user: User) -> Response:
    """201 with the endpoint and its signing secret, which is never shown again."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMedia("Send the endpoint as JSON (Content-Type: application/json).")
    new = payloads.parse_new_webhook(await request.body())
    _admin_only(user)
    actor = Actor(user, now(request), getattr(request.state, "client_address", ""))
    async with request.app.state.db.transaction() as session:
        made = await webhooks.create_endpoint(
            session,
            actor,
            url=new.url,
            events=new.events,
            business_id=new.business_id,
            allow_private=request.app.state.settings.webhook_allow_private,
        )
    fields = {**_endpoint_fields(made.endpoint), "deliveries": [], "secret": made.secret}
    return _json(payloads.WebhookCreated.model_validate(fields), 201)
