"""Several connections to the relay at once (smtp.connections): one rate limit for all of them,
every ledger write from one thread, one message per member."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import sqlite_utils

from policyfeed.audience.subscribers import add_subscriber
from policyfeed.config import Settings, load_settings
from policyfeed.delivery.ledger import DeliveryLedger, FrozenRow, make_transport
from policyfeed.delivery.smtp import RateLimiter, SmtpPool, SmtpTransport
from policyfeed.delivery.transport import RecipientDeferred, SendRefused
from policyfeed.errors import ConfigError
from policyfeed.model import Delivery, Subscriber
from policyfeed.store import issues as issue_store
from smtp_server import SmtpSink

SENDER = "policy-digest@example.org"


def compose(row: Delivery, subscriber: Subscriber) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {subscriber.email}\r\nMessage-ID: <{row.message_id}>\r\n"
        f"Subject: test\r\n\r\nHello {subscriber.name}\r\n"
    ).encode()


@pytest.fixture
def ledger(db: sqlite_utils.Database, now: datetime) -> DeliveryLedger:
    with db.conn:
        issue = issue_store.insert_issue(
            db, number=1, period="2012-07-30T08:00", subject="Issue 1", note="", now=now,
            post_ids=[],
        )  # fmt: skip
    return DeliveryLedger(db, issue.id or 0, clock=lambda: now)


def members(db: sqlite_utils.Database, now: datetime, count: int) -> tuple[list[str], list[int]]:
    addresses = [f"member{n:02}@example.org" for n in range(count)]
    ids = [add_subscriber(db, a, now=now, name=a.split("@")[0]).id or 0 for a in addresses]
    return addresses, ids


def freeze(ledger: DeliveryLedger, ids: list[int]) -> None:
    ledger.freeze(FrozenRow(i, None, f"issue-1.sub-{i}@policy.example.org") for i in ids)


def test_the_rate_limit_is_shared_by_every_thread_that_uses_the_limiter() -> None:
    limiter = RateLimiter(200.0)  # 5 ms apart, for the run
    slots: list[float] = []
    lock = threading.Lock()

    def lane() -> None:
        for _ in range(5):
            limiter.wait()
            with lock:
                slots.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=lane) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # 40 hand-offs at 200 a second take at least 39 intervals, however many threads ask.
    assert len(slots) == 40
    assert max(slots) - started >= 39 * 0.005 - 0.001


class Lanes:
    """A pool of fake connections: each hand-off takes ``delay`` seconds, as a relay 20 ms away
    would; ``fail`` decides per recipient what goes wrong."""

    def __init__(
        self, count: int, delay: float, fail: Callable[[str], Exception | None] = lambda _: None
    ) -> None:
        self.lanes = [_Lane(self, n) for n in range(count)]
        self.delay, self.fail = delay, fail
        self.lock = threading.Lock()
        self.busy = 0
        self.most_at_once = 0
        self.sent: list[tuple[int, str]] = []  # (lane, recipient)

    def send(self, message: bytes, **envelope: Any) -> None:
        self.lanes[0].send(message, **envelope)

    def delivered(self, message_id: str) -> None:
        return None

    def close(self) -> None:
        pass


class _Lane:
    def __init__(self, pool: Lanes, number: int) -> None:
        self.pool, self.number = pool, number

    def send(
        self, message: bytes, *, sender: str, recipient: str, message_id: str,
        handoff: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        pool = self.pool
        with pool.lock:
            pool.busy += 1
            pool.most_at_once = max(pool.most_at_once, pool.busy)
        try:
            time.sleep(pool.delay)
            problem = pool.fail(recipient)
            if problem is not None:
                raise problem
            if handoff is not None:
                handoff()
            with pool.lock:
                pool.sent.append((self.number, recipient))
        finally:
            with pool.lock:
                pool.busy -= 1

    def delivered(self, message_id: str) -> None:
        return None

    def close(self) -> None:
        pass


def test_eight_connections_hand_over_at_once_and_every_row_is_settled_once(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime
) -> None:
    addresses, ids = members(db, now, 40)
    freeze(ledger, ids)
    pool = Lanes(8, delay=0.02)
    seen: list[tuple[int, int]] = []
    report = ledger.deliver(pool, compose, sender=SENDER, progress=lambda d, t: seen.append((d, t)))
    assert (report.sent, report.settled) == (40, True)
    assert sorted(r for _, r in pool.sent) == sorted(addresses)
    assert pool.most_at_once == 8
    assert len({lane for lane, _ in pool.sent}) == 8
    assert seen[-1] == (40, 40) and len(seen) == 40
    assert {(row.status, row.attempts) for row in ledger.rows()} == {("sent", 1)}


def test_a_refusal_and_a_deferral_on_one_connection_settle_only_their_own_rows(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime
) -> None:
    _, ids = members(db, now, 20)
    freeze(ledger, ids)

    def fail(recipient: str) -> Exception | None:
        if recipient == "member03@example.org":
            return SendRefused("550 5.1.1 no such user", code=550, enhanced="5.1.1", phase="RCPT")
        if recipient == "member07@example.org":
            return RecipientDeferred("450 4.2.0 greylisted")
        return None

    report = ledger.deliver(Lanes(8, delay=0.01, fail=fail), compose, sender=SENDER)
    statuses = {row.subscriber_id: row.status for row in ledger.rows()}
    assert (report.sent, report.failed, report.waiting) == (18, 1, 1)
    assert statuses[ids[3]] == "failed" and statuses[ids[7]] == "pending"
    assert [s for i, s in statuses.items() if i not in (ids[3], ids[7])] == ["sent"] * 18
    assert not report.stopped  # neither stops the others


def test_a_pool_against_a_real_relay_delivers_each_message_once_over_several_connections(
    db: sqlite_utils.Database, ledger: DeliveryLedger, now: datetime
) -> None:
    addresses, ids = members(db, now, 24)
    freeze(ledger, ids)
    with SmtpSink() as relay:
        settings = dataclasses.replace(
            Settings(), secret="s3cret-of-the-smtp-tests", smtp_timeout=5.0, smtp_connections=4,
            **relay.settings_overrides(),
        )  # fmt: skip
        transport = make_transport(settings)
        assert isinstance(transport, SmtpPool) and len(transport.lanes) == 4
        try:
            report = ledger.deliver(transport, compose, sender=SENDER)
        finally:
            transport.close()
        assert report.sent == 24 and report.settled
        assert relay.recipients() == {a: 1 for a in addresses}
        assert transport.connections == 4 == relay.connections


def test_one_connection_is_the_default_and_the_setting_is_checked(tmp_path: Any) -> None:
    settings = dataclasses.replace(Settings(), secret="s" * 32, smtp_host="127.0.0.1")
    assert settings.smtp_connections == 1
    assert isinstance(make_transport(settings), SmtpTransport)
    config = tmp_path / "policyfeed.toml"
    config.write_text('[site]\nbase_url = "https://policy.example.org/"\n[smtp]\nconnections = 0\n')
    with pytest.raises(ConfigError, match=r"smtp\.connections must be from 1 to 32, not 0"):
        load_settings(config, environ={})
    settings = load_settings(config, environ={"POLICYFEED_SMTP_CONNECTIONS": "8"})
    assert settings.smtp_connections == 8
