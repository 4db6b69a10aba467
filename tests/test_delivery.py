"""The deliveries ledger and the outbox: at most one message per (issue, subscriber)."""

from __future__ import annotations

import email
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from policyfeed.audience.subscribers import add_subscriber, remove_subscriber, unsubscribe
from policyfeed.config import Settings
from policyfeed.delivery.ledger import DeliveryLedger, FrozenRow, make_transport
from policyfeed.delivery.outbox import OutboxTransport, outbox_name
from policyfeed.delivery.transport import (
    RecipientDeferred,
    SendBlocked,
    SendDeferred,
    SendRefused,
    SendUncertain,
)
from policyfeed.model import Delivery, Subscriber
from policyfeed.store import issues as issue_store

SENDER = "policy-digest@example.org"


class Recorder:
    """A transport that records hand-offs; ``fail`` decides per recipient what goes wrong
    (before the hand-off's point of no return), ``after`` what goes wrong after it;
    ``delivered`` answers for rows an interrupted run left ``sending`` (None: cannot tell)."""

    def __init__(
        self,
        *,
        delivered: Callable[[str], bool | None] = lambda _: None,
        fail: Callable[[str], Exception | None] = lambda _: None,
        after: Callable[[str], Exception | None] = lambda _: None,
        spy: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.answers = delivered
        self.sent: list[tuple[str, str]] = []
        self.tried: list[str] = []
        self.senders: list[str] = []
        self.fail = fail
        self.after = after
        self.spy = spy
        self.closed = False

    def send(
        self,
        message: bytes,
        *,
        sender: str,
        recipient: str,
        message_id: str,
        handoff: Callable[[], None] | None = None,
    ) -> None:
        self.tried.append(recipient)
        self.senders.append(sender)
        self.spy(message_id)
        problem = self.fail(recipient)
        if problem is not None:
            raise problem
        if handoff is not None:
            handoff()
        problem = self.after(recipient)
        if problem is not None:
            raise problem
        self.sent.append((recipient, message_id))

    def delivered(self, message_id: str) -> bool | None:
        return self.answers(message_id)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def issue_id(db: sqlite_utils.Database, now: datetime) -> int:
    with db.conn:
        issue = issue_store.insert_issue(
            db,
            number=1,
            period="2012-07-30T08:00",
            subject="Issue 1",
            note="",
            now=now,
            post_ids=[],
        )
    return issue.id or 0


@pytest.fixture
def members(db: sqlite_utils.Database, now: datetime) -> list[int]:
    return [
        add_subscriber(db, f"member{n}@example.org", now=now, name=f"Member {n}").id or 0
        for n in range(1, 5)
    ]


def ledger_for(db: sqlite_utils.Database, issue_id: int, now: datetime) -> DeliveryLedger:
    return DeliveryLedger(db, issue_id, clock=lambda: now)


def freeze_all(ledger: DeliveryLedger, ids: list[int]) -> None:
    ledger.freeze([FrozenRow(i, None, f"issue-1.sub-{i}.test@policy.example.org") for i in ids])


def compose(row: Delivery, subscriber: Subscriber) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {subscriber.email}\r\nMessage-ID: <{row.message_id}>\r\n"
        f"Subject: test\r\n\r\nHello {subscriber.name}\r\n"
    ).encode()


def statuses(ledger: DeliveryLedger) -> dict[int, str]:
    return {row.subscriber_id: row.status for row in ledger.rows()}


def force_status(db: sqlite_utils.Database, subscriber_id: int, status: str) -> None:
    with db.conn:
        db.execute(
            "UPDATE deliveries SET status = ? WHERE subscriber_id = ?", [status, subscriber_id]
        )


# --- freezing ---------------------------------------------------------------------------------


