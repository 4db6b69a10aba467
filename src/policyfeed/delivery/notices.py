"""The sign-up's own messages (confirmation, welcome, preferences link) on their way out.

Each is composed (:mod:`policyfeed.digest.notices`) and queued in the notices ledger in the
caller's transaction. It is then handed over at once through the configured transport, and at
most once: ``pending → sending`` is committed before the hand-off and the result after it, as
for the digest. A relay that is down leaves the row pending for the next ``publish`` to send; a
notice that waited past its expiry is dropped, never sent late.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database

from policyfeed.audience.signup import NoticeRequest
from policyfeed.delivery.transport import (
    RecipientDeferred,
    SendBlocked,
    SendDeferred,
    SendRefused,
    SendUncertain,
    Transport,
)
from policyfeed.store import notices as store
from policyfeed.store import subscribers as subscriber_store
from policyfeed.store import transaction

if TYPE_CHECKING:
    from policyfeed.config import Settings

log = logging.getLogger(__name__)

#: Who may still get a queued notice when it is finally handed over.
RECIPIENT_STATUSES = {
    "confirm": ("pending", "unsubscribed", "bounced"),
    "welcome": ("active", "paused"),
    "preferences": ("active", "paused", "unsubscribed", "bounced"),
}


def queue_notice(
    db: Database, settings: Settings, secret: str, request: NoticeRequest, *, now: datetime
) -> int:
    """Compose a notice (its links signed with ``secret``) and add it to the ledger as pending;
    returns its id. Call inside the transaction that decided it, so that the decision and the
    message stand or fall together."""
    message_id = f"{request.kind}.{secrets.token_hex(8)}@{settings.domain}"
    from policyfeed.digest.notices import compose_notice

    message = compose_notice(db, settings, secret, request, now=now, message_id=message_id)
    return store.insert_notice(
        db,
        subscriber_id=request.subscriber_id,
        kind=request.kind,
        message_id=message_id,
        message=message,
        now=now,
        expires_at=now + settings.confirm_within,
    )


@dataclass
class NoticeReport:
    sent: int = 0
    failed: int = 0
    expired: int = 0
    skipped: int = 0
    #: Left ``sending`` by an interrupted hand-off over SMTP: not handed over again.
    ambiguous: int = 0
    deferred: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.expired + self.skipped


def deliver_notices(
    db: Database,
    transport: Transport,
    *,
    sender: str,
    clock: Callable[[], datetime],
    ids: Sequence[int] | None = None,
    resend_ambiguous: bool = False,
) -> NoticeReport:
    """Hand over the unsettled notices (only ``ids``, if given), oldest first; stop when the
    relay is down or unusable. A notice an interrupted hand-off left ``sending`` is settled when
    the transport can tell whether it arrived, else left alone (or sent again with
    ``resend_ambiguous``)."""
    report = NoticeReport()
    for notice in store.unsettled_notices(db, ids):
        redo = notice.status == "sending"
        if redo:
            arrived = transport.delivered(notice.message_id)
            if arrived is True:
                _mark(db, notice.id, "sent", clock)
                report.sent += 1
                continue
            if arrived is None and not resend_ambiguous:
                report.ambiguous += 1
                continue
        if clock() >= notice.expires_at or notice.message is None:
            _mark(db, notice.id, "expired", clock, "not handed over before it expired")
            report.expired += 1
            continue
        subscriber = subscriber_store.subscriber_by_id(db, notice.subscriber_id)
        if subscriber is None:
            continue
        if subscriber.status not in RECIPIENT_STATUSES[notice.kind]:
            _mark(db, notice.id, "failed", clock, f"{subscriber.status} before it went out")
            report.skipped += 1
            continue
        if not _send_one(db, transport, notice, subscriber.email, sender, clock, redo, report):
            break
    return report


class _Taken(Exception):
    """Another sender took the notice (or it was settled) before this one's hand-off."""


def _send_one(
    db: Database,
    transport: Transport,
    notice: store.Notice,
    recipient: str,
    sender: str,
    clock: Callable[[], datetime],
    redo: bool,
    report: NoticeReport,
) -> bool:
    """One notice's hand-off and its ledger writes; False when delivery must stop."""
    assert notice.message is not None

    def handoff() -> None:  # the point of no return: `sending` is committed first
        with transaction(db):
            if not store.mark_sending(db, notice.id, now=clock(), redo=redo):
                raise _Taken(notice.id)

    try:
        transport.send(
            notice.message,
            sender=sender,
            recipient=recipient,
            message_id=notice.message_id,
            handoff=handoff,
        )
    except _Taken:
        return True
    except SendRefused as exc:
        _mark(db, notice.id, "failed", clock, str(exc))
        report.failed += 1
        report.failures.append(str(exc))
    except RecipientDeferred as exc:
        _mark(db, notice.id, "pending", clock, str(exc))
    except SendBlocked as exc:
        _mark(db, notice.id, "pending", clock, str(exc))
        report.deferred = str(exc)
        return False
    except SendDeferred as exc:
        _mark(db, notice.id, "pending", clock, str(exc))
        report.deferred = str(exc) or "temporary failure"
        return False
    except SendUncertain as exc:  # the relay may have it: the row stays `sending`
        report.ambiguous += 1
        report.deferred = str(exc)
        return False
    else:
        _mark(db, notice.id, "sent", clock)
        report.sent += 1
    return True


def _mark(
    db: Database, notice_id: int, status: str, clock: Callable[[], datetime], error: str = ""
) -> None:
    with transaction(db):
        store.mark_result(db, notice_id, status, now=clock(), error=error)


def send_waiting_notices(
    db: Database,
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    ids: Sequence[int] | None = None,
    transport: Transport | None = None,
) -> NoticeReport:
    """Send what the notices ledger holds (only ``ids``, if given) through ``transport`` or the
    configured one; does nothing, and opens no connection, when nothing waits."""
    if ids is None and not store.has_unsettled(db):
        return NoticeReport()
    if ids is not None and not store.unsettled_notices(db, ids):
        return NoticeReport()
    from policyfeed.delivery.ledger import make_transport

    own = transport is None
    transport = transport or make_transport(settings)
    try:
        report = deliver_notices(db, transport, sender=settings.sender, clock=clock, ids=ids)
    finally:
        if own:
            transport.close()
    if report.deferred:
        log.warning("sign-up messages wait for the relay: %s", report.deferred)
    if report.sent:
        log.info("sent %d sign-up message(s)", report.sent)
    return report
