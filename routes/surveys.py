"""The customer's survey after a won lead: a public page behind a signed link (no session, no
CSRF token: the token in the path is the proof; routes/middleware.py exempts /survey/)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Invalid
from console.base.i18n import using_locale
from console.leads.surveys import Answers, answer_survey, survey_page
from routes.forms import now, see_other, text
from routes.templating import render

# The token must not leak to other sites through Referer, nor stay in a shared cache.
PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


async def page(request: Request) -> Response:
    """The questions, "thank you" right after answering, or "already answered"; in the
    contact's language."""
    thanked = request.query_params.get("thanks") == "1"
    async with request.app.state.db.transaction(write=False) as session:
        view = await survey_page(
            session, _secret(request), _token(request), now=now(request), thanked=thanked
        )
    with using_locale(view.locale):
        response = render(request, "surveys/show.html", {"view": view})
    response.headers.update(PRIVATE)
    return response


async def answer(request: Request) -> Response:
    """Record the answers once and say thank you; a second post changes nothing and shows
    "already answered"."""
    form = await request.form()
    answers = Answers(text(form, "stars"), text(form, "recommend"), text(form, "improve"))
    try:
        async with request.app.state.db.transaction() as session:
            taken = await answer_survey(
                session, _secret(request), _token(request), answers, now=now(request)
            )
    except Invalid as refused:  # the questions again, as answered, the reason beside one
        async with request.app.state.db.transaction(write=False) as session:
            view = await survey_page(session, _secret(request), _token(request), now=now(request))
        with using_locale(view.locale):
            context = {"view": view, "refused": refused, "typed": answers}
            response = render(request, "surveys/show.html", context, status=422)
        response.headers.update(PRIVATE)
        return response
    response = see_other(request, request.url.path + ("?thanks=1" if taken else ""))
    response.headers.update(PRIVATE)
    return response


def _secret(request: Request) -> str:
    return str(request.app.state.settings.secret_key)


def _token(request: Request) -> str:
    return str(request.path_params["token"])
