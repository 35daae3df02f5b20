"""The OpenAPI 3.1 document of /api/v1/, generated from the pydantic models the API runs on.

Each endpoint is one `Operation` below: its parameters come from the same query models that
parse the request, its bodies from the same answer models that shape the response, and its
statuses are every one the handler can give (the tests run schemathesis against it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from console.api import payloads

VERSION = "1.0.0"
REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "The body is not valid JSON.",
    401: "The bearer token is missing, wrong, revoked, or its user is deactivated.",
    404: "No such object among the businesses the token's user may see.",
    409: "The task was cancelled already.",
    413: "The request body is larger than the server accepts.",
    415: "The body must be JSON (Content-Type: application/json).",
    422: "A field (named in `field`) is not valid.",
    429: "Too many requests with this token; wait `Retry-After` seconds.",
}
# Every call may meet these: the token, the body limit, the rate limit.
ALWAYS = (401, 413, 429)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    answer: type[BaseModel]
    status: int = 200
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    parameters: tuple[dict[str, Any], ...] = ()
    also: dict[int, str] = field(default_factory=dict)  # other success statuses


def _id(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what}'s id.",
        "schema": {"type": "string", "format": "uuid"},
    }


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any unique string: a repeat with the same key (same user) creates nothing "
    "and answers 200 with the lead the first request made.",
    "schema": {"type": "string", "minLength": 1, "maxLength": payloads.MAX_IDEMPOTENCY_KEY},
}

OPERATIONS = (
    Operation(
        "get",
        "/api/v1/leads",
        "listLeads",
        "Leads of your businesses, newest first",
        payloads.LeadPage,
        query=payloads.LeadQuery,
        errors=(422,),
    ),
    Operation(
        "post",
        "/api/v1/leads",
        "createLead",
        "Create a lead (the contact is found or made by phone or e-mail)",
        payloads.LeadOut,
        status=201,
        body=payloads.NewLeadRequest,
        parameters=(IDEMPOTENCY_KEY,),
        errors=(400, 404, 415, 422),
        also={200: "A repeat of an earlier request with the same Idempotency-Key."},
    ),
    Operation(
        "get",
        "/api/v1/leads/{lead_id}",
        "getLead",
        "One lead",
        payloads.LeadOut,
        parameters=(_id("lead_id", "lead"),),
        errors=(404,),
    ),
    Operation(
        "get",
        "/api/v1/leads/{lead_id}/interactions",
        "listLeadInteractions",
        "A lead's calls, messages and notes, newest first",
        payloads.InteractionPage,
        query=payloads.PageQuery,
        parameters=(_id("lead_id", "lead"),),
        errors=(404, 422),
    ),
    Operation(
        "get",
        "/api/v1/interactions/{interaction_id}",
        "getInteraction",
        "One interaction",
        payloads.InteractionOut,
        parameters=(_id("interaction_id", "interaction"),),
        errors=(404,),
    ),
    Operation(
        "get",
        "/api/v1/contacts",
        "listContacts",
        "Contacts of your businesses, newest first",
        payloads.ContactPage,
        query=payloads.ContactQuery,
        errors=(422,),
    ),
    Operation(
        "get",
        "/api/v1/contacts/{contact_id}",
        "getContact",
        "One contact",
        payloads.ContactOut,
        parameters=(_id("contact_id", "contact"),),
        errors=(404,),
    ),
    Operation(
        "get",
        "/api/v1/tasks",
        "listTasks",
        "Tasks of your businesses, newest first",
        payloads.TaskPage,
        query=payloads.TaskQuery,
        errors=(422,),
    ),
    Operation(
        "get",
        "/api/v1/tasks/{task_id}",
        "getTask",
        "One task",
        payloads.TaskOut,
        parameters=(_id("task_id", "task"),),
        errors=(404,),
    ),
    Operation(
        "post",
        "/api/v1/tasks/{task_id}/done",
        "markTaskDone",
        "Mark a task done (its assignee, its creator or an admin); done again changes nothing",
        payloads.TaskOut,
        parameters=(_id("task_id", "task"),),
        errors=(404, 409),
    ),
    Operation(
        "get",
        "/api/v1/kpis",
        "getKpis",
        "A business's KPIs for a period of days in its zone (both ends included)",
        payloads.KpiOut,
        query=payloads.KpiQuery,
        errors=(404, 422),
    ),
    Operation(
        "get",
        "/api/v1/webhooks",
        "listWebhooks",
        "The agency's webhook endpoints with their recent deliveries (an admin's token)",
        payloads.WebhookList,
        errors=(404,),
    ),
    Operation(
        "post",
        "/api/v1/webhooks",
        "createWebhook",
        "Subscribe an endpoint to events, signed per Standard Webhooks (an admin's token)",
        payloads.WebhookCreated,
        status=201,
        body=payloads.NewWebhookRequest,
        errors=(400, 404, 415, 422),
    ),
)

DESCRIPTION = f"""\
Mazkira's JSON API for owners and their integrations.

