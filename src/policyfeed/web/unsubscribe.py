"""The unsubscribe endpoint: ``/unsubscribe?t=TOKEN`` (a token page).

- GET (and HEAD) shows a confirmation page with a button and changes nothing: mail scanners and
  link previewers follow links, and must not unsubscribe anyone.
- POST unsubscribes at once. That covers the button and the RFC 8058 one-click POST that mail
  providers send (body ``List-Unsubscribe=One-Click``, no cookies, no session). The change is
  committed before the answer is sent.
- Every answer says what is true: "you are unsubscribed", "you were already unsubscribed",
  "this address is no longer on the list", or, for a token that is not one of this list's
  (mangled by a mail program, cut short), 400 "this link is not valid" with the ways to leave
  anyway: the list's contact address and, when the app has it, the page that mails a fresh
  link (``/preferences/link``). Only the holder of a genuine token learns anything about a
  member, so nothing is revealed to anyone else.
- If the database cannot be read or take the change right now the answer is 503 with
  ``Retry-After`` (providers retry), never a false "done".
"""

from __future__ import annotations

import logging
import sqlite3
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from policyfeed.audience.unsubscribe import (
    LinkAnswer,
    LinkState,
    look_up_link,
    unsubscribe_by_link,
)
from policyfeed.config import Settings
from policyfeed.errors import PolicyfeedError
from policyfeed.templating import format_date
from policyfeed.web.app import Endpoint, WebContext

log = logging.getLogger(__name__)

PATH = "/unsubscribe"
PREFERENCES_LINK_PATH = "/preferences/link"
TEMPLATES = {
    LinkState.VALID: "web/unsubscribe.html",
    LinkState.UNSUBSCRIBED: "web/unsubscribed.html",
    LinkState.ALREADY: "web/unsubscribe_already.html",
    LinkState.GONE: "web/unsubscribe_gone.html",
    LinkState.INVALID: "web/unsubscribe_invalid.html",
}
RETRY_TEMPLATE = "web/unsubscribe_retry.html"


def endpoints(settings: Settings) -> list[Endpoint]:
    # The form holds the token and the one-click field: 16 KiB is plenty.
    return [
        Endpoint(
            PATH,
            unsubscribe,
            methods=("GET", "HEAD", "POST"),
            max_body=16 * 1024,
            max_form_parts=8,
            token_page=True,
        )
    ]


def unsubscribe(request: Request, site: WebContext) -> Response:
    """Answer one request to the unsubscribe endpoint (see the module docstring)."""
    token = site.token(request)
    list_id = site.settings.list_identifier
    try:
        if request.method == "POST":
            answer = unsubscribe_by_link(site.db_path, site.secret, list_id, token, site.now())
        else:
            answer = look_up_link(site.db_path, site.secret, list_id, token)
    except (sqlite3.Error, PolicyfeedError) as exc:
        log.warning("unsubscribe request not answered yet: %s", exc)
        response = site.page(RETRY_TEMPLATE, status=503)
        response.headers["Retry-After"] = "60"
        return response
    if answer.state is LinkState.UNSUBSCRIBED:
        log.info("a subscriber unsubscribed by their link")
    return _page(request, site, answer, token)


def _page(request: Request, site: WebContext, answer: LinkAnswer, token: str) -> Response:
    settings = site.settings
    context: dict[str, object] = {
        "contact": settings.editor_email or settings.sender,
        "since": format_date(answer.since, settings.tz, answer.language or settings.language),
        "preferences_link": (
            request.script_root + PREFERENCES_LINK_PATH
            if site.has_route(PREFERENCES_LINK_PATH)
            else ""
        ),
    }
    if answer.state is LinkState.VALID:
        # Only a genuine token is ever written back into a page.
        context["token"] = token
        context["action"] = f"{request.script_root}{PATH}?t={quote(token, safe='')}"
    status = 400 if answer.state is LinkState.INVALID else 200
    return site.page(
        TEMPLATES[answer.state], status=status, language=answer.language or None, **context
    )
