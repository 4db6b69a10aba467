"""``policyfeed issue send-test N --to ADDRESS``: one copy for an editor, the ledger untouched."""

from __future__ import annotations

import email
import email.policy
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner, Result

from policyfeed.audience.subscribers import add_chapter, add_subscriber
from policyfeed.audience.tokens import read_token
from policyfeed.cli import cli
from policyfeed.config import Settings
from policyfeed.digest.issues import create_issue
from policyfeed.store import open_db
from smtp_server import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
EDITOR = "editor@example.org"


@pytest.fixture
def db_with_issue(demo_db_path: Path, settings: Settings, now: datetime) -> Path:
    db = open_db(demo_db_path)
    with db.conn:
        db.conn.execute("INSERT INTO topics (slug, name) VALUES ('dns', 'DNS')")
    add_chapter(db, slug="geneva", name="Geneva", intro="From Geneva.", topics=["itu-wcit"])
    add_chapter(db, slug="dns", name="DNS people", topics=["dns"])
    add_subscriber(db, "member@example.org", now=now)
    issue = create_issue(db, settings, period="2012-07-30T08:00", now=now)
    assert issue is not None and issue.number == 1
    db.conn.close()
    return demo_db_path


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as relay:
        yield relay


def run(db_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli,
        [
            "--db",
            str(db_path),
            "--config",
            str(ROOT / "policyfeed.toml"),
            "issue",
            "send-test",
            *args,
        ],
        env=env or {},
        catch_exceptions=False,
    )


def ledger_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])


def test_one_copy_arrives_over_smtp_as_subscribers_get_it_and_the_ledger_is_untouched(
    db_with_issue: Path, sink: SmtpSink
) -> None:
    result = run(db_with_issue, "1", "--to", EDITOR, env=sink.environ())
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Sent a test copy of issue 1 to {EDITOR} via smtp 127.0.0.1:{sink.port}\n"
    )
    assert sink.recipients() == {EDITOR: 1}
    message = email.message_from_bytes(sink.messages[0].data, policy=email.policy.default)
    assert message["To"] == EDITOR
    assert message["Subject"].startswith("[Test] ")
    assert message["From"] == "Public Policy digest <policy-digest@example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].startswith("<issue-1.test-")
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert ledger_rows(db_with_issue) == 0


def test_the_unsubscribe_link_in_a_test_copy_unsubscribes_nobody(
    db_with_issue: Path, sink: SmtpSink
) -> None:
    env = {**sink.environ(), "POLICYFEED_SECRET": "the real key of the list"}
    assert run(db_with_issue, "1", "--to", EDITOR, env=env).exit_code == 0
    message = email.message_from_bytes(sink.messages[0].data, policy=email.policy.default)
    url = str(message["List-Unsubscribe"]).split(",")[0].strip(" <>")
    token = parse_qs(urlsplit(url).query)["t"][0]
    assert token.startswith("0.")
    assert read_token("the real key of the list", token, "digest.policy.example.org") is None


def test_each_test_copy_gets_a_new_message_id(db_with_issue: Path, sink: SmtpSink) -> None:
    for _ in range(2):
        assert run(db_with_issue, "1", "--to", EDITOR, env=sink.environ()).exit_code == 0
    ids = {email.message_from_bytes(m.data)["Message-ID"] for m in sink.messages}
    assert len(ids) == 2


