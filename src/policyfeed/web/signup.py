"""Joining by oneself, over the web: ``/subscribe``, ``/confirm?t=…`` and ``/preferences/link``.

- ``GET /subscribe`` is the sign-up page; ``POST /subscribe`` takes its form or a site page's
  subscribe box. Whatever happens to the address (new, known, forgotten, throttled) the answer
  is the same "check your inbox" page: the form tells nobody whether an address is on the list.
  A mistyped address or an unknown chapter is sent back to be fixed (that is about the input,
  not the list).
- ``GET /confirm?t=…`` shows a button and changes nothing (mail scanners open links);
  ``POST`` confirms: the member becomes active and a welcome message is sent. An expired or a
  forged link gets a page that says so (410, 400).
- ``GET/POST /preferences?t=…``: a member's page, reached from the link in every digest and in
  the welcome message: name, chapter, topics, pause and resume, unsubscribe, subscribe again
  (after an unsubscribe only through a fresh confirmation by mail). Each POST needs the page's
  own form token, bound to that member.
- ``GET/POST /preferences/link``: a member who lost every message asks for a fresh link to
  their preferences, again without learning whether the address is subscribed.

Abuse: every form the app renders carries a signed, expiring CSRF token (``csrf``: no server
session). The subscribe boxes of the static pages cannot carry a fresh one; the browser's
``Origin`` header, which a page on another site cannot forge, must then name this site (or the
app), else the sign-up page is shown with the values filled in, to be sent once more. A hidden
honeypot field (``website``) filled in is answered as a success and does nothing. Requests
are counted per client address (behind ``web.trusted_proxies``, the proxies' X-Forwarded-For)
and per mail address in SQLite, so the limits hold across threads, processes and restarts (see
:mod:`policyfeed.audience.signup`).

Messages are queued in the notices ledger inside the request's transaction, then handed to the
configured transport by a background thread, so the answer takes as long whether or not a
message is sent (and a slow relay does not hold the page); a message the relay could not take
waits for the next ``publish``.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from werkzeug.wrappers import Request, Response

from policyfeed.audience.signup import (
    Client,
    NoticeRequest,
    SignupForm,
    allow_client,
    confirm_signup,
    read_confirmation,
    request_preferences_link,
    request_signup,
)
from policyfeed.audience.tokens import (
    check_form_token,
    make_form_token,
    make_preferences_token,
    read_confirm_token,
    read_preferences_token,
)
from policyfeed.config import Settings
from policyfeed.errors import InputError, PolicyfeedError
from policyfeed.model import N_
from policyfeed.web.app import Endpoint, WebContext

log = logging.getLogger(__name__)

SUBSCRIBE_PATH = "/subscribe"
CONFIRM_PATH = "/confirm"
PREFERENCES_PATH = "/preferences"
LINK_PATH = "/preferences/link"
RETRY_TEMPLATE = "web/unsubscribe_retry.html"
#: A sign-up form is a few short fields.
MAX_BODY = 8 * 1024
SEND_WAIT = 30.0  # seconds :meth:`NoticeSender.wait` waits at most


def endpoints(settings: Settings) -> list[Endpoint]:
    if not settings.signup_enabled:
        return []
    views = SignupViews(NoticeSender())
    return [
        Endpoint(SUBSCRIBE_PATH, views.subscribe, methods=("GET", "POST"), max_body=MAX_BODY),
        Endpoint(
            CONFIRM_PATH,
            views.confirm,
            methods=("GET", "POST"),
            max_body=MAX_BODY,
            token_page=True,
        ),
        Endpoint(
            PREFERENCES_PATH,
            views.preferences,
            methods=("GET", "POST"),
            max_body=MAX_BODY,
            token_page=True,
        ),
        Endpoint(LINK_PATH, views.preferences_link, methods=("GET", "POST"), max_body=MAX_BODY),
    ]


# --- sending in the background --------------------------------------------------------------------


class NoticeSender:
    """Hands queued notices to the transport on a thread of its own, one batch at a time."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[WebContext, list[int]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, site: WebContext, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="policyfeed-notices", daemon=True
                )
                self._thread.start()
        self._queue.put((site, list(ids)))

    def wait(self, timeout: float = SEND_WAIT) -> bool:
        """Whether everything submitted was handled within ``timeout`` seconds (for tests)."""
        done = threading.Event()

        def joined() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=joined, daemon=True).start()
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            site, ids = self._queue.get()
            try:
                send_now(site, ids)
            except Exception:  # the rows stay pending for the next publish
                log.exception("sign-up messages %s not sent yet", ids)
            finally:
                self._queue.task_done()


