"""A test copy of an issue for an editor: built exactly as subscribers get it, ledger untouched."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from policyfeed.delivery.transport import SendDeferred, SendRefused
from policyfeed.errors import ConflictError, DeliveryError, PolicyfeedError

if TYPE_CHECKING:
    from sqlite_utils import Database

    from policyfeed.config import Settings
    from policyfeed.delivery.transport import Transport

TEST_PREFIX = "[Test] "


class CopyRefused(PolicyfeedError):
    """The relay refused the test copy for good (a 5xx answer)."""


@dataclass(frozen=True)
class SentCopy:
    recipient: str
    message_id: str
    via: str  # "smtp host:port" or "outbox <folder>"
    size: int


def build_test_copy(
    db: Database,
    settings: Settings,
    number: int,
    recipient: str,
    *,
    now: datetime,
    chapter: str | None = None,
) -> tuple[bytes, str]:
    """The message bytes and its Message-ID (without brackets) for one test copy.

    The same template and personalisation as real delivery; only the subject is marked, the
    Message-ID is new each time, and the unsubscribe token is signed with a throwaway key for
    subscriber 0, so the link in a test copy can never unsubscribe anyone.
    """
    from policyfeed.digest.issues import get_chapter, get_issue, issue_posts, posts_for_chapter
    from policyfeed.digest.mail import Personaliser, Recipient, build_template
    from policyfeed.digest.render import UNSUBSCRIBE_URL_TOKEN, render_issue

    issue = get_issue(db, number)
    posts = issue_posts(db, issue)
    variant = get_chapter(db, chapter) if chapter else None
    if variant is not None:
        posts = posts_for_chapter(posts, variant.topic_slugs)
        if not posts:
            raise ConflictError(
                f"chapter {chapter!r} gets nothing from issue {number}: none of its posts has "
                "one of the chapter's topics"
            )
    digest = render_issue(issue, posts, settings, chapter=variant)
    digest = dataclasses.replace(digest, subject=TEST_PREFIX + digest.subject)
    template = build_template(
        digest,
        settings,
        issue_number=issue.number,
        variant=chapter or "",
        now=now,
        placeholders={"unsubscribe_url": UNSUBSCRIBE_URL_TOKEN},
    )
    nonce = secrets.token_hex(4)
    stamp = hashlib.sha256(f"{now.isoformat()}\0{recipient}".encode()).hexdigest()[:8]
    message_id = f"issue-{issue.number}.test-{stamp}{nonce}@{settings.domain}"
    personaliser = Personaliser(settings, secrets.token_urlsafe(32))
    message = personaliser.message(
        template, Recipient(subscriber_id=0, email=recipient, name="", message_id=message_id)
    )
    return message, message_id


def copy_transport(settings: Settings) -> tuple[Transport, str]:
    """The configured relay (no secret needed: the copy carries no real token), else the outbox."""
    if settings.smtp_host:
        from policyfeed.delivery.smtp import SmtpTransport

        transport: Transport = SmtpTransport(settings, require_secret=False)
        return transport, f"smtp {settings.smtp_host}:{settings.smtp_port}"
    from policyfeed.delivery.outbox import OutboxTransport

    return OutboxTransport(settings.outbox_dir), f"outbox {settings.outbox_dir}"


def send_test_copy(
    db: Database,
    settings: Settings,
    number: int,
    recipient: str,
    *,
    now: datetime,
    chapter: str | None = None,
    transport: Transport | None = None,
) -> SentCopy:
    """Send one test copy of issue ``number`` to ``recipient``; writes nothing in the database.

    Raises DeliveryError (exit 75) when the relay is unavailable, CopyRefused when it
    refuses the address or the message.
    """
    message, message_id = build_test_copy(db, settings, number, recipient, now=now, chapter=chapter)
    via = "the given transport"
    if transport is None:
        transport, via = copy_transport(settings)
    try:
        transport.send(message, sender=settings.sender, recipient=recipient, message_id=message_id)
    except SendDeferred as exc:
        raise DeliveryError(
            f"test copy of issue {number} not sent, try again later: {exc}"
        ) from None
    except SendRefused as exc:
        raise CopyRefused(f"the relay refused the test copy for {recipient}: {exc}") from None
    finally:
        transport.close()
    return SentCopy(recipient=recipient, message_id=message_id, via=via, size=len(message))
