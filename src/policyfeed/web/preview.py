"""The editors' browser preview: ``/preview/…`` under ``policyfeed serve``.

- ``/preview/``: the next issue as it would be made now (planned, nothing recorded) and every
  draft and approved issue.
- ``/preview/issues/N/`` (and ``/preview/next/``): each variant (the whole issue, ``all``, and
  each chapter's): its subject, the members it goes to, its HTML's size after inlining against
  the 102,000 bytes at which Gmail clips a message, and links to
- ``/preview/issues/N/SLUG.html`` and ``SLUG.txt``: the variant's HTML part and text part
  (``text/plain; charset=utf-8``) with the sample member's links, as ``issue render`` shows
  them. ``digest.preview_url`` (the copy for approval's links) names these paths.

Who may open it: :mod:`policyfeed.web.preview_access`. The endpoints exist when
``POLICYFEED_PREVIEW_PASSWORD`` is set (:func:`endpoints`, any address), or when ``serve``
listens on a loopback address (:func:`serve_endpoints`); otherwise there is no preview.

Every answer of the preview has ``Cache-Control: no-store``, ``X-Robots-Tag: noindex`` and
``Referrer-Policy: no-referrer`` (an issue's links must not carry the preview's address to other
sites); the app's Content-Security-Policy (no script at all) covers the previewed HTML too. The
database is opened read-only (:func:`policyfeed.store.readonly.opened_read_only`): the preview
never writes it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.wrappers import Request, Response

from policyfeed.config import Settings
from policyfeed.digest import preview as digest_preview
from policyfeed.errors import DigestTooLargeError, NotFoundError, PolicyfeedError
from policyfeed.store.readonly import opened_read_only
from policyfeed.web.app import ERROR_TEMPLATE, Endpoint, WebContext
from policyfeed.web.preview_access import REALM, Decision, PreviewAccess, is_loopback_host
from policyfeed.web.static import StaticFiles

if TYPE_CHECKING:
    from sqlite_utils import Database

    from policyfeed.digest.preview import PreviewedIssue

log = logging.getLogger(__name__)

ROOT = "/preview/"
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
}
KINDS = {"html": "text/html; charset=utf-8", "txt": "text/plain; charset=utf-8"}
#: The preview is a tool for editors, in English like the command line (its messages are
#: English too); the pages members see come from the catalogs in the site's language.
LANGUAGE = "en"
#: Longer than any issue number SQLite stores (19 digits).
MAX_NUMBER_DIGITS = 19


def endpoints(settings: Settings) -> list[Endpoint]:
    """With a password, the preview on any address (behind the password)."""
    return routes(settings, loopback=False) if settings.preview_password else []


def serve_endpoints(settings: Settings, host: str) -> list[Endpoint]:
    """What ``policyfeed serve --host HOST`` adds: on a loopback address, the preview open to
    this machine (and to the password, if set); elsewhere nothing (:func:`endpoints` gives
    the password's)."""
    return routes(settings, loopback=True) if is_loopback_host(host) else []


def routes(settings: Settings, *, loopback: bool) -> list[Endpoint]:
    access = PreviewAccess(settings.preview_password, loopback, settings.trusted_proxies)
    pages: list[tuple[str, Callable[..., Response]]] = [
        (ROOT, index),
        (ROOT + "next/", next_page),
        (ROOT + "next/<name>", next_part),
        (ROOT + "issues/<number>/", issue_page),
        (ROOT + "issues/<number>/<name>", issue_part),
        (ROOT + "<path:rest>", missing),
    ]
    return [Endpoint(rule, Guarded(access, view), max_body=0) for rule, view in pages]


@dataclass(frozen=True)
class Guarded:
    """A preview view behind the access rule, its answers private."""

    access: PreviewAccess
    view: Callable[..., Response]

    def __call__(self, request: Request, site: WebContext, **values: Any) -> Response:
        decision = self.access.decide(request)
        if decision is Decision.HIDDEN:
            # Exactly what the site answers for this path without a preview.
            return StaticFiles(site.out_dir).serve(request, request.path[1:])
        if decision is Decision.CHALLENGE:
            response = _error(
                site, 401, "Password needed", "The editors' preview asks for its password."
            )
            response.headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
        elif decision is Decision.HELD:
            wait = self.access.retry_after(request)
            minutes = max(1, -(-wait // 60))
            later = "in a minute" if minutes == 1 else f"in {minutes} minutes"
            response = _error(
                site, 429, "Too many wrong passwords",
                f"Too many wrong passwords were tried. Try again {later}.",
            )  # fmt: skip
            response.headers["Retry-After"] = str(wait)
        else:
            response = self._answer(request, site, values)
        response.headers.update(PRIVATE_HEADERS)
        return response

    def _answer(self, request: Request, site: WebContext, values: dict[str, Any]) -> Response:
        try:
            with opened_read_only(site.db_path) as db:
                return self.view(request, site, db, **values)
        except NotFoundError as exc:
            return _error(site, 404, "Not in the preview", str(exc))
        except DigestTooLargeError as exc:
            return _error(site, 409, "Too large to send", str(exc))
        except HTTPException as exc:
            return _error(site, exc.code or 500, exc.name, exc.description or "")
        except (sqlite3.Error, PolicyfeedError) as exc:
            log.warning("preview not answered: %s", exc)
            response = _error(
                site, 503, "Not available", "The database cannot be read right now; try again."
            )
            response.headers["Retry-After"] = "30"
            return response


def _error(site: WebContext, code: int, title: str, message: str) -> Response:
    return site.page(
        ERROR_TEMPLATE, status=code, language=LANGUAGE, code=code, title=title, message=message
    )


def _number(text: str) -> int:
    """An issue number as the preview writes it (ASCII digits, no leading zero); else 404."""
    if not (text.isascii() and text.isdigit()) or text[0] == "0" or len(text) > MAX_NUMBER_DIGITS:
        raise NotFound()
    return int(text)


def _part(name: str) -> tuple[str, str]:
    """``vancouver.html`` → (``vancouver``, ``html``); 404 for any other name."""
    slug, dot, kind = name.rpartition(".")
    if not dot or not slug or kind not in KINDS:
        raise NotFound()
    return slug, kind


def _base(request: Request, previewed: PreviewedIssue) -> str:
    if previewed.planned:
        return f"{request.script_root}{ROOT}next/"
    return f"{request.script_root}{ROOT}issues/{previewed.issue.number}/"


# --- views (each gets the database, opened read-only) ----------------------------------------


def index(request: Request, site: WebContext, db: Database) -> Response:
    upcoming = digest_preview.next_issue(db, site.settings, site.now())
    waiting = digest_preview.waiting_issues(db)
    root = request.script_root + ROOT
    return site.page(
        "preview/index.html",
        language=LANGUAGE,
        upcoming=upcoming,
        waiting=waiting,
        counts={issue.number: len(digest_preview.issue_posts(db, issue)) for issue in waiting},
        preview_root=root,
    )


def _issue(request: Request, site: WebContext, db: Database, previewed: PreviewedIssue) -> Response:
    from policyfeed.digest.render import CLIP_BYTES

    return site.page(
        "preview/issue.html",
        language=LANGUAGE,
        previewed=previewed,
        issue=previewed.issue,
        variants=digest_preview.previewed_variants(db, site.settings, previewed),
        base=_base(request, previewed),
        preview_root=request.script_root + ROOT,
        clip_bytes=CLIP_BYTES,
    )


def _part_answer(
    request: Request, site: WebContext, db: Database, previewed: PreviewedIssue, name: str
) -> Response:
    if request.path.endswith("/"):
        raise NotFound()  # a file's name, not a folder's
    slug, kind = _part(name)
    share = digest_preview.variant_by_slug(db, previewed, slug)
    digest = digest_preview.render_variant(site.settings, previewed, share)
    body = digest.html if kind == "html" else digest.text
    return Response(body, content_type=KINDS[kind])


def _upcoming(site: WebContext, db: Database) -> PreviewedIssue:
    upcoming = digest_preview.next_issue(db, site.settings, site.now())
    if upcoming is None:
        raise NotFoundError("No published post is waiting for an issue.")
    return upcoming


def next_page(request: Request, site: WebContext, db: Database) -> Response:
    return _issue(request, site, db, _upcoming(site, db))


def next_part(request: Request, site: WebContext, db: Database, name: str) -> Response:
    return _part_answer(request, site, db, _upcoming(site, db), name)


def issue_page(request: Request, site: WebContext, db: Database, number: str) -> Response:
    return _issue(request, site, db, digest_preview.stored_issue(db, _number(number)))


def issue_part(
    request: Request, site: WebContext, db: Database, number: str, name: str
) -> Response:
    previewed = digest_preview.stored_issue(db, _number(number))
    return _part_answer(request, site, db, previewed, name)


def missing(request: Request, site: WebContext, db: Database, rest: str) -> Response:
    raise NotFound()
