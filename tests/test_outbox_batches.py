"""The outbox takes a digest in batches: one flush of the disk and two ledger transactions a
batch, never a list of every member in memory, and still one message per member. Every test
runs twice: with each batch staged in the run's own process when its turn comes, and with the
batches staged a batch ahead in a forked helper (what a big list gets)."""

from __future__ import annotations

import email
import os
from datetime import datetime
from pathlib import Path

import pytest
import sqlite_utils

import policyfeed.delivery.ahead as ahead
import policyfeed.delivery.ledger as ledger_module
import policyfeed.delivery.outbox as outbox_module
from policyfeed.audience.subscribers import add_subscriber, unsubscribe
from policyfeed.delivery.ledger import DeliveryLedger, FrozenRow
from policyfeed.delivery.outbox import OutboxTransport
from policyfeed.model import Delivery, Subscriber
from policyfeed.store import issues as issue_store
from policyfeed.store import subscribers as subscriber_store

SENDER = "policy-digest@example.org"


def compose(row: Delivery, subscriber: Subscriber) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {subscriber.email}\r\nMessage-ID: <{row.message_id}>\r\n"
        f"Subject: test\r\n\r\nHello {subscriber.name}\r\n"
    ).encode()


def compose_noting_pid(row: Delivery, subscriber: Subscriber) -> bytes:
    """:func:`compose`, with the process that composed it in a header."""
    return compose(row, subscriber).replace(
        b"Subject:", f"X-Composed-By: {os.getpid()}\r\nSubject:".encode(), 1
    )