def test_without_a_relay_the_copy_goes_to_the_outbox(db_with_issue: Path, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    result = run(db_with_issue, "1", "--to", EDITOR, env={"POLICYFEED_OUTBOX_DIR": str(outbox)})
    assert result.exit_code == 0, result.output
    files = list((outbox / "new").iterdir())
    assert len(files) == 1
    assert email.message_from_bytes(files[0].read_bytes())["To"] == EDITOR
    assert ledger_rows(db_with_issue) == 0


def test_a_relay_that_is_down_exits_75(db_with_issue: Path) -> None:
    with SmtpSink(down_after=0, down_mode="421") as relay:
        env = {**relay.environ(), "POLICYFEED_SMTP_RETRIES": "0"}
        result = run(db_with_issue, "1", "--to", EDITOR, env=env)
    assert result.exit_code == 75
    assert "try again later" in result.output
    assert "421" in result.output
    assert relay.messages == []


def test_a_refused_address_exits_1_with_the_relays_answer(db_with_issue: Path) -> None:
    answer = "550 5.1.1 <editor@example.org>: Recipient address rejected"
    with SmtpSink(refuse={EDITOR: answer}) as relay:
        result = run(db_with_issue, "1", "--to", EDITOR, env=relay.environ())
    assert result.exit_code == 1
    assert answer in result.output


def test_a_malformed_address_is_a_usage_error(db_with_issue: Path, sink: SmtpSink) -> None:
    result = run(db_with_issue, "1", "--to", "not-an-address", env=sink.environ())
    assert result.exit_code == 2
    assert "--to" in result.output
    assert sink.messages == []


def test_an_unknown_issue_is_an_error(db_with_issue: Path, sink: SmtpSink) -> None:
    result = run(db_with_issue, "7", "--to", EDITOR, env=sink.environ())
    assert result.exit_code == 1
    assert result.output == "Error: no issue number 7\n"
    assert sink.messages == []


def test_a_chapters_variant_can_be_tried(db_with_issue: Path, sink: SmtpSink) -> None:
    result = run(db_with_issue, "1", "--to", EDITOR, "--chapter", "geneva", env=sink.environ())
    assert result.exit_code == 0, result.output
    message = email.message_from_bytes(sink.messages[0].data, policy=email.policy.default)
    text = message.get_body(("plain",))
    assert text is not None
    assert "From Geneva." in text.get_content()


def test_a_chapter_that_gets_nothing_from_the_issue_is_an_error(
    db_with_issue: Path, sink: SmtpSink
) -> None:
    result = run(db_with_issue, "1", "--to", EDITOR, "--chapter", "dns", env=sink.environ())
    assert result.exit_code == 1
    assert "chapter 'dns' gets nothing from issue 1" in result.output
    assert sink.messages == []


def test_several_addresses_each_get_a_copy_over_one_connection(
    db_with_issue: Path, sink: SmtpSink
) -> None:
    others = ["comms@example.org", "board@example.org"]
    args = ["1", "--to", EDITOR, "--to", others[0], "--to", others[1], "--to", EDITOR.upper()]

    result = run(db_with_issue, *args, env=sink.environ())

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Sent a test copy of issue 1 to {address} via smtp 127.0.0.1:{sink.port}"
        for address in (EDITOR, *others)
    ]
    assert sink.recipients() == {EDITOR: 1, others[0]: 1, others[1]: 1}
    assert sink.connections == 1
    ids = {email.message_from_bytes(m.data)["Message-ID"] for m in sink.messages}
    assert len(ids) == 3
    for message in sink.messages:
        parsed = email.message_from_bytes(message.data, policy=email.policy.default)
        assert (parsed["To"],) == message.rcpt_tos
    assert ledger_rows(db_with_issue) == 0


def test_a_refused_address_does_not_stop_the_others_and_exits_1(db_with_issue: Path) -> None:
    answer = "550 5.1.1 <gone@example.org>: Recipient address rejected"
    with SmtpSink(refuse={"gone@example.org": answer}) as relay:
        result = run(
            db_with_issue, "1", "--to", "gone@example.org", "--to", EDITOR, env=relay.environ()
        )
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: the relay refused the test copy for gone@example.org: {answer}",
        f"Sent a test copy of issue 1 to {EDITOR} via smtp 127.0.0.1:{relay.port}",
    ]
    assert relay.recipients() == {EDITOR: 1}


def test_a_relay_that_goes_down_leaves_the_rest_untried_and_exits_75(
    db_with_issue: Path,
) -> None:
    with SmtpSink(down_after=1, down_mode="421") as relay:
        env = {**relay.environ(), "POLICYFEED_SMTP_RETRIES": "0"}
        result = run(
            db_with_issue, "1", "--to", EDITOR, "--to", "b@example.org", "--to",
            "c@example.org", env=env,
        )  # fmt: skip
    assert result.exit_code == 75
    lines = result.output.splitlines()
    assert lines[0] == f"Sent a test copy of issue 1 to {EDITOR} via smtp 127.0.0.1:{relay.port}"
    assert lines[1].startswith("Error: test copy of issue 1 for b@example.org not sent, try again")
    assert "421" in lines[1]
    assert lines[2].startswith("Error: test copy of issue 1 for c@example.org not sent")
    assert relay.recipients() == {EDITOR: 1}


def test_one_malformed_address_among_several_sends_nothing(
    db_with_issue: Path, sink: SmtpSink
) -> None:
    result = run(db_with_issue, "1", "--to", EDITOR, "--to", "not-an-address", env=sink.environ())
    assert result.exit_code == 2
    assert "'not-an-address'" in result.output
    assert sink.messages == []


def test_a_relay_that_cannot_be_used_as_configured_exits_1_and_tries_no_other_address(
    db_with_issue: Path, sink: SmtpSink
) -> None:
    env = {**sink.environ(), "POLICYFEED_SMTP_SECURITY": "starttls"}  # the sink offers none
    result = run(db_with_issue, "1", "--to", EDITOR, "--to", "comms@example.org", env=env)
    assert result.exit_code == 1, result.output
    assert "does not offer STARTTLS" in result.output
    assert "try again later" not in result.output
    assert sink.messages == []
