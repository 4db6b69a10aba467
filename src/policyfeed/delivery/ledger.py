"""The deliveries ledger: which message each subscriber gets, and what became of it.

A message goes out at most once per (issue, subscriber). When delivery of an issue starts, one
row per active subscriber is frozen (later subscribers wait for the next issue). Each hand-off is
written before and after: ``pending → sending`` (committed), hand-off, then ``sent``, ``failed``
or back to ``pending`` (committed). A run killed during a hand-off leaves its row ``sending``:
nobody knows whether the message left. The outbox writes each message under a name derived from
its Message-ID, so doing such a row again is harmless and happens on the next run; over SMTP the
row is reported and handed over again (same Message-ID) only when the operator says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database

from policyfeed.delivery.transport import (
    RecipientDeferred,
    SendDeferred,
    SendRefused,
    SendUncertain,
    Transport,
)
from policyfeed.model import Delivery, Subscriber
from policyfeed.store import deliveries as store
from policyfeed.store import subscribers as subscriber_store
from policyfeed.store import transaction

if TYPE_CHECKING:
    from policyfeed.config import Settings

log = logging.getLogger(__name__)

#: (delivery row, its subscriber) → the finished message bytes for that subscriber.
Compose = Callable[[Delivery, Subscriber], bytes]
#: Called after each row with (rows done, rows to do).
Progress = Callable[[int, int], None]
#: (delivery row) → its envelope sender (a VERP return path naming the row).
ReturnPath = Callable[[Delivery], str]
#: (delivery row, the relay's permanent refusal) → True when it suspended the member. Called in
#: the transaction that marks the row failed.
OnRefused = Callable[[Delivery, SendRefused], bool]


def make_transport(settings: Settings) -> Transport:
    """The outbox when no SMTP relay is configured, else the relay."""
    if not settings.smtp_host:
        from policyfeed.delivery.outbox import OutboxTransport

        return OutboxTransport(settings.outbox_dir)
    from policyfeed.delivery.smtp import SmtpTransport

    return SmtpTransport(settings)


# --- the ledger ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrozenRow:
    """One planned delivery: ``pending``, or ``skipped`` with a reason (e.g. no posts)."""

    subscriber_id: int
    chapter_id: int | None
    message_id: str
    status: str = "pending"
    reason: str = ""


@dataclass
class DeliveryReport:
    """What one delivery run did (``sent``, ``failed``, ``skipped``: by this run) and where the
    ledger of the issue stands afterwards (``ledger``: rows per status)."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: Rows left ``sending`` by an interrupted run that this run did not hand over again.
    ambiguous: int = 0
    #: Why delivery stopped early (a temporary failure), if it did.
    deferred: str = ""
    #: Rows left pending by a temporary failure of their recipient alone (the others went on).
    waiting: int = 0
    #: Members suspended (status bounced) by a permanent refusal at SMTP time.
    bounced: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)
    ledger: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.ledger.values())

    @property
    def settled(self) -> bool:
        """Every row is sent, failed or skipped: the issue is done."""
        return self.ledger.get("pending", 0) == 0 and self.ledger.get("sending", 0) == 0


class DeliveryLedger:
    """The deliveries of one issue. ``clock`` gives the time stamped on each change."""

    def __init__(self, db: Database, issue_id: int, *, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.issue_id = issue_id
        self.clock = clock

    @property
    def started(self) -> bool:
        return store.has_deliveries(self.db, self.issue_id)

    @property
    def started_at(self) -> datetime | None:
        """When the rows were frozen: the moment delivery of the issue began."""
        return store.delivery_started_at(self.db, self.issue_id)

    def freeze(self, rows: Sequence[FrozenRow]) -> int:
        """Write the rows of this issue once, in one transaction; rows already there stay as
        they are. Returns the number added."""
        with transaction(self.db):
            return store.insert_deliveries(
                self.db,
                self.issue_id,
                [(r.subscriber_id, r.chapter_id, r.message_id, r.status, r.reason) for r in rows],
                now=self.clock(),
            )

    def rows(self) -> list[Delivery]:
        return store.deliveries_for_issue(self.db, self.issue_id)

    def counts(self) -> dict[str, int]:
        """Rows per status."""
        return store.status_counts(self.db, self.issue_id)

    def skip(self, row: Delivery, reason: str) -> None:
        """Settle a row without a hand-off."""
        self._mark(row, "skipped", reason)

    def _mark(self, row: Delivery, status: str, error: str = "") -> None:
        with transaction(self.db):
            store.mark_result(self.db, row.id, status, now=self.clock(), error=error)

    def deliver(
        self,
        transport: Transport,
        compose: Compose,
        *,
        sender: str,
        resend_ambiguous: bool = False,
        progress: Progress | None = None,
        return_path: ReturnPath | None = None,
        on_refused: OnRefused | None = None,
    ) -> DeliveryReport:
        """Hand over every row that is not settled; stop at the first temporary failure.

        ``return_path`` gives each row its own envelope sender (default: ``sender``);
        ``on_refused`` records a permanent refusal as a bounce of the row's member."""
        report = DeliveryReport()
        todo = [row for row in self.rows() if not row.settled]
        redo_ambiguous = transport.resend_is_idempotent or resend_ambiguous
        for done, row in enumerate(todo, 1):
            if row.status == "sending" and not redo_ambiguous:
                report.ambiguous += 1
                log.warning(
                    "message %s (subscriber %s) may or may not have left during an interrupted "
                    "run: not handed over again without --resend-ambiguous",
                    row.message_id,
                    row.subscriber_id,
                )
            else:
                envelope = return_path(row) if return_path is not None else sender
                self._deliver_one(row, transport, compose, envelope, report, on_refused)
            if progress is not None:
                progress(done, len(todo))
            if report.deferred:
                log.warning("delivery stopped, the rest stays pending: %s", report.deferred)
                break
        if report.waiting and not report.deferred:
            report.deferred = (
                f"{report.waiting} recipient(s) answered with a temporary failure; "
                "they wait for the next run"
            )
        report.ledger = self.counts()
        return report

    def _deliver_one(
        self,
        row: Delivery,
        transport: Transport,
        compose: Compose,
        sender: str,
        report: DeliveryReport,
        on_refused: OnRefused | None = None,
    ) -> None:
        # Checked just before the hand-off: someone may have left since the issue started.
        subscriber = subscriber_store.subscriber_by_id(self.db, row.subscriber_id)
        if subscriber is None:
            return  # removed, and their rows with them
        if subscriber.status != "active":
            self._mark(row, "skipped", f"{subscriber.status} before the message went out")
            report.skipped += 1
            return
        message = compose(row, subscriber)
        with transaction(self.db):
            if not store.mark_sending(self.db, row.id, now=self.clock()):
                return
        try:
            transport.send(
                message, sender=sender, recipient=subscriber.email, message_id=row.message_id
            )
        except SendRefused as exc:
            with transaction(self.db):
                self._mark(row, "failed", str(exc))
                if on_refused is not None and on_refused(row, exc):
                    report.bounced += 1
            report.failed += 1
            report.failures.append((row.subscriber_id, str(exc)))
        except RecipientDeferred as exc:  # this address only: the others go on
            self._mark(row, "pending", str(exc))
            report.waiting += 1
        except SendDeferred as exc:
            self._mark(row, "pending", str(exc))
            report.deferred = str(exc) or "temporary failure"
        except SendUncertain as exc:  # the relay may have it: the row stays `sending`
            report.ambiguous += 1
            report.deferred = str(exc)
        else:
            self._mark(row, "sent")
            report.sent += 1