def send_now(site: WebContext, ids: Sequence[int]) -> None:
    from policyfeed.delivery.notices import send_waiting_notices

    db = _open(site)
    try:
        send_waiting_notices(db, site.settings, clock=site.now, ids=ids)
    finally:
        db.conn.close()


def _open(site: WebContext) -> Any:
    from pathlib import Path

    from policyfeed.store import StoreError, open_db

    if not Path(site.db_path).is_file():  # opening would create an empty database
        raise StoreError(f"{site.db_path}: no such database")
    return open_db(site.db_path)


# --- the views ------------------------------------------------------------------------------------


def _client(request: Request) -> Client:
    return Client(request.remote_addr or "", request.headers.get("User-Agent", ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _from_this_site(request: Request, settings: Settings) -> bool:
    """Whether the browser says the form was on one of this site's pages: its Origin is the
    site's, the app's, or this very host's (a same-origin post, e.g. under ``serve``)."""
    origin = request.headers.get("Origin", "").strip().lower()
    allowed = {
        _origin(settings.base_url),
        _origin(settings.app_url or settings.base_url),
        _origin(request.host_url),
    }
    return bool(origin) and origin != "null" and origin in allowed


class SignupViews:
    def __init__(self, sender: NoticeSender) -> None:
        self.sender = sender

    # helpers
    def _csrf(self, site: WebContext, form: str, bound_to: int = 0) -> str:
        return make_form_token(
            site.secret,
            form,
            site.settings.list_identifier,
            issued=int(site.now().timestamp()),
            bound_to=bound_to,
        )

    def _csrf_ok(self, request: Request, site: WebContext, form: str, bound_to: int = 0) -> bool:
        return check_form_token(
            site.secret,
            request.form.get("csrf", ""),
            form,
            site.settings.list_identifier,
            now=int(site.now().timestamp()),
            bound_to=bound_to,
        )

    def _retry(self, site: WebContext, exc: Exception) -> Response:
        log.warning("sign-up request not answered yet: %s", exc)
        response = site.page(RETRY_TEMPLATE, status=503)
        response.headers["Retry-After"] = "60"
        return response

    def _too_many(self, site: WebContext) -> Response:
        response = site.page("web/too_many.html", status=429, minutes=10)
        response.headers["Retry-After"] = "600"
        return response

    def _language(self, site: WebContext, chapter_slug: str) -> str | None:
        """The language of the chapter a form names (None: none, unknown: the site's)."""
        from policyfeed.store import subscribers as store

        if not chapter_slug:
            return None
        db = _open(site)
        try:
            found = {c.slug: c.language for c in store.list_chapters(db)}
        finally:
            db.conn.close()
        return found.get(chapter_slug) or None

    def _signup_context(self, site: WebContext) -> dict[str, Any]:
        from policyfeed.store import subscribers as store

        db = _open(site)
        try:
            chapters = [{"slug": c.slug, "name": c.name} for c in store.list_chapters(db)]
        finally:
            db.conn.close()
        return {"chapters": chapters, "consent_text": site.settings.consent_text}

    def _form_page(
        self,
        request: Request,
        site: WebContext,
        values: dict[str, str],
        *,
        status: int = 200,
        error: str = "",
        note: str = "",
    ) -> Response:
        return site.page(
            "web/subscribe.html",
            status=status,
            language=self._language(site, values.get("chapter", "")),
            signup=self._signup_context(site),
            values=values,
            csrf=self._csrf(site, "subscribe"),
            action=request.script_root + SUBSCRIBE_PATH,
            link_page=request.script_root + LINK_PATH,
            error=error,
            note=note,
        )

    def _queue(self, db: Any, site: WebContext, wanted: NoticeRequest | None) -> list[int]:
        from policyfeed.delivery.notices import queue_notice

        if wanted is None:
            return []
        return [queue_notice(db, site.settings, site.secret, wanted, now=site.now())]

    # /subscribe
    def subscribe(self, request: Request, site: WebContext) -> Response:
        from policyfeed.store import transaction

        values = {
            "email": request.form.get("email", "").strip()[:254],
            "name": request.form.get("name", "").strip()[:200],
            "chapter": request.form.get("chapter", "").strip()[:100],
        }
        try:
            if request.method != "POST":
                return self._form_page(request, site, {"email": "", "name": "", "chapter": ""})
            trusted = self._csrf_ok(request, site, "subscribe") or (
                request.form.get("box") == "1" and _from_this_site(request, site.settings)
            )
            if not trusted:
                note = N_(
                    "To make sure this request comes from you, please check the details and "
                    "press Subscribe once more."
                )
                return self._form_page(request, site, values, status=403, note=note)
            form = SignupForm(
                values["email"],
                values["name"],
                values["chapter"],
                page=request.headers.get("Referer", "") or site.settings.app_endpoint("subscribe"),
            )
            db = _open(site)
            try:
                with transaction(db):
                    if not allow_client(db, _client(request), now=site.now()):
                        return self._too_many(site)
                    if request.form.get("website", ""):
                        log.info("sign-up with the honeypot field filled in: ignored")
                        wanted = None
                    else:
                        wanted = request_signup(
                            db, site.settings, form, _client(request), now=site.now()
                        )
                    ids = self._queue(db, site, wanted)
            except InputError as exc:
                return self._form_page(request, site, values, status=400, error=str(exc))
            finally:
                db.conn.close()
        except (sqlite3.Error, PolicyfeedError) as exc:
            return self._retry(site, exc)
        self.sender.submit(site, ids)
        return site.page(
            "web/subscribe_sent.html",
            language=self._language(site, values["chapter"]),
            email=values["email"],
            valid_days=_days(site.settings),
            subscribe_page=request.script_root + SUBSCRIBE_PATH,
        )

    # /confirm
    def confirm(self, request: Request, site: WebContext) -> Response:
        from policyfeed.store import transaction

        token = site.token(request)
        claim = read_confirm_token(site.secret, token, site.settings.list_identifier)
        subscribe_page = request.script_root + SUBSCRIBE_PATH
        ids: list[int] = []
        try:
            db = _open(site)
            try:
                found = read_confirmation(db, site.settings, claim, now=site.now())
                language = _consent_language(db, found.consent_id)
                if (
                    request.method == "POST"
                    and found.state == "valid"
                    and self._csrf_ok(request, site, "confirm", found.consent_id)
                ):
                    with transaction(db):
                        found, wanted = confirm_signup(
                            db, site.settings, claim, _client(request), now=site.now()
                        )
                        ids = self._queue(db, site, wanted)
            finally:
                db.conn.close()
        except (sqlite3.Error, PolicyfeedError) as exc:
            return self._retry(site, exc)
        if found.state == "invalid":
            return site.page("web/confirm_invalid.html", status=400, subscribe_page=subscribe_page)
        if found.state == "expired":
            return site.page(
                "web/confirm_expired.html",
                status=410,
                language=language,
                subscribe_page=subscribe_page,
                valid_days=_days(site.settings),
            )
        if found.state == "valid":  # a GET, or a POST whose form token was missing or old
            return site.page(
                "web/confirm.html",
                language=language,
                email=found.email,
                token=token,
                csrf=self._csrf(site, "confirm", found.consent_id),
                action=f"{request.script_root}{CONFIRM_PATH}?t={quote(token, safe='')}",
                status=403 if request.method == "POST" else 200,
            )
        self.sender.submit(site, ids)
        preferences = make_preferences_token(
            site.secret, found.subscriber_id, site.settings.list_identifier
        )
        return site.page(
            "web/confirmed.html",
            language=language,
            welcomed=bool(ids),
            preferences_url=f"{request.script_root}{PREFERENCES_PATH}?t={preferences}",
        )

    # /preferences
    def preferences(self, request: Request, site: WebContext) -> Response:
        from policyfeed.audience.preferences import change_preferences, topic_choices
        from policyfeed.store import subscribers as store
        from policyfeed.store import transaction

        token = site.token(request)
        subscriber_id = read_preferences_token(site.secret, token, site.settings.list_identifier)
        link_page = request.script_root + LINK_PATH
        note = error = ""
        status = 200
        ids: list[int] = []
        try:
            db = _open(site)
            try:
                member = store.subscriber_by_id(db, subscriber_id) if subscriber_id else None
                if member is None or member.status == "pending":
                    return site.page(
                        "web/preferences_invalid.html", status=400, link_page=link_page
                    )
                if request.method == "POST":
                    if not self._csrf_ok(request, site, "preferences", subscriber_id or 0):
                        status, error = (
                            403,
                            N_(
                                "This form was too old or did not come from this site, so nothing "
                                "changed: please make your choice again."
                            ),
                        )
                    else:
                        try:
                            with transaction(db):
                                if not allow_client(db, _client(request), now=site.now()):
                                    return self._too_many(site)
                                change = change_preferences(
                                    db,
                                    site.settings,
                                    member,
                                    action=request.form.get("action", "save"),
                                    name=request.form.get("name", "").strip()[:200],
                                    chapter=request.form.get("chapter", "").strip()[:100],
                                    client=_client(request),
                                    now=site.now(),
                                    page=site.settings.app_endpoint("preferences"),
                                    topics=_ticked_topics(request),
                                )
                                ids = self._queue(db, site, change.notice)
                            note = change.note
                        except InputError as exc:
                            status, error = 400, str(exc)
                        member = store.subscriber_by_id(db, member.id or 0) or member
                known = store.list_chapters(db)
                chapters = [{"slug": c.slug, "name": c.name} for c in known]
                language = {c.slug: c.language for c in known}.get(member.chapter or "") or None
                topics = [
                    {"slug": t.slug, "name": t.name} for t in topic_choices(db, member.topics)
                ]
            finally:
                db.conn.close()
        except (sqlite3.Error, PolicyfeedError) as exc:
            return self._retry(site, exc)
        self.sender.submit(site, ids)
        return site.page(
            "web/preferences.html",
            status=status,
            language=language,
            member={
                "email": member.email,
                "name": member.name,
                "chapter": member.chapter or "",
                "status": member.status,
                "topics": list(member.topics),
            },
            signup={"chapters": chapters, "consent_text": site.settings.consent_text},
            topics=topics,
            csrf=self._csrf(site, "preferences", member.id or 0),
            action=f"{request.script_root}{PREFERENCES_PATH}?t={quote(token, safe='')}",
            note=note,
            error=error,
        )

    # /preferences/link
    def preferences_link(self, request: Request, site: WebContext) -> Response:
        from policyfeed.store import transaction

        email = request.form.get("email", "").strip()[:254]
        action = request.script_root + LINK_PATH

        def form(status: int = 200, error: str = "") -> Response:
            return site.page(
                "web/preferences_link.html",
                status=status,
                email=email,
                csrf=self._csrf(site, "link"),
                action=action,
                error=error,
            )

        if request.method != "POST":
            return form()
        if not self._csrf_ok(request, site, "link"):
            return form(
                403,
                N_("This form was too old or did not come from this site: please send it again."),
            )
        try:
            db = _open(site)
            try:
                with transaction(db):
                    if not allow_client(db, _client(request), now=site.now()):
                        return self._too_many(site)
                    wanted = None
                    if not request.form.get("website", ""):
                        wanted = request_preferences_link(db, site.settings, email, now=site.now())
                    ids = self._queue(db, site, wanted)
            except InputError as exc:
                return form(400, str(exc))
            finally:
                db.conn.close()
        except (sqlite3.Error, PolicyfeedError) as exc:
            return self._retry(site, exc)
        self.sender.submit(site, ids)
        return site.page("web/preferences_link_sent.html", email=email)


def _consent_language(db: Any, consent_id: int) -> str | None:
    """The language of the chapter a sign-up chose (None: none, or the site's)."""
    from policyfeed.store import signups as signup_store
    from policyfeed.store.subscribers import chapter_language

    consent = signup_store.get_consent(db, consent_id) if consent_id else None
    return (chapter_language(db, consent.chapter_id) if consent else "") or None


def _ticked_topics(request: Request) -> list[str] | None:
    """The topic slugs the preferences form ticked, or None when the form showed no topic boxes
    (a page from before they existed, or a member who is not subscribed)."""
    if not request.form.get("topics_shown"):
        return None
    return [value.strip()[:100] for value in request.form.getlist("topic")[:500]]


def _days(settings: Settings) -> int:
    return max(1, round(settings.confirm_within.total_seconds() / 86400))
