"""The sign-up's own messages (confirmation, welcome, preferences link) as finished MIME
messages: each rendered from its templates (``email/<kind>.html``, ``.txt`` and
``_subject.txt``, overridable like the digest's), CSS inlined, and built by the digest's MIME code
(the same headers, List-Id and one-click List-Unsubscribe) for its one recipient. Delivery
(:mod:`policyfeed.delivery.notices`) queues and sends them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from policyfeed.audience.signup import NoticeRequest
from policyfeed.audience.subscribers import preferences_url
from policyfeed.audience.tokens import make_confirm_token, make_preferences_token
from policyfeed.store import signups as signup_store
from policyfeed.store import subscribers as subscriber_store
from policyfeed.templating import format_date, render_template

if TYPE_CHECKING:
    from policyfeed.config import Settings

KINDS = ("confirm", "welcome", "preferences")
#: The templates of each kind: HTML, text, subject.
TEMPLATES = {kind: (f"email/{kind}.html", f"email/{kind}.txt", f"email/{kind}_subject.txt")
             for kind in KINDS}  # fmt: skip


def confirm_url(settings: Settings, token: str) -> str:
    return f"{settings.app_endpoint('confirm')}?t={token}"


@dataclass(frozen=True)
class _Content:
    subject: str
    html: str
    text: str


def _render(settings: Settings, kind: str, context: dict[str, Any]) -> _Content:
    from policyfeed.content.plaintext import shorten, tidy_text
    from policyfeed.digest.render import inline_css

    html_name, text_name, subject_name = TEMPLATES[kind]
    language = context["site"]["language"]
    subject = shorten(render_template(settings, subject_name, language=language, **context), 200)
    html = inline_css(render_template(settings, html_name, language=language, **context))
    text = tidy_text(render_template(settings, text_name, language=language, **context))
    return _Content(subject, html, text)


def compose_notice(
    db: Database,
    settings: Settings,
    secret: str,
    request: NoticeRequest,
    *,
    now: datetime,
    message_id: str,
) -> bytes:
    """The finished message of one notice for its subscriber."""
    from policyfeed.digest.mail import Personaliser, Recipient, build_template
    from policyfeed.digest.render import site_context

    subscriber = subscriber_store.subscriber_by_id(db, request.subscriber_id)
    if subscriber is None:
        raise ValueError(f"no subscriber {request.subscriber_id}")
    chapter_id = subscriber.chapter_id
    expires = now + settings.confirm_within
    context: dict[str, Any] = {
        "subscriber": {"name": subscriber.name, "email": subscriber.email},
        "reason": request.reason,
        "valid_days": max(1, round(settings.confirm_within.total_seconds() / 86400)),
        "preferences_url": preferences_url(
            settings, make_preferences_token(secret, subscriber.id or 0, settings.list_identifier)
        ),
        "request_url": settings.app_endpoint("preferences/link"),
        "subscribe_url": settings.app_endpoint("subscribe"),
        "confirm_url": "",
        "consent_text": settings.consent_text,
    }
    if request.kind == "confirm":
        consent = signup_store.get_consent(db, request.consent_id or 0)
        if consent is None:
            raise ValueError(f"no consent {request.consent_id}")
        chapter_id = consent.chapter_id
        token = make_confirm_token(
            secret, consent.id, settings.list_identifier, expires=int(expires.timestamp())
        )
        context["confirm_url"] = confirm_url(settings, token)
        context["consent_text"] = consent.consent_text
    chapters = {c.id: c for c in subscriber_store.list_chapters(db)}
    chapter = chapters.get(chapter_id) if chapter_id is not None else None
    context["chapter"] = {"name": chapter.name, "slug": chapter.slug} if chapter else None
    # In the language of the member's chapter (the one signed up for), else the site's.
    language = (chapter.language if chapter else "") or settings.language
    context["site"] = site_context(settings, language)
    context["expires"] = format_date(expires, settings.tz, language)
    content = _render(settings, request.kind, context)
    template = build_template(
        content, settings, issue_number=0, variant=f"notice-{request.kind}", now=now
    )
    recipient = Recipient(subscriber.id or 0, subscriber.email, subscriber.name, message_id)
    return Personaliser(settings, secret).message(template, recipient)
