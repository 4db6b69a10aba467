"""Test copies of an issue for editors: built exactly as subscribers get it, ledger untouched.

An issue variant is rendered once and each address gets its own copy over one connection. A
copy's subject is marked, its Message-ID is new each time (mail programs drop repeated ids), and
its links are the sample member's (:mod:`policyfeed.digest.sample`): the unsubscribe link in a
test copy unsubscribes nobody.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from policyfeed.delivery.transport import (
    RecipientDeferred,
    SendBlocked,
    SendDeferred,
    SendRefused,
    SendUncertain,
)
from policyfeed.errors import EXIT_ERROR, EXIT_OK, EXIT_TEMPFAIL, ConflictError

if TYPE_CHECKING:
    from sqlite_utils import Database

    from policyfeed.config import Settings
    from policyfeed.delivery.transport import Transport
    from policyfeed.digest.mail import MessageTemplate
    from policyfeed.digest.render import RenderedDigest
    from policyfeed.model import Issue

TEST_PREFIX = "[Test] "

# What became of one copy.
SENT, REFUSED, DEFERRED, UNSURE, NOT_TRIED = "sent", "refused", "deferred", "unsure", "not tried"
BLOCKED = "blocked"  # the relay cannot be used as configured (certificate, STARTTLS, login)


@dataclass(frozen=True)
class CopyOutcome:
    recipient: str
    status: str
    message_id: str = ""
    size: int = 0
    error: str = ""


@dataclass
class CopiesReport:
    """The copies of one issue variant: one outcome per address, in the order given."""

    issue: int
    via: str  # "smtp host:port" or "outbox <folder>"
    outcomes: list[CopyOutcome] = field(default_factory=list)

    def with_status(self, *statuses: str) -> list[CopyOutcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def exit_code(self) -> int:
        """1 when the relay cannot be used as configured, 75 when some copies may go later
        (the relay was unavailable), 1 when one was refused for good, else 0."""
        if self.with_status(BLOCKED):
            return EXIT_ERROR
        if self.with_status(DEFERRED, UNSURE, NOT_TRIED):
            return EXIT_TEMPFAIL
        if self.with_status(REFUSED):
            return EXIT_ERROR
        return EXIT_OK


def issue_variant(
    db: Database, settings: Settings, number: int, chapter: str | None
) -> tuple[Issue, RenderedDigest]:
    """Issue ``number`` and the rendered variant of ``chapter`` (None: the whole issue)."""
    from policyfeed.digest.issues import get_chapter, get_issue, issue_posts, posts_for_chapter
    from policyfeed.digest.render import render_issue

    issue = get_issue(db, number)
    posts = issue_posts(db, issue)
    if not posts:
        raise ConflictError(f"issue {number} holds no posts ({issue.status}): nothing to send")
    variant = get_chapter(db, chapter) if chapter else None
    if variant is not None:
        posts = posts_for_chapter(posts, variant.topic_slugs, variant.post_language)
        if not posts:
            raise ConflictError(
                f"chapter {chapter!r} gets nothing from issue {number}: none of its posts has "
                "one of the chapter's topics"
            )
    return issue, render_issue(issue, posts, settings, chapter=variant)


def copy_template(
    digest: RenderedDigest, issue: Issue, settings: Settings, *, now: datetime, prefix: str
) -> MessageTemplate:
    """The message of a copy, built once for every address: the subject marked with
    ``prefix``, the placeholders kept for each copy's values."""
    from policyfeed.digest.mail import build_template
    from policyfeed.digest.render import MESSAGE_PLACEHOLDERS

    marked = dataclasses.replace(digest, subject=prefix + digest.subject)
    return build_template(
        marked,
        settings,
        issue_number=issue.number,
        variant=digest.chapter or "",
        now=now,
        placeholders=MESSAGE_PLACEHOLDERS,
    )


