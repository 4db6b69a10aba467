"""The deliveries ledger: which message each subscriber gets, and what became of it.

A message goes out at most once per (issue, subscriber). When delivery of an issue starts, one
row per active subscriber is frozen (later subscribers wait for the next issue). A row is marked
``sending`` (committed) only at the hand-off itself, when the transport calls back at its point
of no return (see :mod:`policyfeed.delivery.transport`), and ``sent``, ``failed`` or back to
``pending`` (committed) once the answer is in. So a run killed anywhere but in that instant
leaves rows that are certainly sent or certainly unsent; a row left ``sending`` is one whose
message may or may not have left.

On the next run such a row is settled without a person whenever the transport can tell (the
outbox: the file named after the Message-ID is there or not); over SMTP it stays ``sending``,
is named in the run's result, and is handed over again (same Message-ID) only with
``--resend-ambiguous``. It never holds up the others: every other row is settled first.

A recipient the relay defers (a 4xx to that message: greylisting, a full mailbox) does not
hold up the others either: the row waits, delivery goes on at once, and the row is tried once
more at the end of the run, then left for the next run.

The seams for what comes later: ``_deliver_one`` is one row's whole hand-off with its own ledger
writes, so several connections can each run it with their own transport (the writes are short
transactions; give each thread its own database connection or serialise ``_begin``/``_mark``);
``return_path`` gives each row its envelope sender (VERP); and ``_refused`` records a permanent
refusal (:class:`SendRefused` carries code, enhanced status and phase) with ``on_refused``'s
bounce in one transaction.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from policyfeed.delivery.transport import (
    BatchTransport,
    RecipientDeferred,
    SendBlocked,
    SendDeferred,
    SendRefused,
    SendUncertain,
    Transport,
)
from policyfeed.errors import ConflictError
from policyfeed.model import Delivery, Subscriber
from policyfeed.store import deliveries as store
from policyfeed.store import subscribers as subscriber_store
from policyfeed.store import transaction

if TYPE_CHECKING:
    from policyfeed.config import Settings
    from policyfeed.delivery.ahead import Staged, Stager

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
    from policyfeed.delivery.smtp import SmtpPool, SmtpTransport

    if settings.smtp_connections > 1:
        return SmtpPool(settings)
    return SmtpTransport(settings)


#: Rows read from the ledger at a time (a run never holds every row of a big list).
PAGE_ROWS = 1000


# --- the ledger ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrozenVariant:
    """What a row gets, frozen with it: its chapter, the member's chosen topics (None: the
    chapter's filter) and the posts of the issue that gave, in the issue's order."""

    chapter_id: int | None
    topics: tuple[str, ...] | None
    post_ids: tuple[int, ...]


@dataclass(frozen=True)
class FrozenRow:
    """One planned delivery: ``pending`` with its ``variant``, or ``skipped`` with a reason
    (e.g. no posts)."""

    subscriber_id: int
    chapter_id: int | None
    message_id: str
    status: str = "pending"
    reason: str = ""
    variant: FrozenVariant | None = None


@dataclass(frozen=True)
class UnsureRow:
    """A row whose hand-off was interrupted: its message may or may not have left."""

    subscriber_id: int
    email: str
    message_id: str


@dataclass
class DeliveryReport:
    """What one delivery run did (``sent``, ``failed``, ``skipped``, ``resolved``: by this run)
    and where the ledger of the issue stands afterwards (``ledger``: rows per status)."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    #: Rows an interrupted run left ``sending`` that this run found delivered (the outbox).
    resolved: int = 0
    #: Rows left ``sending`` (unsure) after this run: by an earlier run, or by a lost answer.
    unsure: list[UnsureRow] = field(default_factory=list)
    #: Why delivery stopped early for now (a temporary failure), if it did.
    deferred: str = ""
    #: Why delivery stopped because the relay cannot be used as configured, if it did.
    blocked: str = ""
    #: Rows left pending because their recipient alone was deferred (after one more try).
    waiting: int = 0
    #: The last temporary answer given for such a recipient.
    waiting_reason: str = ""
    #: Members suspended (status bounced) by a permanent refusal at SMTP time.
    bounced: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)
    ledger: dict[str, int] = field(default_factory=dict)

    @property
    def ambiguous(self) -> int:
        return len(self.unsure)

    @property
    def total(self) -> int:
        return sum(self.ledger.values())

    @property
    def settled(self) -> bool:
        """Every row is sent, failed or skipped: the issue is done."""
        return self.ledger.get("pending", 0) == 0 and self.ledger.get("sending", 0) == 0

    @property
    def stopped(self) -> bool:
        return bool(self.deferred or self.blocked)