def test_freezing_writes_one_row_per_subscriber_and_a_second_freeze_adds_nothing(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    assert not ledger.started
    freeze_all(ledger, members)
    freeze_all(ledger, members)
    assert ledger.started
    assert statuses(ledger) == dict.fromkeys(members, "pending")
    # the schema itself refuses a second row
    with pytest.raises(sqlite3.IntegrityError), db.conn:
        db.execute(
            "INSERT INTO deliveries (issue_id, subscriber_id, message_id, created_at, "
            "updated_at) VALUES (?, ?, 'x@y', 'now', 'now')",
            [issue_id, members[0]],
        )


# --- delivering --------------------------------------------------------------------------------


def test_every_pending_row_is_handed_over_once_and_marked_sent(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)
    transport = Recorder()
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert [r for r, _ in transport.sent] == [f"member{n}@example.org" for n in range(1, 5)]
    assert (report.sent, report.failed, report.skipped, report.settled) == (4, 0, 0, True)
    assert all(
        row.status == "sent" and row.sent_at == now and row.attempts == 1 for row in ledger.rows()
    )


def test_a_resumed_run_never_sends_a_sent_row_again(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)
    force_status(db, members[0], "sent")
    force_status(db, members[1], "sent")
    transport = Recorder()
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert [r for r, _ in transport.sent] == ["member3@example.org", "member4@example.org"]
    assert report.sent == 2 and report.ledger["sent"] == 4
    assert ledger.deliver(Recorder(), compose, sender=SENDER).sent == 0


def test_the_row_is_sending_only_from_the_hand_offs_point_of_no_return(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime, tmp_path: Path
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members[:1])
    seen: list[str] = []

    def status() -> str:  # another connection sees what a crash would leave
        other = sqlite3.connect(tmp_path / "test.db")
        found: str = other.execute("SELECT status FROM deliveries").fetchone()[0]
        other.close()
        return found

    def after(recipient: str) -> None:
        seen.append(status())

    # While the transport waits (rate limit, connecting, the envelope, the data) the row is
    # certainly unsent; it is `sending` from the point of no return until the answer.
    transport = Recorder(spy=lambda _: seen.append(status()), after=after)
    ledger.deliver(transport, compose, sender=SENDER)
    assert seen == ["pending", "sending"]
    assert status() == "sent"


def test_a_permanent_refusal_fails_that_row_with_the_reason_and_the_others_go_out(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)

    def fail(recipient: str) -> Exception | None:
        return SendRefused("550 5.1.1 no such user") if recipient == "member2@example.org" else None

    report = ledger.deliver(Recorder(fail=fail), compose, sender=SENDER)
    assert (report.sent, report.failed, report.settled) == (3, 1, True)
    failed = next(row for row in ledger.rows() if row.status == "failed")
    assert (failed.subscriber_id, failed.last_error) == (members[1], "550 5.1.1 no such user")


def test_a_temporary_failure_stops_delivery_and_leaves_the_rest_pending_for_the_next_run(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)
    relay_down = Recorder(
        fail=lambda r: SendDeferred("421 try later") if r == "member2@example.org" else None
    )
    report = ledger.deliver(relay_down, compose, sender=SENDER)
    assert (report.sent, report.deferred, report.settled) == (1, "421 try later", False)
    assert list(statuses(ledger).values()) == ["sent", "pending", "pending", "pending"]
    assert ledger.rows()[1].last_error == "421 try later"
    relay_back = Recorder()
    report = ledger.deliver(relay_back, compose, sender=SENDER)
    assert [r for r, _ in relay_back.sent] == [f"member{n}@example.org" for n in (2, 3, 4)]
    assert report.settled and ledger.rows()[1].attempts == 2


def test_someone_who_unsubscribed_after_the_issue_started_is_skipped(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)
    unsubscribe(db, "member3@example.org", now=now + timedelta(minutes=1))
    transport = Recorder()
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert "member3@example.org" not in [r for r, _ in transport.sent]
    assert (report.sent, report.skipped, report.settled) == (3, 1, True)
    skipped = [row for row in ledger.rows() if row.status == "skipped"]
    assert [(r.subscriber_id, r.last_error) for r in skipped] == [
        (members[2], "unsubscribed before the message went out")
    ]


def test_the_unsubscribe_is_checked_just_before_each_send(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)

    def leave_during_the_run(message_id: str) -> None:  # member 4 leaves while 1 is being sent
        if ".sub-1." in message_id:
            unsubscribe(db, "member4@example.org", now=now)

    transport = Recorder(spy=leave_during_the_run)
    ledger.deliver(transport, compose, sender=SENDER)
    assert statuses(ledger)[members[3]] == "skipped"
    assert len(transport.sent) == 3


def test_a_removed_subscriber_takes_their_rows_with_them_and_gets_nothing(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)
    remove_subscriber(db, "member1@example.org")
    transport = Recorder()
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert len(transport.sent) == 3 and report.total == 3 and report.settled


def test_a_row_left_sending_is_settled_without_asking_when_the_transport_can_tell(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)
    force_status(db, members[0], "sending")  # it got there
    force_status(db, members[1], "sending")  # it did not
    transport = Recorder(delivered=lambda message_id: f".sub-{members[0]}." in message_id)
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert [r for r, _ in transport.sent] == [f"member{n}@example.org" for n in (2, 3, 4)]
    assert (report.sent, report.resolved, report.ambiguous, report.settled) == (3, 1, 0, True)
    assert set(statuses(ledger).values()) == {"sent"}


def test_a_row_left_sending_over_smtp_is_reported_and_not_sent_again(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)
    force_status(db, members[0], "sending")
    transport = Recorder()  # a relay never says
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert "member1@example.org" not in transport.tried
    assert (report.sent, report.ambiguous, report.settled) == (3, 1, False)
    [unsure] = report.unsure
    assert (unsure.email, unsure.message_id) == (
        "member1@example.org",
        f"issue-1.sub-{members[0]}.test@policy.example.org",
    )
    assert statuses(ledger)[members[0]] == "sending"


def test_resend_ambiguous_hands_it_over_again_with_the_same_message_id(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members[:1])
    force_status(db, members[0], "sending")
    transport = Recorder()
    report = ledger.deliver(transport, compose, sender=SENDER, resend_ambiguous=True)
    assert transport.sent == [
        ("member1@example.org", f"issue-1.sub-{members[0]}.test@policy.example.org")
    ]
    assert report.settled and ledger.rows()[0].attempts == 1


def test_progress_is_reported_after_each_row(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)
    force_status(db, members[0], "sent")
    calls: list[tuple[int, int]] = []
    ledger.deliver(Recorder(), compose, sender=SENDER, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_frozen_skipped_rows_are_settled_and_never_sent(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    ledger.freeze(
        [
            FrozenRow(members[0], None, "a@x.org"),
            FrozenRow(members[1], None, "b@x.org", "skipped", "no posts"),
        ]
    )
    transport = Recorder()
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert transport.sent == [("member1@example.org", "a@x.org")]
    assert report.ledger["skipped"] == 1 and report.settled


def test_a_lost_answer_leaves_that_row_unsure_and_the_others_still_go_out(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)

    def lost(recipient: str) -> Exception | None:
        return SendUncertain("no answer") if recipient == "member2@example.org" else None

    report = ledger.deliver(Recorder(after=lost), compose, sender=SENDER)
    assert (report.sent, report.ambiguous, report.stopped) == (3, 1, False)
    assert list(statuses(ledger).values()) == ["sent", "sending", "sent", "sent"]


def test_a_deferred_recipient_waits_without_holding_up_the_others_and_is_tried_once_more(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)
    tries: dict[str, int] = {}

    def fail(recipient: str) -> Exception | None:  # member1 greylisted once, member3 for good
        tries[recipient] = tries.get(recipient, 0) + 1
        if recipient == "member3@example.org" or (
            recipient == "member1@example.org" and tries[recipient] == 1
        ):
            return RecipientDeferred("451 4.7.1 Greylisted")
        return None

    transport = Recorder(fail=fail)
    report = ledger.deliver(transport, compose, sender=SENDER)
    # Everyone once in order, then the deferred ones once more at the end.
    assert transport.tried == [f"member{n}@example.org" for n in (1, 2, 3, 4, 1, 3)]
    assert [r for r, _ in transport.sent] == [f"member{n}@example.org" for n in (2, 4, 1)]
    assert (report.sent, report.waiting, report.stopped) == (3, 1, False)
    row = next(r for r in ledger.rows() if r.subscriber_id == members[2])
    assert (row.status, row.attempts, row.last_error) == ("pending", 2, "451 4.7.1 Greylisted")


def test_a_relay_that_cannot_be_used_stops_at_once_and_tries_no_row(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members)
    blocked = Recorder(fail=lambda r: SendBlocked("relay refused the login: 535 5.7.8"))
    report = ledger.deliver(blocked, compose, sender=SENDER)
    assert blocked.tried == ["member1@example.org"]
    assert report.blocked == "relay refused the login: 535 5.7.8" and report.stopped
    assert [(r.status, r.attempts) for r in ledger.rows()] == [("pending", 0)] * 4


def test_attempts_count_every_try_whether_or_not_it_reached_the_hand_off(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members[:2])

    def fail(recipient: str) -> Exception | None:
        return SendRefused("550 5.1.1 unknown") if recipient == "member1@example.org" else None

    ledger.deliver(Recorder(fail=fail), compose, sender=SENDER)
    assert [(r.status, r.attempts) for r in ledger.rows()] == [("failed", 1), ("sent", 1)]


def test_the_envelope_sender_may_be_chosen_per_message(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members[:2])
    transport = Recorder()

    def verp(row: Delivery) -> str:
        return f"bounces+{row.id}@policy.example.org"

    ledger.deliver(transport, compose, sender=SENDER, return_path=verp)
    assert transport.senders == [f"bounces+{r.id}@policy.example.org" for r in ledger.rows()]


def test_a_row_settled_by_someone_else_before_its_hand_off_is_not_sent(
    db: sqlite_utils.Database, issue_id: int, members: list[int], now: datetime
) -> None:
    ledger = ledger_for(db, issue_id, now)
    freeze_all(ledger, members[:1])
    transport = Recorder(spy=lambda _: force_status(db, members[0], "sent"))
    report = ledger.deliver(transport, compose, sender=SENDER)
    assert transport.sent == [] and report.sent == 0


# --- the outbox --------------------------------------------------------------------------------


def test_the_outbox_is_a_maildir_with_one_file_per_message_id(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path / "outbox")
    outbox.send(
        b"Subject: one\r\n\r\nbody\r\n", sender=SENDER, recipient="a@x.org", message_id="m1@x.org"
    )
    outbox.send(
        b"Subject: two\r\n\r\nbody\r\n", sender=SENDER, recipient="b@x.org", message_id="m2@x.org"
    )
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["cur", "new", "tmp"]
    assert [p.name for p in outbox.messages()] == ["m1@x.org", "m2@x.org"]
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []
    message = email.message_from_bytes((tmp_path / "outbox" / "new" / "m1@x.org").read_bytes())
    assert message["Subject"] == "one"


def test_handing_the_same_message_over_again_replaces_it_instead_of_adding_a_copy(
    tmp_path: Path,
) -> None:
    outbox = OutboxTransport(tmp_path)
    outbox.send(b"first try", sender=SENDER, recipient="a@x.org", message_id="m1@x.org")
    outbox.send(b"second try", sender=SENDER, recipient="a@x.org", message_id="m1@x.org")
    # The outbox copy starts with the envelope sender, as a delivering server writes it.
    assert [p.read_bytes() for p in outbox.messages()] == [
        f"Return-Path: <{SENDER}>\r\nsecond try".encode()
    ]


def test_a_message_a_mail_client_already_read_is_not_delivered_again(tmp_path: Path) -> None:
    OutboxTransport(tmp_path).send(b"hi", sender=SENDER, recipient="a@x.org", message_id="m1@x.org")
    (tmp_path / "new" / "m1@x.org").rename(tmp_path / "cur" / "m1@x.org:2,S")
    next_run = OutboxTransport(tmp_path)
    next_run.send(b"hi", sender=SENDER, recipient="a@x.org", message_id="m1@x.org")
    assert [p.name for p in next_run.messages()] == ["m1@x.org:2,S"]


def test_the_outbox_knows_whether_a_message_was_delivered(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path)
    assert outbox.delivered("m1@x.org") is False  # not even the folders yet
    outbox.send(b"hi", sender=SENDER, recipient="a@x.org", message_id="m1@x.org")
    assert outbox.delivered("m1@x.org") is True
    (tmp_path / "new" / "m1@x.org").rename(tmp_path / "cur" / "m1@x.org:2,S")
    assert outbox.delivered("m1@x.org") is True  # read by a mail client
    assert outbox.delivered("m2@x.org") is False


def test_the_outbox_hand_off_is_the_rename_into_new(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path)
    seen: list[tuple[list[str], list[str]]] = []

    def handoff() -> None:  # staged in tmp/, not yet where a mail client looks
        seen.append(
            (
                [p.name for p in (tmp_path / "tmp").iterdir()],
                [p.name for p in (tmp_path / "new").iterdir()],
            )
        )

    outbox.send(b"hi", sender=SENDER, recipient="a@x.org", message_id="m1@x.org", handoff=handoff)
    assert seen == [(["m1@x.org"], [])]
    assert [p.name for p in outbox.messages()] == ["m1@x.org"]

    def refuse() -> None:
        raise RuntimeError("the row was settled meanwhile")

    with pytest.raises(RuntimeError):
        outbox.send(b"x", sender=SENDER, recipient="b@x.org", message_id="m2@x.org", handoff=refuse)
    assert outbox.delivered("m2@x.org") is False and list((tmp_path / "tmp").iterdir()) == []


def test_an_outbox_that_cannot_be_written_defers_instead_of_failing_the_row(tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("a file where the folder should be")
    with pytest.raises(SendDeferred, match="cannot write to the outbox"):
        OutboxTransport(tmp_path / "outbox").send(
            b"x", sender=SENDER, recipient="a@x.org", message_id="m1@x.org"
        )


@pytest.mark.parametrize(
    ("message_id", "name"),
    [
        ("issue-1.sub-3.abc@policy.example.org", "issue-1.sub-3.abc@policy.example.org"),
        ("<m1@x.org>", "m1@x.org"),
    ],
)
def test_outbox_names_are_the_message_id(message_id: str, name: str) -> None:
    assert outbox_name(message_id) == name


def test_unsafe_message_ids_get_safe_distinct_names() -> None:
    one, two = outbox_name("a/b:c@x"), outbox_name("a_b_c@x")
    assert "/" not in one and ":" not in one and one != two


def test_the_outbox_is_the_transport_when_no_relay_is_configured(settings: Settings) -> None:
    transport = make_transport(settings)
    assert isinstance(transport, OutboxTransport)
    assert transport.root == settings.outbox_dir


def test_a_configured_relay_is_the_transport(settings: Settings) -> None:
    from policyfeed.delivery.smtp import SmtpTransport

    relay = replace(settings, smtp_host="127.0.0.1", secret="s3cret-of-the-delivery-tests")
    transport = make_transport(relay)
    assert isinstance(transport, SmtpTransport) and transport.delivered("x@y") is None