**Tokens.** Create a personal token in Settings → API tokens (or with `mazkira create-token
--email E`) and send it as `Authorization: Bearer mzk_…`. A token acts as its user and sees
exactly what the user sees in the console: the user's businesses only; anything else is 404.

**Lists** are newest first, `limit` items a page (at most {payloads.MAX_LIMIT}); pass the answer's
`next_cursor` as `cursor` for the next page.

**Webhooks.** An admin's token subscribes endpoints to events (`POST /api/v1/webhooks`); each
event is POSTed as JSON signed per the Standard Webhooks specification (`webhook-id`,
`webhook-timestamp`, `webhook-signature`, with the `whsec_…` secret the creation answered once).

**Errors** are JSON, `{{"error": message, "field": name}}`, with the status saying which.
"""


def _clean(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: not nullable (an absent parameter is the null), no title."""
    schema = {k: v for k, v in schema.items() if k != "title"}
    if schema.get("default", ...) is None:
        del schema["default"]
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches
    return schema


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    model_schema = model.model_json_schema()
    required = set(model_schema.get("required", ()))
    parameters = []
    for name, prop in model_schema["properties"].items():
        schema = _clean(prop)
        description = schema.pop("description", None)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if description:
            parameter["description"] = description
        parameters.append({**parameter, "schema": schema})
    return parameters


def _json(ref: dict[str, str]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _error(status: int, ref: dict[str, str]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": ERROR_TEXT[status], "content": _json(ref)}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}
    if status == 429:
        response["headers"] = {
            "Retry-After": {
                "required": True,
                "description": "Seconds to wait.",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return response


def _operation(op: Operation, refs: dict[Any, dict[str, str]]) -> dict[str, Any]:
    answer = _json(refs[(op.answer, "serialization")])
    success = {"description": "OK" if op.status == 200 else "Created", "content": answer}
    responses: dict[str, Any] = {str(op.status): success}
    for status, text in op.also.items():
        responses[str(status)] = {"description": text, "content": answer}
    for status in sorted({*op.errors, *ALWAYS}):
        responses[str(status)] = _error(status, refs[(payloads.ApiError, "serialization")])
    parameters = [*op.parameters, *(_query_parameters(op.query) if op.query else [])]
    spec: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "responses": responses,
    }
    if parameters:
        spec["parameters"] = parameters
    if op.body is not None:
        spec["requestBody"] = {"required": True, "content": _json(refs[(op.body, "validation")])}
    return spec


@cache
def document() -> dict[str, Any]:
    answers = {op.answer for op in OPERATIONS} | {payloads.ApiError}
    models: list[tuple[type[BaseModel], Any]] = [(m, "serialization") for m in answers]
    models += [(op.body, "validation") for op in OPERATIONS if op.body]
    refs, schemas = models_json_schema(models, ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, dict(refs))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Mazkira API", "version": VERSION, "description": DESCRIPTION},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API token, mzk_…",
                }
            },
        },
    }