# What became of one row's hand-off.
_DONE, _DEFERRED, _GONE = "done", "deferred", "gone"


@dataclass(frozen=True)
class _Plan:
    """What every hand-off of one delivery run needs besides its row and its transport."""

    compose: Compose
    sender: str
    return_path: ReturnPath | None = None
    on_refused: OnRefused | None = None

    def envelope_sender(self, row: Delivery) -> str:
        return self.return_path(row) if self.return_path is not None else self.sender


@dataclass
class _Batch:
    """A batch on its way: its rows, the outcomes settled before composing (members who left),
    the rows to stage with their members, and what staging them gave so far (collected a part
    at a time, in order; see :class:`~policyfeed.delivery.ahead.Staged`)."""

    rows: list[Delivery]
    skipped: list[tuple[int, str, str, bool]] = field(default_factory=list)
    todo: list[tuple[Delivery, Subscriber]] = field(default_factory=list)
    flags: list[bool] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    deferred: str | None = None
    #: staged after a part that stopped: removed, never handed over
    given_up: dict[str, str] = field(default_factory=dict)
    parts: int = 0
    collected: int = 0
    submitted: bool = False  # every part started
    # Once handed over: the rows that go, those committed ``sending``, the outcomes so far.
    going: list[Delivery] = field(default_factory=list)
    began: set[int] = field(default_factory=set)
    committed: bool = False  # the hand-off's transaction ran (rows `sending` or skipped)
    results: list[tuple[int, str, str, bool]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.submitted and self.collected == self.parts

    def collect(self, staged: Staged) -> None:
        self.collected += 1
        if self.deferred is not None:
            self.given_up.update(staged.names)
            return
        self.flags.extend(staged.flags)
        self.names.update(staged.names)
        self.deferred = staged.deferred


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

    def freeze(self, rows: Iterable[FrozenRow]) -> int:
        """Write the rows of this issue and the variants they get once, in one transaction;
        rows (and variants) already there stay as they are. Returns the number of rows added.
        ``rows`` may be a generator: they are written a page at a time as they come."""
        ids: dict[tuple[int | None, tuple[str, ...] | None], int] = {}
        added = 0
        now = self.clock()
        with transaction(self.db):
            stream = iter(rows)
            while page := list(itertools.islice(stream, PAGE_ROWS)):
                for v in dict.fromkeys(r.variant for r in page if r.variant is not None):
                    if (v.chapter_id, v.topics) not in ids:
                        ids.update(
                            store.insert_variants(
                                self.db, self.issue_id, [(v.chapter_id, v.topics, v.post_ids)]
                            )
                        )
                added += store.insert_deliveries(
                    self.db,
                    self.issue_id,
                    [
                        (
                            r.subscriber_id,
                            r.chapter_id,
                            r.message_id,
                            r.status,
                            r.reason,
                            ids[(r.variant.chapter_id, r.variant.topics)] if r.variant else None,
                        )
                        for r in page
                    ],
                    now=now,
                )
        return added

    def variants(self) -> dict[int, FrozenVariant]:
        """The variants frozen with this issue's rows, by id."""
        return {
            variant_id: FrozenVariant(chapter_id, topics, post_ids)
            for variant_id, (chapter_id, topics, post_ids) in store.variants_for_issue(
                self.db, self.issue_id
            ).items()
        }

    def rows(self) -> list[Delivery]:
        return store.deliveries_for_issue(self.db, self.issue_id)

    def counts(self) -> dict[str, int]:
        """Rows per status."""
        return store.status_counts(self.db, self.issue_id)

    def listing(self, status: str | None = None) -> list[dict[str, Any]]:
        """Each row with its subscriber's address and chapter (only ``status``'s if given)."""
        return store.delivery_listing(self.db, self.issue_id, status)

    def mark_unsure_sent(self, message_ids: Sequence[str]) -> int:
        """Record that these unsure rows' messages did arrive (the relay's log says so), all or
        none: a ConflictError names a Message-ID that is no unsure row of this issue."""
        unique = list(dict.fromkeys(m.strip().strip("<>") for m in message_ids))
        with transaction(self.db):
            for bare in unique:
                if not store.mark_unsure_sent(self.db, self.issue_id, bare, now=self.clock()):
                    raise ConflictError(
                        f"{bare}: not an unsure message of this issue (status sending); "
                        "`policyfeed issue deliveries N --status sending` lists them"
                    )
        return len(unique)

    def unsettled_variants(self) -> list[tuple[int | None, int | None]]:
        """The distinct (variant id, chapter id) of the rows still to deliver."""
        return store.distinct_unsettled_variants(self.db, self.issue_id)

    def skip_unsettled(
        self, leave_out: Callable[[Delivery], bool], reason: Callable[[Delivery], str]
    ) -> int:
        """Settle as skipped (with ``reason(row)``) each row still to deliver that
        ``leave_out`` picks, a page at a time; returns how many."""
        skipped = 0
        for status in ("pending", "sending"):
            after = 0
            while True:
                page = store.deliveries_page(
                    self.db, self.issue_id, status, after_id=after, limit=PAGE_ROWS
                )
                for row in page:
                    if leave_out(row):
                        self.skip(row, reason(row))
                        skipped += 1
                if len(page) < PAGE_ROWS:
                    break
                after = page[-1].id
        return skipped

    def skip(self, row: Delivery, reason: str) -> None:
        """Settle a row without a hand-off."""
        self._mark(row, "skipped", reason)

    def _mark(self, row: Delivery, status: str, error: str = "", *, attempt: bool = False) -> None:
        """Record an outcome; ``attempt``: the relay was asked about this row without a
        hand-off (which counts its own attempt)."""
        with transaction(self.db):
            store.mark_result(
                self.db, row.id, status, now=self.clock(), error=error, attempt=attempt
            )

    def _begin(self, row: Delivery) -> None:
        """The hand-off's point of no return: the row is `sending` (committed) before the
        transport takes the last step. Refuses a row that was settled or removed meanwhile."""
        with transaction(self.db):
            if not store.mark_sending(self.db, row.id, now=self.clock()):
                raise _RowGone(row.id)

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
        """Hand over every row that is not settled. Rows an interrupted run left ``sending``
        are settled first when the transport can tell, else left unsure (or handed over again
        with ``resend_ambiguous``). A recipient deferred by the relay is tried once more at the
        end; a relay that is down or unusable stops the run.

        ``return_path`` gives each row its own envelope sender (default: ``sender``);
        ``on_refused`` records a permanent refusal as a bounce of the row's member.

        The rows are read a page at a time, never all at once: a list of any size takes the
        same memory. A transport that takes batches (the outbox: ``stage`` and ``hand_over``)
        gets them, one ledger transaction per batch instead of two per row."""
        report = DeliveryReport()
        plan = _Plan(compose, sender, return_path, on_refused)
        again = self._settle_all_interrupted(transport, resend_ambiguous, report)
        total = len(again) + self.counts().get("pending", 0)
        todo = itertools.chain(again, self._pending_rows())
        if isinstance(transport, BatchTransport) and transport.batch_size > 0:
            self._deliver_batches(todo, transport, plan, report, progress, total)
            report.ledger = self.counts()
            return report
        lanes: Sequence[Transport] = getattr(transport, "lanes", None) or [transport]
        done = 0

        def advance() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, max(total, done))

        deferred: list[Delivery] = []
        if len(lanes) > 1:
            deferred = self._deliver_lanes(todo, lanes, plan, report, advance)
        else:
            for row in todo:
                if self._deliver_one(row, transport, plan, report) == _DEFERRED:
                    deferred.append(row)
                advance()
                if report.stopped:
                    break
        if report.stopped:
            log.warning(
                "delivery stopped, the rest stays pending: %s", report.blocked or report.deferred
            )
        if deferred and not report.stopped:
            # Once more at the end of the run (a greylisting relay may take it by now), then
            # they wait for the next run: never a sleep that holds up everyone else.
            for row in deferred:
                outcome = self._deliver_one(row, transport, plan, report)
                if outcome == _DEFERRED:
                    report.waiting += 1
                if report.stopped:
                    break
        report.ledger = self.counts()
        return report

    def _pending_rows(self) -> Iterator[Delivery]:
        """The pending rows, by id, a page at a time (a row handed back to pending during the
        run, a deferred one, is behind the page and not read again)."""
        after = 0
        while True:
            page = store.deliveries_page(
                self.db, self.issue_id, "pending", after_id=after, limit=PAGE_ROWS
            )
            yield from page
            if len(page) < PAGE_ROWS:
                return
            after = page[-1].id

    def _settle_all_interrupted(
        self, transport: Transport, resend: bool, report: DeliveryReport
    ) -> list[Delivery]:
        """Settle the rows an interrupted run left ``sending``; returns those to hand over
        (again)."""
        again: list[Delivery] = []
        after = 0
        while True:
            page = store.deliveries_page(
                self.db, self.issue_id, "sending", after_id=after, limit=PAGE_ROWS
            )
            again.extend(r for r in page if self._settle_interrupted(r, transport, resend, report))
            if len(page) < PAGE_ROWS:
                return again
            after = page[-1].id

    def _deliver_batches(
        self,
        todo: Iterator[Delivery],
        transport: BatchTransport,
        plan: _Plan,
        report: DeliveryReport,
        progress: Progress | None,
        total: int,
    ) -> None:
        """Hand the rows over a batch at a time (see :mod:`policyfeed.delivery.outbox`); on a
        big list a helper does the writing while this process composes the next messages and
        keeps the ledger (:mod:`policyfeed.delivery.ahead`). Batches are settled in order."""
        from policyfeed.delivery import ahead

        size = max(1, transport.batch_size)
        stager = ahead.stager(transport, rows=total)
        # Given to the stager, not collected yet, in order: (batch, result, is its hand-over).
        started: deque[tuple[_Batch, Callable[[], Any], bool]] = deque()
        waiting: deque[_Batch] = deque()  # batches not handed over yet, oldest first
        done = 0
        stopping = False  # a batch could not be staged: it is the last handed over

        def collect(limit: int) -> bool:
            """Hand over each batch whose parts are all back, and collect what was started
            until ``limit`` are left, settling each handed-over batch. False once the run
            stopped."""
            nonlocal done, stopping
            while True:
                while waiting and waiting[0].complete and not stopping:
                    batch = waiting[0]
                    handing = self._hand_over_batch(batch, transport, stager, report)
                    started.append((waiting.popleft(), handing, True))
                    stopping = batch.deferred is not None  # no batch after it is handed over
                if len(started) <= limit:
                    return True
                batch, result, handed_over = started.popleft()
                if not handed_over:
                    batch.collect(result())
                    continue
                self._settle_batch(batch, result, transport, report)
                done += len(batch.rows)
                if progress is not None:
                    progress(done, max(total, done))
                if report.stopped:
                    log.warning("delivery stopped, the rest stays pending: %s", report.deferred)
                    return False

        try:
            while not stopping and (rows := list(itertools.islice(todo, size))):
                batch = self._start_batch(rows)
                waiting.append(batch)
                for first in range(0, len(batch.todo), ahead.PART):
                    if batch.deferred is not None or stopping:
                        break  # staging stopped: the rest is not tried
                    messages = [
                        ahead.Message(
                            plan.compose(row, member),
                            plan.envelope_sender(row),
                            member.email,
                            row.message_id,
                        )
                        for row, member in batch.todo[first : first + ahead.PART]
                    ]
                    batch.parts += 1
                    started.append((batch, stager.start(messages), False))
                    if not collect(stager.in_flight):
                        return
                batch.submitted = True
                if not collect(stager.in_flight):
                    return
            collect(0)
        finally:
            self._give_up(started, waiting, stager, transport, report)

    def _give_up(
        self,
        started: deque[tuple[_Batch, Callable[[], Any], bool]],
        waiting: deque[_Batch],
        stager: Stager,
        transport: BatchTransport,
        report: DeliveryReport,
    ) -> None:
        """The run stops (done, deferred, or an error on its way out): batches already handed
        over are settled still, what was staged and not handed over is removed."""
        from policyfeed.delivery import ahead

        try:
            for batch, result, handed_over in started:
                if handed_over:
                    try:
                        self._settle_batch(batch, result, transport, report)
                    except Exception:  # the error that stops the run is the one raised
                        log.exception("could not record the outcome of a batch")
                    continue
                staged = ahead.wait_quietly(result)
                if staged is not None:
                    transport.adopt_staged(staged.names)
            for batch in waiting:
                transport.adopt_staged({**batch.names, **batch.given_up})
        finally:
            stager.close()  # the helper is done (or stopped) before its files are removed
            transport.discard()

    def _start_batch(self, rows: list[Delivery]) -> _Batch:
        """Read the batch's members; settle those who left; the others are to be composed."""
        members = subscriber_store.subscribers_by_ids(self.db, [r.subscriber_id for r in rows])
        batch = _Batch(rows)
        for row in rows:
            subscriber = members.get(row.subscriber_id)
            if subscriber is None:
                continue  # removed, and their rows with them
            if subscriber.status != "active":
                batch.skipped.append(
                    (row.id, "skipped", store.departed_reason(subscriber.status), False)
                )
                continue
            batch.todo.append((row, subscriber))
        return batch

    def _hand_over_batch(
        self, batch: _Batch, transport: BatchTransport, stager: Stager, report: DeliveryReport
    ) -> Callable[[], Any]:
        """A batch whose messages are all staged: one flush of the disk, the rows that go are
        committed ``sending`` (the point of no return), then the stager moves their files into
        ``new/``; what it returns gives the outcome (see :meth:`_settle_batch`). A member who
        left since the batch began is skipped here, in the same transaction: their message is
        removed, never delivered."""
        report.skipped += len(batch.skipped)
        batch.results.extend(batch.skipped)
        for (row, _), flag in zip(batch.todo, batch.flags, strict=False):
            if flag:
                batch.going.append(row)
            else:  # these very bytes are there already: delivered, without a hand-off
                batch.results.append((row.id, "sent", "", True))
                report.sent += 1
        names = {**batch.names, **batch.given_up}
        if batch.deferred is None and batch.going:
            try:  # every file of the batch whole on disk before any row says `sending`
                transport.flush()
            except SendDeferred as exc:
                batch.deferred = str(exc) or "temporary failure"
        if batch.deferred is not None:  # nothing of the batch goes
            if len(batch.flags) < len(batch.todo):  # staging stopped at this row: tried too
                batch.going.append(batch.todo[len(batch.flags)][0])
            going: set[str] = set()
        elif batch.going:
            ids = [r.id for r in batch.going]
            with transaction(self.db):
                left = store.skip_departed(self.db, ids, now=self.clock())
                batch.began = store.mark_sending_many(
                    self.db, [i for i in ids if i not in left], now=self.clock()
                )
            batch.committed = True  # from here on only the rows in began are this run's
            report.skipped += len(left)
            going = {r.message_id for r in batch.going if r.id in batch.began}
        else:
            going = set()
        batch.names, batch.given_up = {}, {}  # the stager's now: it renames or removes them
        return stager.hand_over(names, going)

    def _settle_batch(
        self,
        batch: _Batch,
        handing: Callable[[], Any],
        transport: BatchTransport,
        report: DeliveryReport,
    ) -> None:
        """Record a handed-over batch's outcome, every row in one transaction."""
        results = batch.results
        try:
            handing()
            if batch.deferred is not None:
                raise SendDeferred(batch.deferred)
        except SendDeferred as exc:
            reason = str(exc) or "temporary failure"
            report.deferred = reason
            if batch.committed:  # some renames may have happened: the outbox says which
                for row in batch.going:
                    if row.id not in batch.began:
                        continue
                    if transport.delivered(row.message_id):
                        results.append((row.id, "sent", "", False))
                        report.sent += 1
                    else:
                        results.append((row.id, "pending", reason, False))
            else:
                results.extend((row.id, "pending", reason, True) for row in batch.going)
        else:
            results.extend((r.id, "sent", "", False) for r in batch.going if r.id in batch.began)
            report.sent += len(batch.began)
        if results:
            with transaction(self.db):
                store.mark_results_many(self.db, results, now=self.clock())

    def _settle_interrupted(
        self, row: Delivery, transport: Transport, resend: bool, report: DeliveryReport
    ) -> bool:
        """Decide a row an interrupted run left ``sending``; True when it is to be handed over
        (again)."""
        delivered = transport.delivered(row.message_id)
        if delivered is True:
            self._mark(row, "sent")
            report.resolved += 1
            log.info("message %s was delivered before an earlier run stopped", row.message_id)
            return False
        if delivered is False or resend:
            return True
        subscriber = subscriber_store.subscriber_by_id(self.db, row.subscriber_id)
        report.unsure.append(
            UnsureRow(row.subscriber_id, subscriber.email if subscriber else "", row.message_id)
        )
        log.warning(
            "message %s (subscriber %s) may or may not have reached the relay when an earlier "
            "run stopped: not handed over again without --resend-ambiguous",
            row.message_id,
            row.subscriber_id,
        )
        return False

    def _deliver_one(
        self,
        row: Delivery,
        transport: Transport,
        plan: _Plan,
        report: DeliveryReport,
    ) -> str:
        """One row's whole hand-off and its ledger writes."""
        prepared = self._prepare(row, plan, report)
        if isinstance(prepared, str):
            return prepared
        subscriber, message = prepared
        began = False

        def handoff() -> None:
            nonlocal began
            self._begin(row)
            began = True

        try:
            transport.send(
                message,
                sender=plan.envelope_sender(row),
                recipient=subscriber.email,
                message_id=row.message_id,
                handoff=handoff,
            )
        except Exception as exc:
            return self._record(row, subscriber, exc, began, plan, report)
        return self._record(row, subscriber, None, began, plan, report)

    def _prepare(
        self, row: Delivery, plan: _Plan, report: DeliveryReport
    ) -> tuple[Subscriber, bytes] | str:
        """The member and the message of a row about to be handed over, or what became of the
        row instead (_GONE, or _DONE: skipped)."""
        # Checked just before the hand-off: someone may have left since the issue started.
        subscriber = subscriber_store.subscriber_by_id(self.db, row.subscriber_id)
        if subscriber is None:
            return _GONE  # removed, and their rows with them
        if subscriber.status != "active":
            self._mark(row, "skipped", store.departed_reason(subscriber.status))
            report.skipped += 1
            return _DONE
        return subscriber, plan.compose(row, subscriber)

    def _record(
        self,
        row: Delivery,
        subscriber: Subscriber,
        problem: Exception | None,
        began: bool,
        plan: _Plan,
        report: DeliveryReport,
    ) -> str:
        """Write what one hand-off came to (``problem``: what the transport raised, if it did;
        ``began``: the row was marked ``sending``)."""
        if problem is None:
            self._mark(row, "sent", attempt=not began)
            report.sent += 1
        elif isinstance(problem, _RowGone):
            return _GONE  # settled or removed by someone else meanwhile: nothing was sent
        elif isinstance(problem, SendRefused):
            if self._refused(row, problem, plan.on_refused, attempt=not began):
                report.bounced += 1
            report.failed += 1
            report.failures.append((row.subscriber_id, str(problem)))
        elif isinstance(problem, RecipientDeferred):  # this address only: the others go on
            self._mark(row, "pending", str(problem), attempt=not began)
            report.waiting_reason = str(problem)
            return _DEFERRED
        elif isinstance(problem, SendBlocked):  # no row's fault: it stays as it was, untried
            if began:
                self._mark(row, "pending", str(problem))
            report.blocked = str(problem)
        elif isinstance(problem, SendDeferred):
            self._mark(row, "pending", str(problem), attempt=not began)
            report.deferred = str(problem) or "temporary failure"
        elif isinstance(problem, SendUncertain):  # the relay may have it: the row stays sending
            report.unsure.append(UnsureRow(row.subscriber_id, subscriber.email, row.message_id))
            log.warning("%s (Message-ID %s)", problem, row.message_id)
        else:
            raise problem
        return _DONE

    # --- several connections at once ---------------------------------------------------
    def _deliver_lanes(
        self,
        todo: Iterator[Delivery],
        lanes: Sequence[Transport],
        plan: _Plan,
        report: DeliveryReport,
        progress: Callable[[], None],
    ) -> list[Delivery]:
        """Hand the rows over through several connections at once, each in a thread of its
        own. This thread keeps the database: it composes each message, and a connection's
        ``handoff`` asks it to mark the row ``sending`` and waits for the commit, so every
        ledger write is made here, in order, as in the one-connection loop. Returns the rows a
        relay deferred for their recipient alone."""
        work: queue.Queue[tuple[Delivery, Subscriber, bytes] | None] = queue.Queue()
        events: queue.Queue[_LaneEvent] = queue.Queue()
        threads = [
            threading.Thread(
                target=_lane_worker, args=(lane, work, events, plan), daemon=True,
                name=f"smtp-lane-{n}",
            )
            for n, lane in enumerate(lanes)
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        deferred: list[Delivery] = []
        in_flight = 0
        room = 2 * len(lanes)  # a message ready for each connection as it finishes one
        more = True
        try:
            while True:
                while more and not report.stopped and in_flight < room:
                    row = next(todo, None)
                    if row is None:
                        more = False
                        break
                    prepared = self._prepare(row, plan, report)
                    if isinstance(prepared, str):
                        progress()
                        continue
                    work.put((row, *prepared))
                    in_flight += 1
                if report.stopped:  # take back what no connection has started
                    while True:
                        try:
                            if work.get_nowait() is not None:
                                in_flight -= 1
                        except queue.Empty:
                            break
                if in_flight == 0:
                    break
                event = events.get()
                if event.kind == "begin":
                    try:
                        if report.stopped:
                            raise _RowGone(event.row.id)  # stopping: start nothing new
                        self._begin(event.row)
                    except BaseException as exc:
                        event.reply.put(exc)
                    else:
                        event.reply.put(None)
                    continue
                in_flight -= 1
                outcome = self._record(
                    event.row, event.subscriber, event.problem, event.began, plan, report
                )
                if outcome == _DEFERRED:
                    deferred.append(event.row)
                progress()
        finally:
            for _ in threads:
                work.put(None)
            self._wind_down(threads, events, plan, report)
        return deferred

    def _wind_down(
        self,
        threads: Sequence[threading.Thread],
        events: queue.Queue[_LaneEvent],
        plan: _Plan,
        report: DeliveryReport,
    ) -> None:
        """Let every connection finish: a hand-off that has not begun is refused, one that has
        is recorded."""
        while any(thread.is_alive() for thread in threads) or not events.empty():
            try:
                event = events.get(timeout=0.05)
            except queue.Empty:
                continue
            if event.kind == "begin":
                event.reply.put(_RowGone(event.row.id))
            else:
                with contextlib.suppress(Exception):
                    self._record(
                        event.row, event.subscriber, event.problem, event.began, plan, report
                    )
        for thread in threads:
            thread.join()

    def _refused(
        self, row: Delivery, refusal: SendRefused, on_refused: OnRefused | None, *, attempt: bool
    ) -> bool:
        """A permanent refusal for this recipient: the row fails with the relay's answer, and
        ``on_refused`` records it as a bounce in the same transaction. True when that suspended
        the member."""
        with transaction(self.db):
            self._mark(row, "failed", str(refusal), attempt=attempt)
            return on_refused is not None and on_refused(row, refusal)


class _RowGone(Exception):
    """The row was settled or removed between its planning and its hand-off."""


@dataclass
class _LaneEvent:
    """From a connection's thread to the ledger's: ``begin`` (mark the row ``sending``, then
    answer on ``reply``: None, or the exception to raise) or ``done`` (the hand-off's end)."""

    kind: str
    row: Delivery
    subscriber: Subscriber
    reply: queue.Queue[BaseException | None] = field(default_factory=queue.Queue)
    problem: Exception | None = None
    began: bool = False


def _lane_worker(
    lane: Transport,
    work: queue.Queue[tuple[Delivery, Subscriber, bytes] | None],
    events: queue.Queue[_LaneEvent],
    plan: _Plan,
) -> None:
    """One connection's thread: hand over what comes, until told to stop (None)."""
    while (item := work.get()) is not None:
        row, subscriber, message = item
        began = False

        def handoff(row: Delivery = row, subscriber: Subscriber = subscriber) -> None:
            nonlocal began
            asked = _LaneEvent("begin", row, subscriber)
            events.put(asked)
            answer = asked.reply.get()
            if answer is not None:
                raise answer
            began = True

        problem: Exception | None = None
        try:
            lane.send(
                message,
                sender=plan.envelope_sender(row),
                recipient=subscriber.email,
                message_id=row.message_id,
                handoff=handoff,
            )
        except Exception as exc:  # the ledger's thread decides what it means
            problem = exc
        events.put(_LaneEvent("done", row, subscriber, problem=problem, began=began))