@pytest.fixture(autouse=True, params=["here", "helper"])
def staging(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Stage in this process, or a batch ahead in a helper however short the list."""
    monkeypatch.setattr(ahead, "AHEAD_FROM_BATCHES", 0 if request.param == "helper" else 1 << 30)
    return str(request.param)


@pytest.fixture
def ledger(db: sqlite_utils.Database, now: datetime) -> DeliveryLedger:
    with db.conn:
        issue = issue_store.insert_issue(
            db, number=1, period="2012-07-30T08:00", subject="Issue 1", note="", now=now,
            post_ids=[],
        )  # fmt: skip
    return DeliveryLedger(db, issue.id or 0, clock=lambda: now)


def members(db: sqlite_utils.Database, now: datetime, count: int) -> list[int]:
    return [
        add_subscriber(db, f"member{n:02}@example.org", now=now, name=f"Member {n}").id or 0
        for n in range(count)
    ]


def freeze(ledger: DeliveryLedger, ids: list[int]) -> None:
    ledger.freeze(FrozenRow(i, None, f"issue-1.sub-{i}@policy.example.org") for i in ids)


class FullAtSecondHandOff(OutboxTransport):
    """The outbox, with a disk that fills up at the second hand-over (wherever it runs)."""

    handed = 0

    def hand_over(self, handoff: outbox_module.BatchHandoff, *, flushed: bool = False) -> None:
        self.handed += 1
        if self.handed == 2:
            self.discard()
            raise outbox_module.SendDeferred("cannot write to the outbox: No space left")
        super().hand_over(handoff, flushed=flushed)


def recipients(root: Path) -> list[str]:
    found = []
    for path in sorted((root / "new").iterdir()):
        found.append(email.message_from_bytes(path.read_bytes())["To"])
    return sorted(found)


def test_a_list_longer_than_a_page_and_a_batch_gets_one_message_each(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(ledger_module, "PAGE_ROWS", 4)  # pages and batches that do not align
    ids = members(db, now, 23)
    freeze(ledger, ids)  # a generator: written a page at a time
    transport = OutboxTransport(tmp_path / "outbox")
    transport.batch_size = 5
    seen: list[tuple[int, int]] = []
    report = ledger.deliver(
        transport, compose, sender=SENDER, progress=lambda d, t: seen.append((d, t))
    )
    assert (report.sent, report.settled) == (23, True)
    assert recipients(tmp_path / "outbox") == sorted(f"member{n:02}@example.org" for n in range(23))
    assert os.listdir(tmp_path / "outbox" / "tmp") == []
    assert seen == [(5, 23), (10, 23), (15, 23), (20, 23), (23, 23)]  # once a batch
    assert {row.status for row in ledger.rows()} == {"sent"}
    assert all(row.attempts == 1 and row.sent_at == now for row in ledger.rows())


def test_a_big_list_is_written_by_one_helper_process_and_composed_here(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path,
    staging: str,
) -> None:  # fmt: skip
    class NotingWriter(OutboxTransport):
        def stage(self, message: bytes | memoryview, **envelope: str) -> bool:
            noted = bytes(message).replace(
                b"Subject:", f"X-Staged-By: {os.getpid()}\r\nSubject:".encode()
            )
            return super().stage(noted, **envelope)  # type: ignore[arg-type]

    ids = members(db, now, 7)
    freeze(ledger, ids)
    transport = NotingWriter(tmp_path / "outbox")
    transport.batch_size = 2
    report = ledger.deliver(transport, compose_noting_pid, sender=SENDER)
    assert (report.sent, report.settled) == (7, True)
    messages = [
        email.message_from_bytes(p.read_bytes()) for p in (tmp_path / "outbox" / "new").iterdir()
    ]
    assert {m["X-Composed-By"] for m in messages} == {str(os.getpid())}  # the ledger's process
    writers = {m["X-Staged-By"] for m in messages}
    assert len(writers) == 1  # one helper for the whole run, or this process
    assert (writers == {str(os.getpid())}) == (staging == "here")
    assert os.listdir(tmp_path / "outbox" / "tmp") == []


def test_a_member_who_leaves_after_their_message_was_composed_is_not_mailed(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path
) -> None:
    """The batch's hand-off finds the member gone: their message, composed and written
    already, is removed instead of delivered, and the row says why."""
    ids = members(db, now, 9)
    freeze(ledger, ids)
    transport = OutboxTransport(tmp_path / "outbox")
    transport.batch_size = 3

    def leaves_meanwhile(row: Delivery, subscriber: Subscriber) -> bytes:
        message = compose(row, subscriber)
        if subscriber.email == "member07@example.org":
            unsubscribe(db, subscriber.email, now=now)
        return message

    report = ledger.deliver(transport, leaves_meanwhile, sender=SENDER)
    assert (report.sent, report.skipped, report.settled) == (8, 1, True)
    assert "member07@example.org" not in recipients(tmp_path / "outbox")
    assert os.listdir(tmp_path / "outbox" / "tmp") == []
    row = next(r for r in ledger.rows() if r.status == "skipped")
    assert row.last_error == "unsubscribed before the message went out"


def test_an_error_while_composing_removes_what_was_staged_and_leaves_the_rows_pending(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path,
    staging: str,
) -> None:  # fmt: skip
    """A bug in composing (any error but a temporary one) stops the run with that error;
    nothing staged is left in tmp/, every row is sent or pending, the next run sends the rest."""
    ids = members(db, now, 10)
    freeze(ledger, ids)
    transport = OutboxTransport(tmp_path / "outbox")
    transport.batch_size = 3

    def breaks(row: Delivery, subscriber: Subscriber) -> bytes:
        if subscriber.email == "member05@example.org":
            raise ValueError("a template bug")
        return compose(row, subscriber)

    with pytest.raises(ValueError, match="a template bug"):
        ledger.deliver(transport, breaks, sender=SENDER)
    assert os.listdir(tmp_path / "outbox" / "tmp") == []
    # Here the first batch was handed over before the second was composed; with a helper the
    # second is composed while the first is still being written, and the error comes first.
    sent = 3 if staging == "here" else len(recipients(tmp_path / "outbox"))
    assert sent in (0, 3)
    assert len(recipients(tmp_path / "outbox")) == sent
    assert {k: n for k, n in ledger.counts().items() if n} == {
        k: n for k, n in {"sent": sent, "pending": 10 - sent}.items() if n
    }
    again = ledger.deliver(OutboxTransport(tmp_path / "outbox"), compose, sender=SENDER)
    assert (again.sent, again.settled) == (10 - sent, True)
    assert len(recipients(tmp_path / "outbox")) == 10


def test_a_full_disk_in_the_second_batch_is_noticed_after_the_first_is_handed_over(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path
) -> None:
    """The hand-off of a batch fails (the disk filled up): the batch staged ahead of it is
    removed again and its rows stay pending, never half-delivered."""
    ids = members(db, now, 9)
    freeze(ledger, ids)

    transport = FullAtSecondHandOff(tmp_path / "outbox")
    transport.batch_size = 3
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert report.deferred and report.sent == 3 and report.stopped
    assert {k: n for k, n in ledger.counts().items() if n} == {"sent": 3, "pending": 6}
    assert os.listdir(tmp_path / "outbox" / "tmp") == []
    assert len(recipients(tmp_path / "outbox")) == 3


def test_each_batch_costs_one_flush_of_the_disk_and_two_ledger_commits(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ids = members(db, now, 12)
    freeze(ledger, ids)
    flushed = tmp_path / "flushes"  # a file: the flush may be the helper's

    def flush(root: Path) -> None:
        with flushed.open("a") as log:
            log.write(f"{root}\n")

    monkeypatch.setattr(outbox_module, "sync_filesystem", flush)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    transport = OutboxTransport(tmp_path / "outbox")
    transport.batch_size = 5
    report = ledger.deliver(transport, compose, sender=SENDER)
    db.conn.set_trace_callback(None)
    assert report.sent == 12
    assert len(flushed.read_text().splitlines()) == 3  # 5 + 5 + 2
    assert sum(1 for s in statements if s.strip().upper() == "COMMIT") == 2 * 3
    # one query for the members of each batch, not one per member
    member_queries = [s for s in statements if "FROM subscribers s" in s]
    assert len(member_queries) == 3


def test_a_member_who_left_before_their_batch_is_skipped_and_the_others_go(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path
) -> None:
    ids = members(db, now, 6)
    freeze(ledger, ids)
    unsubscribe(db, "member03@example.org", now=now)
    transport = OutboxTransport(tmp_path / "outbox")
    transport.batch_size = 4
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert (report.sent, report.skipped) == (5, 1)
    assert "member03@example.org" not in recipients(tmp_path / "outbox")
    assert report.ledger["skipped"] == 1 and report.settled


def test_a_flush_that_fails_leaves_the_batch_pending_and_removes_its_files(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The disk gives an I/O error on the flush of the second batch: no row of it is marked
    `sending`, none of its files is renamed, the run stops with the first batch delivered."""
    ids = members(db, now, 9)
    freeze(ledger, ids)
    flushes = [0]
    real = outbox_module.sync_filesystem

    def flush(root: Path) -> None:
        flushes[0] += 1
        if flushes[0] == 2:
            raise OSError(5, "Input/output error")
        real(root)

    monkeypatch.setattr(outbox_module, "sync_filesystem", flush)
    transport = OutboxTransport(tmp_path / "outbox")
    transport.batch_size = 3
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert report.stopped and "Input/output error" in report.deferred
    assert {k: n for k, n in ledger.counts().items() if n} == {"sent": 3, "pending": 6}
    assert len(recipients(tmp_path / "outbox")) == 3
    assert os.listdir(tmp_path / "outbox" / "tmp") == []
    tried = [r for r in ledger.rows() if r.status == "pending" and r.attempts]
    assert len(tried) == 3  # the second batch's rows count an attempt, the third's do not


def test_a_full_disk_in_the_middle_of_a_batch_leaves_its_rows_pending_and_nothing_half_written(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path
) -> None:
    ids = members(db, now, 9)
    freeze(ledger, ids)

    class FillsUp(OutboxTransport):
        staged = 0

        def stage(self, message: bytes, **envelope: str) -> bool:
            self.staged += 1
            if self.staged == 6:
                raise outbox_module.SendDeferred("cannot write to the outbox: No space left")
            return super().stage(message, **envelope)  # type: ignore[arg-type]

    transport = FillsUp(tmp_path / "outbox")
    transport.batch_size = 4
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert report.deferred and report.sent == 4  # the first batch, whole
    assert report.ledger["pending"] == 5 and report.ledger["sending"] == 0
    assert len(recipients(tmp_path / "outbox")) == 4
    assert os.listdir(tmp_path / "outbox" / "tmp") == []  # the staged message is gone
    again = ledger.deliver(OutboxTransport(tmp_path / "outbox"), compose, sender=SENDER)
    assert again.sent == 5 and again.settled
    assert len(recipients(tmp_path / "outbox")) == 9


def test_a_message_already_in_new_with_the_same_bytes_is_not_written_again(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path
) -> None:
    """A ledger commit lost after the renames (a power cut): the rows say pending, the files
    are there; the next run marks them sent and writes nothing twice."""
    ids = members(db, now, 3)
    freeze(ledger, ids)
    root = tmp_path / "outbox"
    ledger.deliver(OutboxTransport(root), compose, sender=SENDER)
    before = {p.name: p.stat().st_mtime_ns for p in (root / "new").iterdir()}
    with db.conn:
        db.execute("UPDATE deliveries SET status = 'pending'")
    report = ledger.deliver(OutboxTransport(root), compose, sender=SENDER)
    assert report.sent == 3 and report.settled
    assert {p.name: p.stat().st_mtime_ns for p in (root / "new").iterdir()} == before


def test_planning_reads_members_one_at_a_time(
    demo_db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch, settings: object,
    now: datetime,
) -> None:  # fmt: skip
    """publish never asks for the list of every active member at once."""
    from policyfeed.publish import publish

    def refuse(*_: object) -> None:
        raise AssertionError("the whole list of members was loaded")

    monkeypatch.setattr(subscriber_store, "active_recipients", refuse)
    result = publish(demo_db, settings, now=now)  # type: ignore[arg-type]
    assert (result.status, result.sent) == ("sent", 5)
    assert result.delivery_duration > 0


def test_a_message_the_kernel_takes_in_pieces_is_still_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Return-Path line and the message go in one writev; when the kernel takes only part
    of it (a signal, a nearly full disk), the rest follows, byte for byte."""

    def takes_seven_bytes(fd: int, parts: list[bytes]) -> int:
        return os.write(fd, b"".join(parts)[:7])

    monkeypatch.setattr(outbox_module.os, "writev", takes_seven_bytes)
    transport = OutboxTransport(tmp_path / "outbox")
    message = b"Subject: pieces\r\n\r\n" + b"x" * 1000 + b"\r\n"
    assert transport.stage(message, sender=SENDER, recipient="a@example.org", message_id="m1@x")
    transport.hand_over(lambda: {"m1@x"})
    written = (tmp_path / "outbox" / "new" / "m1@x").read_bytes()
    assert written == f"Return-Path: <{SENDER}>\r\n".encode() + message


def test_a_helper_that_dies_stops_the_run_with_an_error_and_the_next_run_delivers_once(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path,
    staging: str,
) -> None:  # fmt: skip
    """The process writing the outbox is killed (the kernel's OOM killer, say) in the middle
    of the second batch: the run stops with an error naming it, no member gets two messages,
    and the next run delivers the rest."""
    if staging == "here":
        pytest.skip("only a helper can die without the run")
    ids = members(db, now, 9)
    freeze(ledger, ids)
    helper_of = os.getpid()

    class Dies(OutboxTransport):
        calls = 0

        def stage(self, message: bytes | memoryview, **envelope: str) -> bool:
            self.calls += 1
            if self.calls == 5 and os.getpid() != helper_of:
                os._exit(9)
            return super().stage(message, **envelope)  # type: ignore[arg-type]

    transport = Dies(tmp_path / "outbox")
    transport.batch_size = 3
    with pytest.raises(RuntimeError, match="the process writing the outbox stopped"):
        ledger.deliver(transport, compose, sender=SENDER)
    counts = {k: n for k, n in ledger.counts().items() if n}
    assert counts.get("sent", 0) in (0, 3) and counts.get("sending", 0) in (0, 3)
    again = ledger.deliver(OutboxTransport(tmp_path / "outbox"), compose, sender=SENDER)
    assert again.settled
    assert recipients(tmp_path / "outbox") == sorted(f"member{n:02}@example.org" for n in range(9))


def test_members_who_left_stay_skipped_when_their_batch_is_refused_after_a_failed_hand_over(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path
) -> None:
    """The third batch's members all leave while it is composed; its hand-off skips them
    (committed), then the batch is refused because the second hand-over failed: they stay
    skipped, counted once, and nothing is put back to pending over them."""
    ids = members(db, now, 9)
    freeze(ledger, ids)

    leaving = {f"member0{n}@example.org" for n in (6, 7, 8)}

    def leaves(row: Delivery, subscriber: Subscriber) -> bytes:
        message = compose(row, subscriber)
        if subscriber.email in leaving:
            unsubscribe(db, subscriber.email, now=now)
        return message

    transport = FullAtSecondHandOff(tmp_path / "outbox")
    transport.batch_size = 3
    report = ledger.deliver(transport, leaves, sender=SENDER)
    rows = {r.subscriber_id: r for r in ledger.rows()}
    skipped = [i for i in ids if rows[i].status == "skipped"]
    assert report.skipped == len(skipped)  # the report and the ledger agree
    assert all(rows[i].status in ("skipped", "pending") for i in ids[6:])
    assert all(rows[i].attempts == 0 for i in skipped)
    assert os.listdir(tmp_path / "outbox" / "tmp") == []
    assert len(recipients(tmp_path / "outbox")) == 3


def test_a_rename_that_fails_leaves_nothing_of_the_batch_in_tmp(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The disk fails in the middle of a batch's renames: the messages renamed are delivered
    (the outbox says so), the others stay pending and their files are removed from tmp/."""
    ids = members(db, now, 6)
    freeze(ledger, ids)
    moved = [0]
    real = OutboxTransport._move

    def move(self: OutboxTransport, staged: str, final: str) -> None:
        moved[0] += 1
        if moved[0] == 2:
            raise OSError(5, "Input/output error")
        real(self, staged, final)

    monkeypatch.setattr(OutboxTransport, "_move", move)
    transport = OutboxTransport(tmp_path / "outbox")
    transport.batch_size = 3
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert report.stopped and report.sent == 1
    assert {k: n for k, n in ledger.counts().items() if n} == {"sent": 1, "pending": 5}
    assert len(recipients(tmp_path / "outbox")) == 1
    assert os.listdir(tmp_path / "outbox" / "tmp") == []