def copy_message(
    template: MessageTemplate,
    issue: Issue,
    settings: Settings,
    recipient: str,
    *,
    now: datetime,
    kind: str = "test",
) -> tuple[bytes, str]:
    """One address's copy and its Message-ID (without brackets): new on every call."""
    from policyfeed.digest.mail import Personaliser, Recipient
    from policyfeed.digest.sample import SAMPLE_KEY, SAMPLE_SUBSCRIBER_ID

    nonce = secrets.token_hex(4)
    stamp = hashlib.sha256(f"{now.isoformat()}\0{recipient}".encode()).hexdigest()[:8]
    message_id = f"issue-{issue.number}.{kind}-{stamp}{nonce}@{settings.domain}"
    personaliser = Personaliser(settings, SAMPLE_KEY)
    message = personaliser.message(
        template,
        Recipient(
            subscriber_id=SAMPLE_SUBSCRIBER_ID, email=recipient, name="", message_id=message_id
        ),
    )
    return message, message_id


def copy_transport(settings: Settings) -> tuple[Transport, str]:
    """The configured relay (no secret needed: a copy carries no real token), else the outbox."""
    if settings.smtp_host:
        from policyfeed.delivery.smtp import SmtpTransport

        transport: Transport = SmtpTransport(settings, require_secret=False)
        return transport, f"smtp {settings.smtp_host}:{settings.smtp_port}"
    from policyfeed.delivery.outbox import OutboxTransport

    return OutboxTransport(settings.outbox_dir), f"outbox {settings.outbox_dir}"


def send_copies(
    template: MessageTemplate,
    issue: Issue,
    settings: Settings,
    recipients: Sequence[str],
    *,
    now: datetime,
    kind: str = "test",
    transport: Transport | None = None,
) -> CopiesReport:
    """Hand one copy per address over one connection. A refused address does not stop the
    others; once the relay is unavailable, the addresses left are not tried."""
    from policyfeed.delivery.dkim import make_signer

    signer = make_signer(settings)  # signed as the members' copies are (a broken key: stop here)
    via = "the given transport"
    if transport is None:
        transport, via = copy_transport(settings)
    report = CopiesReport(issue=issue.number, via=via)
    stopped, untried = "", NOT_TRIED
    # One copy per mailbox: addresses are compared without case, as the subscribers' are.
    first: dict[str, str] = {}
    for address in recipients:
        first.setdefault(address.lower(), address)
    unique = list(first.values())
    try:
        for recipient in unique:
            if stopped:
                report.outcomes.append(CopyOutcome(recipient, untried, error=stopped))
                continue
            message, message_id = copy_message(
                template, issue, settings, recipient, now=now, kind=kind
            )
            if signer is not None:
                message = signer.sign(message)
            status, error = SENT, ""
            try:
                # The bounce address without a token: a copy names no delivery.
                transport.send(
                    message,
                    sender=settings.bounce_mailbox_address,
                    recipient=recipient,
                    message_id=message_id,
                )
            except SendBlocked as exc:  # the others would meet the same: not tried either
                status, error = BLOCKED, str(exc)
                stopped, untried = f"not tried: {exc}", BLOCKED
            except RecipientDeferred as exc:
                status, error = DEFERRED, str(exc)
            except SendDeferred as exc:
                status, error = DEFERRED, str(exc)
                stopped = f"not tried after the relay answered {exc}"
            except SendUncertain as exc:
                status, error = UNSURE, str(exc)
                stopped = f"not tried after the relay's answer was lost ({exc})"
            except SendRefused as exc:
                status, error = REFUSED, str(exc)
            report.outcomes.append(CopyOutcome(recipient, status, message_id, len(message), error))
    finally:
        transport.close()
    return report


def send_test_copies(
    db: Database,
    settings: Settings,
    number: int,
    recipients: Sequence[str],
    *,
    now: datetime,
    chapter: str | None = None,
    transport: Transport | None = None,
) -> CopiesReport:
    """Send a test copy of issue ``number`` (``chapter``'s variant) to each address; writes
    nothing in the database."""
    issue, digest = issue_variant(db, settings, number, chapter)
    template = copy_template(digest, issue, settings, now=now, prefix=TEST_PREFIX)
    return send_copies(template, issue, settings, recipients, now=now, transport=transport)
