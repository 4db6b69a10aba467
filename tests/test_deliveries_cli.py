"""``policyfeed issue deliveries N``: each message of an issue, its status, attempts and the
relay's last answer; ``issue show N`` says where the mailing stands."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import policyfeed.delivery.smtp
from policyfeed.audience.subscribers import add_chapter, add_subscriber
from policyfeed.cli import App, cli
from policyfeed.store import open_db
from smtp_server import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
GONE = "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown"
LATER = "451 4.7.1 <later@example.org>: Greylisted, try again later"


@pytest.fixture
def site(demo_db_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(App, "now", lambda self: now)
    monkeypatch.setattr(policyfeed.delivery.smtp, "BACKOFF_SECONDS", 0.01)
    db = open_db(demo_db_path)
    with db.conn:  # a chapter whose topic no post has: its member is skipped
        db.execute("INSERT INTO topics (slug, name) VALUES ('dns', 'DNS')")
    add_chapter(db, slug="dns-people", name="DNS people", topics=["dns"])
    add_subscriber(db, "resolver@example.org", now=now, chapter="dns-people")
    add_subscriber(db, "gone@example.org", now=now)
    add_subscriber(db, "later@example.org", now=now)
    db.conn.close()
    return demo_db_path


@pytest.fixture
def relay() -> Iterator[SmtpSink]:
    with SmtpSink(refuse={"gone@example.org": GONE, "later@example.org": LATER}) as sink:
        yield sink


def run(db_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    base = ["--db", str(db_path), "--config", str(ROOT / "policyfeed.toml")]
    return CliRunner().invoke(cli, [*base, *args], env=env or {})


def published(site: Path, relay: SmtpSink, tmp_path: Path, *args: str) -> Result:
    env = {
        **relay.environ(),
        "POLICYFEED_SECRET": "k" * 32,
        "POLICYFEED_OUTPUT_DIR": str(tmp_path / "public"),
    }
    return run(site, "publish", *args, env=env)


def test_the_deliveries_of_an_issue_are_listed_with_status_attempts_and_the_last_answer(
    site: Path, relay: SmtpSink, tmp_path: Path
) -> None:
    assert published(site, relay, tmp_path).exit_code == 75  # later@ waits
    result = run(site, "issue", "deliveries", "1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "STATUS",
        "ATTEMPTS",
        "UPDATED",
        "ADDRESS",
        "MESSAGE-ID",
        "LAST",
        "ERROR",
    ]
    rows = {line.split()[4]: line for line in lines[1:-1]}
    assert rows["gone@example.org"].split()[:2] == ["failed", "1"]
    assert rows["gone@example.org"].endswith(GONE)
    assert rows["later@example.org"].split()[:2] == ["pending", "2"]  # in turn, and at the end
    assert LATER in rows["later@example.org"]
    assert rows["resolver@example.org"].split()[:2] == ["skipped", "0"]
    assert rows["resolver@example.org"].endswith("no posts for DNS people")
    assert len(rows) == 8
    assert lines[-1] == ("8 deliveries: 5 sent, 1 failed, 1 skipped, 1 pending, 0 sending (unsure)")


def test_status_picks_the_rows_and_json_carries_every_field(
    site: Path, relay: SmtpSink, tmp_path: Path
) -> None:
    published(site, relay, tmp_path)
    failed = run(site, "issue", "deliveries", "1", "--status", "failed")
    assert failed.stdout.splitlines()[-1] == "1 of 8 deliveries are failed."
    assert len(failed.stdout.splitlines()) == 3
    rows = json.loads(run(site, "issue", "deliveries", "1", "--json").stdout)
    assert len(rows) == 8
    [gone] = [r for r in rows if r["email"] == "gone@example.org"]
    assert set(gone) == {
        "id",
        "email",
        "name",
        "chapter",
        "status",
        "attempts",
        "last_error",
        "message_id",
        "sent_at",
        "updated_at",
    }
    assert (gone["status"], gone["attempts"], gone["last_error"]) == ("failed", 1, GONE)
    with sqlite3.connect(site) as conn:
        ids = {r[0] for r in conn.execute("SELECT message_id FROM deliveries")}
    assert {r["message_id"] for r in rows} == ids
    sent = json.loads(run(site, "issue", "deliveries", "1", "--status", "sent", "--json").stdout)
    assert len(sent) == 5 and all(r["sent_at"] for r in sent)


def test_issue_show_says_where_the_mailing_stands(
    site: Path, relay: SmtpSink, tmp_path: Path
) -> None:
    published(site, relay, tmp_path)
    shown = run(site, "issue", "show", "1")
    assert (
        "mailed:  8: 5 sent, 1 failed, 1 skipped, 1 pending, 0 sending (unsure)"
        in shown.stdout.splitlines()
    )
    data = json.loads(run(site, "issue", "show", "1", "--json").stdout)
    assert data["deliveries"] == {"pending": 1, "sending": 0, "sent": 5, "failed": 1, "skipped": 1}


def test_an_issue_not_yet_mailed_says_so_and_an_unknown_one_is_an_error(site: Path) -> None:
    assert run(site, "issue", "new").exit_code == 0
    assert run(site, "issue", "deliveries", "1").stdout == (
        "Issue 1 has no deliveries yet: its mailing has not begun.\n"
    )
    unknown = run(site, "issue", "deliveries", "7")
    assert (unknown.exit_code, unknown.stderr) == (1, "Error: no issue number 7\n")
    bad = run(site, "issue", "deliveries", "1", "--status", "lost")
    assert bad.exit_code == 2


def test_unsure_messages_the_relay_got_are_marked_sent_and_the_issue_then_finishes(
    site: Path, tmp_path: Path
) -> None:
    with SmtpSink(lose_answers=1) as relay:  # the first message arrives, its answer is lost
        first = published(site, relay, tmp_path)
        assert first.exit_code == 1, first.output
        [line] = first.stdout.splitlines()
        assert "`policyfeed issue mark-sent 1 MESSAGE-ID`" in line
        [unsure] = json.loads(
            run(site, "issue", "deliveries", "1", "--status", "sending", "--json").stdout
        )
        # The relay's log has it: the operator says so, and nothing is sent again.
        assert unsure["message_id"] in {
            m.data.decode().split("Message-ID: <")[1].split(">")[0] for m in relay.messages
        }
        wrong = run(site, "issue", "mark-sent", "1", f"<{unsure['message_id']}>", "nobody@x")
        assert wrong.exit_code == 1
        assert wrong.stderr.startswith("Error: nobody@x: not an unsure message of this issue")
        marked = run(site, "issue", "mark-sent", "1", f"<{unsure['message_id']}>")
        assert marked.exit_code == 0, marked.output
        assert marked.stdout.startswith("Marked 1 message of issue 1 as sent; ")
        delivered = len(relay.messages)
        final = published(site, relay, tmp_path)
        assert final.exit_code == 0, final.output
        assert final.stdout.startswith("resumed: issue 1")
        assert len(relay.messages) == delivered  # the one that arrived is not sent again
    statuses = {
        r["email"]: r["status"]
        for r in json.loads(run(site, "issue", "deliveries", "1", "--json").stdout)
    }
    assert statuses[unsure["email"]] == "sent"
    again = run(site, "issue", "mark-sent", "1", unsure["message_id"])
    assert again.exit_code == 1  # no longer unsure


def test_the_help_on_unsure_rows_says_to_mark_the_arrived_ones_before_resending() -> None:
    """Resending an unsure message the relay has delivers it twice: the help must not send
    the operator straight to --resend-ambiguous."""
    text = " ".join(CliRunner().invoke(cli, ["issue", "deliveries", "--help"]).stdout.split())
    sending = text.split("sending ", 1)[1].split(" sent ", 1)[0]
    assert "policyfeed issue mark-sent" in sending
    assert sending.index("mark-sent") < sending.index("--resend-ambiguous")


def test_marking_a_special_issue_names_the_command_that_finishes_it(
    site: Path, tmp_path: Path
) -> None:
    """A special issue is mailed only by `publish --period NAME`: the hint says so (the
    scheduled run would never finish it)."""
    assert run(site, "issue", "new", "--period", "wcit-special").exit_code == 0
    with SmtpSink(lose_answers=1) as relay:
        first = published(site, relay, tmp_path, "--period", "wcit-special")
        assert first.exit_code == 1, first.output
        [unsure] = json.loads(
            run(site, "issue", "deliveries", "1", "--status", "sending", "--json").stdout
        )
        marked = run(site, "issue", "mark-sent", "1", unsure["message_id"])
    assert marked.exit_code == 0, marked.output
    left = json.loads(run(site, "issue", "show", "1", "--json").stdout)["deliveries"]
    if left["pending"] + left["sending"]:
        assert "`policyfeed publish --period wcit-special" in marked.stdout
    else:
        assert marked.stdout.endswith(
            "the next `policyfeed publish --period wcit-special` finishes the issue.\n"
        )
