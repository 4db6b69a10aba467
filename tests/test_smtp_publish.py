"""``policyfeed publish`` delivering through a real SMTP relay (aiosmtpd on 127.0.0.1).

What counts is what arrives at the relay: every active subscriber exactly one message, whatever
the relay does in between (drops the connection, answers 421, refuses one address).
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result
from werkzeug.test import Client

import policyfeed.delivery.smtp
from policyfeed.audience.subscribers import add_chapter, add_subscriber
from policyfeed.audience.tokens import make_token, read_return_token
from policyfeed.cli import App, cli
from policyfeed.config import Settings
from policyfeed.store import open_db
from smtp_server import SmtpSink, TlsFiles, make_tls

ROOT = Path(__file__).resolve().parent.parent
SECRET = "a secret only the tests know"
MEMBERS = [f"member{n}@example.org" for n in range(1, 7)]
REQUIRED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
)


@pytest.fixture(autouse=True, params=["1", "8"], ids=lambda n: f"connections-{n}")
def connections(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every test runs with one connection to the relay and with eight at once."""
    monkeypatch.setenv("POLICYFEED_SMTP_CONNECTIONS", request.param)
    return int(request.param)


@pytest.fixture(autouse=True)
def fixed_clock_and_quick_backoff(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    # The demo's schedule gives the period of `now`; the relay's retries need not wait seconds.
    monkeypatch.setattr(App, "now", lambda self: now)
    monkeypatch.setattr(policyfeed.delivery.smtp, "BACKOFF_SECONDS", 0.01)


@pytest.fixture
def db_path(demo_db_path: Path, now: datetime) -> Path:
    db = open_db(demo_db_path)
    for address in MEMBERS:
        add_subscriber(db, address, now=now, name=address.split("@")[0].title())
    add_subscriber(db, "left@example.org", now=now)
    with db.conn:
        db.conn.execute(
            "UPDATE subscribers SET status = 'unsubscribed' WHERE email = ?", ("left@example.org",)
        )
    db.conn.close()
    return demo_db_path


def active_subscribers(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as conn:
        return {r[0] for r in conn.execute("SELECT email FROM subscribers WHERE status = 'active'")}


def ledger(db_path: Path) -> dict[str, tuple[str, str]]:
    """address -> (status, last error) of every delivery row."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT s.email, d.status, d.last_error FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id"
        ).fetchall()
    return {address: (status, error) for address, status, error in rows}


def publish(
    db_path: Path, relay: SmtpSink, tmp_path: Path, **env: str
) -> tuple[Result, dict[str, Any]]:
    environ = {
        **relay.environ(),
        "POLICYFEED_SECRET": SECRET,
        "POLICYFEED_OUTPUT_DIR": str(tmp_path / "public"),
        "POLICYFEED_OUTBOX_DIR": str(tmp_path / "outbox"),
        "POLICYFEED_SMTP_RETRIES": "1",
        **env,
    }
    result = CliRunner().invoke(
        cli,
        ["--db", str(db_path), "--config", str(ROOT / "policyfeed.toml"), "publish", "--json"],
        env=environ,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return result, (json.loads(lines[-1]) if lines else {})


def delivery_of(db_path: Path, delivery_id: int) -> tuple[int, str]:
    """(subscriber id, Message-ID) of one delivery row."""
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT subscriber_id, message_id FROM deliveries WHERE id = ?", [delivery_id]
        ).fetchone()
    return int(row[0]), str(row[1])


def arrived(relay: SmtpSink) -> Counter[str]:
    return relay.recipients()


@pytest.fixture
def relay() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def test_every_active_subscriber_gets_exactly_one_message_with_the_required_headers(
    db_path: Path, relay: SmtpSink, tmp_path: Path
) -> None:
    result, report = publish(db_path, relay, tmp_path)
    assert result.exit_code == 0, result.output
    assert report["status"] == "sent"
    expected = active_subscribers(db_path)
    assert set(MEMBERS) <= expected
    assert arrived(relay) == Counter({address: 1 for address in expected})
    assert "left@example.org" not in arrived(relay)
    message_ids = set()
    for received in relay.messages:
        assert all(len(line) < 998 for line in received.data.split(b"\r\n"))
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        assert not message.defects
        for header in REQUIRED_HEADERS:
            assert message[header], f"{header} missing"
        assert message["To"].addresses[0].addr_spec == received.rcpt_tos[0]
        # The envelope sender is the delivery's own VERP return path, signed.
        local, _, domain = received.mail_from.partition("@")
        assert domain == "example.org" and local.startswith("policy-digest+")
        token = read_return_token(SECRET, local.split("+", 1)[1], "digest.policy.example.org")
        assert token is not None
        assert delivery_of(db_path, token[0]) == (token[1], message["Message-ID"].strip("<>"))
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        links = [link.strip(" <>") for link in str(message["List-Unsubscribe"]).split(",")]
        assert links[0].startswith("https://policy.example.org/unsubscribe?t=")
        assert links[1].startswith("mailto:")
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        message_ids.add(message["Message-ID"])
    assert len(message_ids) == len(relay.messages)
    assert set(ledger(db_path).values()) == {("sent", "")}


def test_a_second_run_sends_nothing_more(db_path: Path, relay: SmtpSink, tmp_path: Path) -> None:
    first, _ = publish(db_path, relay, tmp_path)
    second, report = publish(db_path, relay, tmp_path)
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert report["status"] == "already_sent"
    assert set(arrived(relay).values()) == {1}


@pytest.mark.parametrize("mode", ["drop", "421"])
def test_a_relay_that_goes_down_mid_run_exits_75_and_the_next_run_completes(
    db_path: Path, tmp_path: Path, mode: str, connections: int
) -> None:
    with SmtpSink(down_after=2, down_mode=mode) as relay:
        first, report = publish(db_path, relay, tmp_path)
        assert first.exit_code == 75, first.output
        assert report["status"] == "partial"
        # One connection stops at the second message; with several, the messages other
        # connections had begun by then go through too. The ledger knows each that arrived.
        got = arrived(relay)
        assert sum(got.values()) == (2 if connections == 1 else report["sent"]) >= 2
        assert set(got) == {a for a, (status, _) in ledger(db_path).items() if status == "sent"}
        assert max(got.values()) == 1
        assert relay.down_answers >= 2  # the transport retried before giving up
        relay.recover()
        second, report = publish(db_path, relay, tmp_path)
    assert second.exit_code == 0, second.output
    assert report["status"] == "resumed"
    assert arrived(relay) == Counter({address: 1 for address in active_subscribers(db_path)})
    assert {status for status, _ in ledger(db_path).values()} == {"sent"}


def test_a_relay_that_closes_each_session_is_ridden_out_in_one_run(
    db_path: Path, tmp_path: Path
) -> None:
    with SmtpSink(close_every=2) as relay:
        result, report = publish(db_path, relay, tmp_path)
    assert result.exit_code == 0, result.output
    assert report["status"] == "sent"
    assert arrived(relay) == Counter({address: 1 for address in active_subscribers(db_path)})
    assert len({m.connection for m in relay.messages}) > 1


def test_a_550_for_one_recipient_fails_that_row_with_the_reason_and_the_others_get_theirs(
    db_path: Path, tmp_path: Path
) -> None:
    answer = "550 5.1.1 <member3@example.org>: Recipient address rejected: User unknown"
    with SmtpSink(refuse={"member3@example.org": answer}) as relay:
        result, report = publish(db_path, relay, tmp_path)
    assert result.exit_code == 0, result.output
    assert report["failed"] == 1
    rows = ledger(db_path)
    assert rows["member3@example.org"] == ("failed", answer)
    others = active_subscribers(db_path) - {"member3@example.org"}
    assert arrived(relay) == Counter({address: 1 for address in others})
    assert all(rows[address] == ("sent", "") for address in others)


def test_sending_over_smtp_refuses_to_start_without_a_secret(
    db_path: Path, relay: SmtpSink, tmp_path: Path
) -> None:
    result, _ = publish(db_path, relay, tmp_path, POLICYFEED_SECRET="")
    assert result.exit_code == 1
    assert "POLICYFEED_SECRET" in result.output
    assert relay.messages == []
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)


def test_the_rate_limit_holds_on_a_short_run(
    db_path: Path, relay: SmtpSink, tmp_path: Path, connections: int
) -> None:
    result, _ = publish(db_path, relay, tmp_path, POLICYFEED_SMTP_RATE_LIMIT="25")
    assert result.exit_code == 0, result.output
    arrivals = sorted(m.at for m in relay.messages)
    assert len(arrivals) >= 6
    # 25 a second for the whole run, however many connections: at least 40 ms apart as the
    # relay sees them (from the second message on; the first also paid for connecting), with
    # 20 ms of slack for the relay's scheduling. With several connections the first message
    # of each pays for its connection: 100 ms of slack for those (eight connections with a
    # rate limit each would deliver these messages within a few tens of ms).
    if connections == 1:
        assert arrivals[-1] - arrivals[1] >= (len(arrivals) - 2) * 0.04 - 0.02
    else:
        assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) * 0.04 - 0.1


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


def test_starttls_and_auth_work_end_to_end(
    db_path: Path, tmp_path: Path, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operator's trust store, as OpenSSL reads it: here, the test's own CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    with SmtpSink(security="starttls", tls=tls, auth=("digest", "relay-password")) as relay:
        result, report = publish(db_path, relay, tmp_path)
    assert result.exit_code == 0, result.output
    assert report["status"] == "sent"
    assert all(m.tls and m.login == "digest" for m in relay.messages)
    assert arrived(relay) == Counter({address: 1 for address in active_subscribers(db_path)})


def test_a_wrong_relay_password_exits_1_with_the_relays_complaint_and_sends_nothing(
    db_path: Path, tmp_path: Path, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    with SmtpSink(security="starttls", tls=tls, auth=("digest", "relay-password")) as relay:
        result, report = publish(db_path, relay, tmp_path, POLICYFEED_SMTP_PASSWORD="wrong")
        assert relay.connections == 1  # no retries: they would only lock the account
    # A configuration error: the systemd unit must not retry it all day (it retries only 75).
    assert result.exit_code == 1, result.output
    assert report["status"] == "relay_error"
    assert "refused the login for 'digest': 535" in report["message"]
    assert "wrong" not in report["message"]
    assert relay.messages == []
    assert {status for status, _ in ledger(db_path).values()} == {"pending"}


def plain(db_path: Path, relay: SmtpSink, tmp_path: Path, **env: str) -> Result:
    """``publish`` without --json: the one summary line a log gets."""
    environ = {
        **relay.environ(),
        "POLICYFEED_SECRET": SECRET,
        "POLICYFEED_OUTPUT_DIR": str(tmp_path / "public"),
        "POLICYFEED_OUTBOX_DIR": str(tmp_path / "outbox"),
        "POLICYFEED_SMTP_RETRIES": "1",
        **env,
    }
    return CliRunner().invoke(
        cli,
        ["--db", str(db_path), "--config", str(ROOT / "policyfeed.toml"), "publish"],
        env=environ,
    )


def test_an_untrusted_relay_certificate_exits_1_in_one_line(
    db_path: Path, tmp_path: Path, tls: TlsFiles
) -> None:
    # No SSL_CERT_FILE: the system's trust store does not know the relay's CA.
    with SmtpSink(security="starttls", tls=tls) as relay:
        result = plain(db_path, relay, tmp_path)
    assert result.exit_code == 1, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith("relay_error: issue 1, period 2012-07-30T08:00: ")
    assert "TLS certificate not accepted (unable to get local issuer certificate)" in line
    assert relay.messages == []
    assert {status for status, _ in ledger(db_path).values()} == {"pending"}


def test_a_relay_without_starttls_when_it_is_required_exits_1(
    db_path: Path, relay: SmtpSink, tmp_path: Path
) -> None:
    result, report = publish(db_path, relay, tmp_path, POLICYFEED_SMTP_SECURITY="starttls")
    assert result.exit_code == 1
    assert report["status"] == "relay_error"
    assert "does not offer STARTTLS (smtp.security = starttls)" in report["message"]
    assert relay.messages == []


def test_a_relay_that_is_not_listening_is_still_temporary(db_path: Path, tmp_path: Path) -> None:
    relay = SmtpSink().start()
    relay.stop()  # its port is free now: connection refused
    result, report = publish(db_path, relay, tmp_path)
    assert result.exit_code == 75
    assert report["status"] == "partial" and "cannot connect" in report["message"]


def one_click(settings: Settings, db_path: Path, url: str) -> int:
    """POST the RFC 8058 one-click request to the unsubscribe endpoint, as a mail provider does."""
    import dataclasses

    parts = urlsplit(url)
    from policyfeed.web import make_app

    site = dataclasses.replace(settings, secret=SECRET)
    app = make_app(site, db_path, site.output_dir)
    response = Client(app).post(
        f"{parts.path}?{parts.query}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    return response.status_code


def unsubscribe_link(received: bytes) -> str:
    message = email.message_from_bytes(received, policy=email.policy.default)
    return str(message["List-Unsubscribe"]).split(",")[0].strip(" <>")


def test_the_one_click_link_in_a_message_unsubscribes_and_later_issues_skip_them(
    db_path: Path,
    relay: SmtpSink,
    tmp_path: Path,
    settings: Settings,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish(db_path, relay, tmp_path)
    first = next(m for m in relay.messages if m.rcpt_tos == ("member1@example.org",))
    assert one_click(settings, db_path, unsubscribe_link(first.data)) == 200
    assert "member1@example.org" not in active_subscribers(db_path)

    # A week later, a new post and the next issue: member1 is not among its recipients.
    config = str(ROOT / "policyfeed.toml")
    new_post = ["--title", "After the summer", "--body", "<p>News.</p>", "--publish"]
    new_post += ["--date", "2012-08-02T10:00:00"]
    added = CliRunner().invoke(
        cli,
        ["--db", str(db_path), "--config", config, "posts", "add", *new_post],
    )
    assert added.exit_code == 0, added.output
    monkeypatch.setattr(App, "now", lambda self: now + timedelta(days=7))
    delivered = len(relay.messages)
    result, report = publish(db_path, relay, tmp_path)
    assert result.exit_code == 0, result.output
    assert report["status"] == "sent" and report["issue"] == 2
    second_issue = Counter(r for m in relay.messages[delivered:] for r in m.rcpt_tos)
    assert "member1@example.org" not in second_issue
    # (The demo's chapter members may get nothing: the new post has none of their topics.)
    assert {a: second_issue[a] for a in MEMBERS[1:]} == {a: 1 for a in MEMBERS[1:]}
    assert set(second_issue.values()) == {1}


def test_a_subscriber_who_leaves_while_an_issue_is_pending_is_skipped_on_the_next_run(
    db_path: Path, tmp_path: Path, settings: Settings
) -> None:
    with SmtpSink(down_after=1, down_mode="421") as relay:
        first, _ = publish(db_path, relay, tmp_path)
        assert first.exit_code == 75
        waiting = [a for a, (status, _) in ledger(db_path).items() if status == "pending"]
        leaving = sorted(waiting)[0]
        with sqlite3.connect(db_path) as conn:
            (subscriber_id,) = conn.execute(
                "SELECT id FROM subscribers WHERE email = ?", (leaving,)
            ).fetchone()
        token = make_token(SECRET, subscriber_id, settings.list_identifier)
        assert one_click(settings, db_path, f"/unsubscribe?t={token}") == 200
        relay.recover()
        second, report = publish(db_path, relay, tmp_path)
    assert second.exit_code == 0, second.output
    assert report["skipped"] == 1
    assert ledger(db_path)[leaving][0] == "skipped"
    assert leaving not in arrived(relay)
    assert set(arrived(relay).values()) == {1}


def test_a_lost_answer_is_never_resent_without_the_operators_word(
    db_path: Path, tmp_path: Path
) -> None:
    with SmtpSink(lose_answers=1) as relay:
        first, report = publish(db_path, relay, tmp_path)
        # The unsure row does not stop the others: they all go out in the same run, and the
        # run exits 1 naming only that row.
        assert first.exit_code == 1, first.output
        assert report["status"] == "ambiguous"
        unsure = [a for a, (status, _) in ledger(db_path).items() if status == "sending"]
        assert len(unsure) == 1
        assert [u["email"] for u in report["unsure"]] == unsure
        assert f"{unsure[0]} <{report['unsure'][0]['message_id']}>" in report["message"]
        assert "--resend-ambiguous" in report["message"]
        assert arrived(relay) == Counter({address: 1 for address in active_subscribers(db_path)})
        second, report = publish(db_path, relay, tmp_path)
    assert second.exit_code == 1, second.output
    assert report["status"] == "ambiguous" and report["sent"] == 0
    assert ledger(db_path)[unsure[0]][0] == "sending"
    assert arrived(relay) == Counter({address: 1 for address in active_subscribers(db_path)})


def test_an_unsure_row_left_by_a_killed_run_does_not_stop_the_rest(
    db_path: Path, tmp_path: Path
) -> None:
    with SmtpSink(down_after=2, down_mode="421") as relay:
        publish(db_path, relay, tmp_path)  # two sent, the rest pending
        with sqlite3.connect(db_path) as conn:  # as a run killed inside a hand-off leaves it
            conn.execute(
                "UPDATE deliveries SET status = 'sending' WHERE id = "
                "(SELECT min(id) FROM deliveries WHERE status = 'pending')"
            )
        relay.recover()
        second, report = publish(db_path, relay, tmp_path)
    assert second.exit_code == 1, second.output
    assert report["status"] == "ambiguous"
    statuses = Counter(status for status, _ in ledger(db_path).values())
    assert statuses == Counter(sent=len(active_subscribers(db_path)) - 1, sending=1)
    assert len(report["unsure"]) == 1 and report["ambiguous"] == 1


def test_a_4xx_for_one_recipient_keeps_that_row_waiting_and_the_others_get_theirs(
    db_path: Path, tmp_path: Path
) -> None:
    answer = "452 4.2.2 <member3@example.org>: Mailbox full"
    with SmtpSink(refuse={"member3@example.org": answer}) as relay:
        first, report = publish(db_path, relay, tmp_path)
        assert first.exit_code == 75, first.output
        assert report["status"] == "partial"
        others = active_subscribers(db_path) - {"member3@example.org"}
        assert arrived(relay) == Counter({address: 1 for address in others})
        status, error = ledger(db_path)["member3@example.org"]
        assert status == "pending"
        assert answer in error
        relay.stop_refusing()
        second, report = publish(db_path, relay, tmp_path)
    assert second.exit_code == 0, second.output
    assert report["status"] == "resumed"
    assert arrived(relay) == Counter({address: 1 for address in active_subscribers(db_path)})


@pytest.mark.parametrize("phase", ["refuse_data", "refuse_message"])
def test_a_4xx_to_one_members_data_does_not_hold_up_the_rest_of_the_list(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    """A full mailbox or a content filter's 4xx at DATA or after the final dot is about that
    one message: the row waits, the others go out at once, without sleeping, run after run."""
    slept: list[float] = []
    monkeypatch.setattr(
        policyfeed.delivery.smtp, "backoff_delay", lambda *a: slept.append(1.0) or 0.0
    )
    full = MEMBERS[0]  # the first row: a run that stopped at it would mail nobody else
    answer = "452 4.2.2 Mailbox full"
    with SmtpSink(**{phase: {full: answer}}) as relay:
        for _ in range(2):
            result, report = publish(db_path, relay, tmp_path, POLICYFEED_SMTP_RETRIES="3")
            assert result.exit_code == 75, result.output
            assert report["status"] == "partial"
            assert "1 recipient(s) answered with a temporary failure" in report["message"]
            others = active_subscribers(db_path) - {full}
            assert arrived(relay) == Counter({address: 1 for address in others})
            assert ledger(db_path)[full][0] == "pending"
            assert answer in ledger(db_path)[full][1]
        assert slept == []
        relay.stop_refusing()
        last, report = publish(db_path, relay, tmp_path)
    assert last.exit_code == 0, last.output
    assert arrived(relay) == Counter({address: 1 for address in active_subscribers(db_path)})


def test_greylisted_recipients_are_deferred_without_sleeping_and_tried_once_more_at_the_end(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(
        policyfeed.delivery.smtp, "backoff_delay", lambda *a: slept.append(1.0) or 0.0
    )
    greylisted = MEMBERS[:5]
    answers = {a: "451 4.7.1 Greylisted, try again in 5 minutes" for a in greylisted}
    with SmtpSink(refuse=answers) as relay:
        first, report = publish(db_path, relay, tmp_path, POLICYFEED_SMTP_RETRIES="3")
        assert first.exit_code == 75, first.output
        assert report["status"] == "partial"
        assert "5 recipient(s) answered with a temporary failure" in report["message"]
        assert slept == []  # no backoff at all for a recipient's 4xx
        # Each greylisted address was asked twice: in its turn, and once more at the end.
        assert {a: relay.rcpt_attempts[a] for a in greylisted} == dict.fromkeys(greylisted, 2)
        others = active_subscribers(db_path) - set(greylisted)
        assert arrived(relay) == Counter({address: 1 for address in others})
        relay.stop_refusing()
        second, report = publish(db_path, relay, tmp_path)
    assert second.exit_code == 0, second.output
    assert arrived(relay) == Counter({address: 1 for address in active_subscribers(db_path)})


def counts_in(line: str) -> tuple[int, dict[str, int]]:
    """(recipients, {"sent": n, "failed": n, ...}) from a summary line's main counts."""
    found = re.search(r"(\d+) recipients: ((?:\d+ \w+(?:, )?)+)", line)
    assert found, line
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", found.group(2))}
    return int(found.group(1)), counts


def test_the_summary_line_counts_add_up_to_the_recipients(
    db_path: Path, tmp_path: Path, now: datetime, connections: int
) -> None:
    db = open_db(db_path)  # a chapter whose topic no post has: its member is skipped
    with db.conn:
        db.execute("INSERT INTO topics (slug, name) VALUES ('dns', 'DNS')")
    add_chapter(db, slug="dns-people", name="DNS people", topics=["dns"])
    add_subscriber(db, "resolver@example.org", now=now, chapter="dns-people")
    db.conn.close()
    with SmtpSink(down_after=3, down_mode="421") as relay:
        first = plain(db_path, relay, tmp_path)
        relay.recover()
        second = plain(db_path, relay, tmp_path)
    assert (first.exit_code, second.exit_code) == (75, 0), first.output + second.output
    for result in (first, second):
        recipients, counts = counts_in(result.stdout)
        assert sum(counts.values()) == recipients, result.stdout
        assert counts["skipped"] == 1
    # One connection stops at the third message; with several, the messages other
    # connections had begun by then go through too.
    first_sent = counts_in(first.stdout)[1]["sent"]
    assert first_sent == 3 if connections == 1 else 3 <= first_sent < recipients - 1
    line = second.stdout
    assert line.startswith(f"resumed: issue 1, period 2012-07-30T08:00: 5 posts, {recipients} ")
    this_run = recipients - 1 - first_sent
    assert f"{recipients - 1} sent, 0 failed, 1 skipped (this run: {this_run} sent" in line
