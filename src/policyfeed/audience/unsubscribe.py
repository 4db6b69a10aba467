"""The unsubscribe endpoint: ``/unsubscribe?t=TOKEN``.

- GET (and HEAD) shows a confirmation page with a button and changes nothing: mail scanners and
  link previewers follow links, and must not unsubscribe anyone.
- POST unsubscribes at once. That covers the button and the RFC 8058 one-click POST that mail
  providers send (body ``List-Unsubscribe=One-Click``, no cookies, no session). A second POST
  is harmless.
- A bad, forged or missing token gets exactly the same answer as a genuine one and changes
  nothing, so the endpoint tells nobody whether a token or an address is real.
- The change is committed before the answer is sent; if the database cannot take it right now
  the answer is 503 (providers retry), never a false "done".

:func:`unsubscribe_view` handles one werkzeug request (``web.make_app`` routes to it);
:func:`make_unsubscribe_app` is the same as a stand-alone WSGI application.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from policyfeed.audience.tokens import read_token
from policyfeed.errors import PolicyfeedError

if TYPE_CHECKING:
    import jinja2

    from policyfeed.config import Settings

log = logging.getLogger(__name__)

PATH = "/unsubscribe"
CONFIRM_TEMPLATE = "web/unsubscribe.html"
DONE_TEMPLATE = "web/unsubscribed.html"
RETRY_TEMPLATE = "web/unsubscribe_retry.html"
# Longer than any token; the form body is never needed beyond the token and the one-click field.
MAX_BODY = 16 * 1024

_HEADERS = {
    "Cache-Control": "no-store",
    # The token is in the URL: never hand it to another site in a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@lru_cache(maxsize=8)
def _environment(templates_dir: Path | None) -> jinja2.Environment:
    """User templates first, then the defaults shipped in the package ``policyfeed.templates``."""
    import importlib.resources

    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    defaults = importlib.resources.files("policyfeed.templates")
    loaders.append(jinja2.FileSystemLoader(str(defaults)))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders), autoescape=True, undefined=jinja2.StrictUndefined
    )


def _page(settings: Settings, template: str, status: int = 200, **context: Any) -> Response:
    html = (
        _environment(settings.templates_dir)
        .get_template(template)
        .render(
            site_title=settings.title,
            site_url=settings.base_url,
            language=settings.language,
            **context,
        )
    )
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    response.headers.update(_HEADERS)
    return response


def _token(request: Request) -> str:
    token = request.args.get("t", "")
    if not token and request.method == "POST":
        token = request.form.get("t", "")
    return token.strip()


def unsubscribe_view(
    request: Request,
    *,
    settings: Settings,
    db_path: Path,
    now: Callable[[], datetime] = _utcnow,
) -> Response:
    """Answer one request to the unsubscribe endpoint (see the module docstring)."""
    if request.method not in ("GET", "HEAD", "POST"):
        response = Response("Method not allowed\n", status=405, content_type="text/plain")
        response.headers["Allow"] = "GET, HEAD, POST"
        return response
    request.max_content_length = MAX_BODY
    request.max_form_memory_size = MAX_BODY
    try:
        token = _token(request)
    except HTTPException as exc:  # e.g. 413 for a body far larger than any form of ours
        return exc.get_response()
    if request.method != "POST":
        action = f"{request.script_root}{request.path}?t={quote(token, safe='')}"
        return _page(settings, CONFIRM_TEMPLATE, token=token, action=action)

    subscriber_id = read_token(settings.secret, token, settings.list_identifier)
    if subscriber_id is not None:
        try:
            changed = _unsubscribe(db_path, subscriber_id, now())
        except (sqlite3.Error, PolicyfeedError) as exc:
            log.warning("unsubscribe of subscriber %d not recorded yet: %s", subscriber_id, exc)
            response = _page(settings, RETRY_TEMPLATE, status=503)
            response.headers["Retry-After"] = "60"
            return response
        if changed:
            log.info("subscriber %d unsubscribed", subscriber_id)
    elif not settings.secret:
        log.warning("unsubscribe request ignored: POLICYFEED_SECRET is not set")
    return _page(settings, DONE_TEMPLATE)


def _unsubscribe(db_path: Path, subscriber_id: int, moment: datetime) -> bool:
    from policyfeed.store import StoreError, open_db
    from policyfeed.store.unsubscribe import unsubscribe_subscriber

    if not Path(db_path).is_file():  # opening would create an empty database
        raise StoreError(f"{db_path}: no such database")
    db = open_db(db_path, migrate=False)
    try:
        return unsubscribe_subscriber(db, subscriber_id, moment)
    finally:
        db.conn.close()


def make_unsubscribe_app(
    settings: Settings, db_path: Path, *, now: Callable[[], datetime] = _utcnow
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A WSGI application answering the unsubscribe endpoint at any path."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = unsubscribe_view(request, settings=settings, db_path=db_path, now=now)
        return response(environ, start_response)

    return app
