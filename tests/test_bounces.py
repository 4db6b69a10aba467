"""Bounces and complaints, from returned mail in a Maildir or mbox to the member's status.

Each returned message is a fixture in the shape a real server sends (tests/fixtures/bounces/),
filled in with a delivery of a real published issue.
"""

from __future__ import annotations

import json
import mailbox
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from bounce_support import (
    SECRET,
    Sent,
    maildir_files,
    maildir_with,
    publish_week,
    returned,
    sent_messages,
    subscriber_status,
    with_secret,
)
from policyfeed.audience.bounce_processing import process_mailbox
from policyfeed.audience.bounces import reactivate
from policyfeed.audience.mailboxes import open_mailbox
from policyfeed.audience.tokens import read_return_token
from policyfeed.cli import cli
from policyfeed.config import Settings
from policyfeed.errors import ConflictError

ANA, ZOE, CHEN, SAM, WATCH = (
    "ana.silva@example.org",
    "zoe.muller@example.org",
    "chen.wei@example.org",
    "sam.taylor@example.org",
    "policy-watch@example.org",
)


@pytest.fixture
def live(settings: Settings) -> Settings:
    return with_secret(settings)


@pytest.fixture
def sent(demo_db: sqlite_utils.Database, live: Settings, now: datetime) -> dict[str, Sent]:
    publish_week(demo_db, live, now)
    return sent_messages(live)


def run(db: sqlite_utils.Database, settings: Settings, folder: Path, now: datetime, **kw: object):
    return process_mailbox(
        db, settings, open_mailbox(str(folder), settings), secret=SECRET, now=now, **kw
    )  # type: ignore[arg-type]


def bounce_rows(db: sqlite_utils.Database) -> list[tuple[str, str, str, str]]:
    return [
        tuple(r)
        for r in db.execute(
            "SELECT s.email, b.kind, b.status, b.source FROM bounces b "
            "JOIN subscribers s ON s.id = b.subscriber_id ORDER BY b.id"
        ).fetchall()
    ]


# --- the return path ----------------------------------------------------------------------------


def test_each_message_has_its_own_signed_return_path_naming_its_delivery(
    demo_db: sqlite_utils.Database, sent: dict[str, Sent]
) -> None:
    deliveries = {
        email: (int(did), int(sid))
        for email, did, sid in demo_db.execute(
            "SELECT s.email, d.id, d.subscriber_id FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id"
        ).fetchall()
    }
    assert set(sent) == {ANA, ZOE, CHEN, SAM, WATCH}
    for address, message in sent.items():
        assert message.raw.startswith(b"Return-Path: <policy-digest+")
        local, _, domain = message.return_path.partition("@")
        assert domain == "example.org"
        token = local.split("+", 1)[1]
        assert read_return_token(SECRET, token, "digest.policy.example.org") == deliveries[address]
        # mail systems may change the case of a local part; the token survives it
        assert read_return_token(SECRET, token.upper(), "digest.policy.example.org")
        assert read_return_token("another secret", token, "digest.policy.example.org") is None
    assert len({m.return_path for m in sent.values()}) == 5


def test_a_bounce_address_of_its_own_is_used_and_verp_can_be_turned_off(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    custom = with_secret(settings, bounce_address="bounces@lists.example.org")
    publish_week(demo_db, custom, now)
    paths = {m.return_path for m in sent_messages(custom).values()}
    assert all(p.startswith("bounces+") and p.endswith("@lists.example.org") for p in paths)
    plain = with_secret(settings, bounce_address="bounces@lists.example.org", verp=False)
    publish_week(demo_db, plain, now, week=1)
    assert {m.return_path for m in sent_messages(plain).values()} == {"bounces@lists.example.org"}


# --- each shape of returned mail ---------------------------------------------------------------

SHAPES = [
    # fixture, whose delivery, outcome, recorded status, member's status afterwards
    ("postfix-user-unknown.eml", ANA, "hard", "5.1.1", "bounced"),
    ("postfix-delayed.eml", ANA, "ignored", "", "active"),
    ("exim-over-quota.eml", ZOE, "soft", "5.2.2", "active"),
    ("office365-not-found.eml", CHEN, "hard", "5.1.10", "bounced"),
    ("gmail-no-such-user.eml", SAM, "hard", "5.1.1", "bounced"),
    ("gmail-over-quota.eml", SAM, "soft", "4.2.2", "active"),
    ("yahoo-failure-notice.eml", WATCH, "hard", "554", "bounced"),
    ("vacation-autoreply.eml", CHEN, "ignored", "", "active"),
    ("exchange-automatic-reply.eml", SAM, "ignored", "", "active"),
    ("arf-abuse.eml", ZOE, "complaint", "", "unsubscribed"),
    ("arf-not-spam.eml", ZOE, "ignored", "", "active"),
    ("lost-return-path.eml", ANA, "hard", "5.1.1", "bounced"),
    ("message-id-only.eml", ANA, "unmatched", "", "active"),
    ("forged-token.eml", ANA, "unmatched", "", "active"),
    ("human-reply.eml", CHEN, "unmatched", "", "active"),
    ("mailto-unsubscribe.eml", CHEN, "unsubscribe", "", "unsubscribed"),
]


@pytest.mark.parametrize(("name", "member", "outcome", "status", "after"), SHAPES)
def test_each_shape_of_returned_mail_is_read_as_its_server_meant_it(
    demo_db: sqlite_utils.Database,
    live: Settings,
    sent: dict[str, Sent],
    now: datetime,
    tmp_path: Path,
    name: str,
    member: str,
    outcome: str,
    status: str,
    after: str,
) -> None:
    folder = maildir_with(tmp_path / "Maildir", returned(name, sent[member]))
    result = run(demo_db, live, folder, now)
    assert result.messages == 1
    (event,) = result.events
    assert event.outcome == outcome, event
    assert event.status == status
    assert subscriber_status(demo_db, member) == after
    others = {ANA, ZOE, CHEN, SAM, WATCH} - {member}
    assert {subscriber_status(demo_db, m) for m in others} == {"active"}
    if outcome in ("hard", "soft", "complaint"):
        assert event.email == member and event.issue == 1
    if outcome == "unsubscribe":
        assert (event.email, event.unsubscribed) == (member, True)
    expected_folder = "Unmatched" if outcome == "unmatched" else "Processed"
    assert maildir_files(folder) == {expected_folder: [returned(name, sent[member])]}


def test_a_complaint_is_recorded_and_the_member_is_never_mailed_again(
    demo_db: sqlite_utils.Database, live: Settings, sent: dict[str, Sent], now: datetime,
    tmp_path: Path,
) -> None:  # fmt: skip
    folder = maildir_with(tmp_path / "Maildir", returned("arf-abuse.eml", sent[WATCH]))
    assert run(demo_db, live, folder, now).unsubscribed == 1
    rows = demo_db.execute(
        "SELECT feedback_type, reporter, source, delivery_id IS NOT NULL FROM complaints"
    ).fetchall()
    assert rows == [("abuse", "Yahoo!-Mail-Feedback/2.0", "mailbox", 1)]
    assert subscriber_status(demo_db, WATCH) == "unsubscribed"
    publish_week(demo_db, live, now, week=1)
    assert WATCH not in sent_messages(live)
    with pytest.raises(ConflictError, match="reported the digest as spam"):
        reactivate(demo_db, WATCH, now=now)


# --- hard and soft ---------------------------------------------------------------------------


def test_a_hard_bounce_suspends_the_member_and_the_next_issue_is_not_mailed_to_them(
    demo_db: sqlite_utils.Database, live: Settings, sent: dict[str, Sent], now: datetime,
    tmp_path: Path,
) -> None:  # fmt: skip
    folder = maildir_with(tmp_path / "Maildir", returned("yahoo-failure-notice.eml", sent[WATCH]))
    result = run(demo_db, live, folder, now)
    assert (result.counts["hard"], result.suspended) == (1, 1)
    assert bounce_rows(demo_db) == [(WATCH, "hard", "554", "mailbox")]
    from policyfeed.audience.subscribers import export_subscriber

    (exported,) = export_subscriber(demo_db, WATCH)["bounces"]
    assert (exported["kind"], exported["status"], exported["issue"]) == ("hard", "554", 1)
    publish_week(demo_db, live, now, week=1)
    assert WATCH not in sent_messages(live)
    assert subscriber_status(demo_db, WATCH) == "bounced"


def test_soft_bounces_suspend_only_when_the_latest_messages_bounced_in_a_row(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    live = with_secret(settings, bounces_soft_limit=2)
    weeks: list[Sent] = []
    for week in range(4):
        publish_week(demo_db, live, now, week)
        weeks.append(sent_messages(live)[WATCH])

    def soft(week: int) -> None:
        folder = maildir_with(
            tmp_path / f"box-{week}", returned("exim-over-quota.eml", weeks[week])
        )
        run(demo_db, live, folder, now)

    soft(0)  # issue 1 bounced, but issues 2, 3 and 4 went through since
    soft(2)  # issue 3: one soft bounce, then issue 4 did not bounce
    assert subscriber_status(demo_db, WATCH) == "active"
    soft(3)  # issues 3 and 4 in a row: the limit
    assert subscriber_status(demo_db, WATCH) == "bounced"
    assert [k for _, k, _, _ in bounce_rows(demo_db)] == ["soft", "soft", "soft"]


def test_reactivation_brings_a_bounced_member_back_and_their_old_bounces_stop_counting(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    live = with_secret(settings, bounces_soft_limit=2)
    first = (publish_week(demo_db, live, now), sent_messages(live)[WATCH])[1]
    second = (publish_week(demo_db, live, now, 1), sent_messages(live)[WATCH])[1]
    for n, message in enumerate((first, second)):
        run(
            demo_db,
            live,
            maildir_with(tmp_path / f"b{n}", returned("gmail-over-quota.eml", message)),
            now,
        )
    assert subscriber_status(demo_db, WATCH) == "bounced"
    done = reactivate(demo_db, WATCH, now=now)
    assert (done.changed, done.cleared) == (True, 2)
    assert subscriber_status(demo_db, WATCH) == "active"
    third = (publish_week(demo_db, live, now, 2), sent_messages(live)[WATCH])[1]
    run(demo_db, live, maildir_with(tmp_path / "b3", returned("gmail-over-quota.eml", third)), now)
    assert subscriber_status(demo_db, WATCH) == "active"  # one in a row since reactivation
    assert not reactivate(demo_db, WATCH, now=now).changed


# --- nothing twice, nothing lost ----------------------------------------------------------------

ALL = [name for name, *_ in SHAPES]


def test_a_second_run_processes_nothing_twice_even_when_the_first_stopped_before_moving(
    demo_db: sqlite_utils.Database, live: Settings, sent: dict[str, Sent], now: datetime,
    tmp_path: Path,
) -> None:  # fmt: skip
    messages = [returned(name, sent[member]) for name, member, *_ in SHAPES]
    folder = maildir_with(tmp_path / "Maildir", *messages)
    first = run(demo_db, live, folder, now)
    assert first.messages == len(SHAPES) and first.counts["already"] == 0
    recorded = bounce_rows(demo_db)
    stored = maildir_files(folder)
    assert "" not in stored  # the inbox is empty: every message moved aside
    assert sorted(stored["Processed"] + stored["Unmatched"]) == sorted(messages)
    assert run(demo_db, live, folder, now).messages == 0
    # A run killed after recording and before moving leaves the messages in the inbox.
    maildir_with(folder, *messages)
    again = run(demo_db, live, folder, now)
    assert (
        again.counts["already"]
        == first.counts["hard"] + first.counts["soft"] + first.counts["complaint"]
    )
    assert bounce_rows(demo_db) == recorded
    assert again.counts["unsubscribe"] == 1  # asked again: they stay unsubscribed
    assert again.suspended == again.unsubscribed == 0


def test_an_mbox_is_read_the_same_way_and_its_messages_move_to_files_beside_it(
    demo_db: sqlite_utils.Database, live: Settings, sent: dict[str, Sent], now: datetime,
    tmp_path: Path,
) -> None:  # fmt: skip
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(str(path))
    hard = returned("postfix-user-unknown.eml", sent[ANA])
    stray = returned("human-reply.eml", sent[CHEN])
    box.add(hard)
    box.add(stray)
    box.flush()
    box.close()
    result = run(demo_db, live, path, now)
    assert (result.counts["hard"], result.counts["unmatched"]) == (1, 1)
    assert subscriber_status(demo_db, ANA) == "bounced"
    assert len(mailbox.mbox(str(path))) == 0
    processed = [m.as_bytes() for m in mailbox.mbox(f"{path}.Processed")]
    unmatched = [m.as_bytes() for m in mailbox.mbox(f"{path}.Unmatched")]
    assert len(processed) == len(unmatched) == 1
    assert b"User unknown in virtual" in processed[0] and b"WCIT session" in unmatched[0]
    assert run(demo_db, live, path, now).messages == 0


def test_a_dry_run_records_nothing_and_moves_nothing(
    demo_db: sqlite_utils.Database, live: Settings, sent: dict[str, Sent], now: datetime,
    tmp_path: Path,
) -> None:  # fmt: skip
    from policyfeed.store.readonly import read_only

    folder = maildir_with(tmp_path / "Maildir", returned("gmail-no-such-user.eml", sent[SAM]))
    before = maildir_files(folder)
    with read_only(demo_db):
        result = run(demo_db, live, folder, now, dry_run=True)
    assert (result.status, result.counts["hard"], result.suspended) == ("dry_run", 1, 1)
    assert maildir_files(folder) == before
    assert bounce_rows(demo_db) == []
    assert subscriber_status(demo_db, SAM) == "active"


# --- the command --------------------------------------------------------------------------------


def cli_run(db_path: Path, *args: str, env: dict[str, str] | None = None):
    environ = {"POLICYFEED_SECRET": SECRET, **(env or {})}
    return CliRunner().invoke(cli, ["--db", str(db_path), *args], env=environ)


def test_the_command_reports_each_bounce_and_a_summary_and_json_for_scripts(
    demo_db_path: Path, demo_db: sqlite_utils.Database, live: Settings, sent: dict[str, Sent],
    now: datetime, tmp_path: Path,
) -> None:  # fmt: skip
    folder = maildir_with(
        tmp_path / "Maildir",
        returned("office365-not-found.eml", sent[CHEN]),
        returned("vacation-autoreply.eml", sent[SAM]),
    )
    config = tmp_path / "policyfeed.toml"
    shutil.copyfile(Path(__file__).resolve().parent.parent / "policyfeed.toml", config)
    dry = cli_run(
        demo_db_path, "--config", str(config), "bounces", "process", str(folder), "--dry-run"
    )
    assert dry.exit_code == 0, dry.output
    assert "nothing recorded, nothing moved" in dry.output
    result = cli_run(demo_db_path, "--config", str(config), "bounces", "process", str(folder))
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip("\n").splitlines()
    assert lines[0].startswith(f"  hard      {CHEN} (issue 1): the address does not work: smtp;550")
    assert lines[0].endswith("-> bounced")
    assert lines[-1].startswith(
        f"done: 2 message(s) from Maildir {folder}: 1 hard bounce(s), 0 soft"
    )
    assert (
        "1 ignored, 0 unmatched; 1 member(s) were suspended (bounced), 0 unsubscribed" in lines[-1]
    )
    again = cli_run(
        demo_db_path, "--config", str(config), "bounces", "process", str(folder), "--json"
    )
    assert again.exit_code == 0
    report = json.loads(again.output)
    assert (report["status"], report["messages"], report["hard"]) == ("done", 0, 0)
    listed = cli_run(demo_db_path, "bounces", "list", "--json")
    assert [
        (r["email"], r["kind"], r["status"], r["issue"]) for r in json.loads(listed.output)
    ] == [(CHEN, "hard", "5.1.10", 1)]
    back = cli_run(demo_db_path, "subscribers", "reactivate", CHEN)
    assert back.exit_code == 0 and back.output == (
        f"Reactivated {CHEN}: they get the next issue (1 bounce(s) cleared)\n"
    )
    table = cli_run(demo_db_path, "bounces", "list")
    assert "hard*" in table.output and "cleared: the member was reactivated" in table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bounces", "process", "no-such-folder"], "no-such-folder: no such mailbox"),
        (["bounces", "process"], "no mailbox: give one"),
        (["subscribers", "reactivate", "nobody@example.org"], "no subscriber 'nobody@example.org'"),
    ],
)
def test_mistakes_get_one_line_errors_and_exit_1(
    demo_db_path: Path, args: list[str], message: str
) -> None:
    result = cli_run(demo_db_path, *args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {message}"] or result.output.startswith(
        f"Error: {message}"
    )


def test_a_folder_that_is_not_a_maildir_and_an_empty_mbox(
    tmp_path: Path, demo_db_path: Path
) -> None:
    (tmp_path / "photos").mkdir()
    result = cli_run(demo_db_path, "bounces", "process", str(tmp_path / "photos"))
    assert result.exit_code == 1
    assert "a folder, but not a Maildir (it has no cur/ and new/)" in result.output
    (tmp_path / "empty.mbox").write_bytes(b"")
    empty = cli_run(demo_db_path, "bounces", "process", str(tmp_path / "empty.mbox"))
    assert empty.exit_code == 0, empty.output
    assert "nothing to do" in empty.output


def test_the_outbox_is_not_taken_for_a_bounce_mailbox(
    demo_db_path: Path, live: Settings, sent: dict[str, Sent], tmp_path: Path
) -> None:
    before = sorted(p.name for p in (tmp_path / "outbox" / "new").iterdir())
    config = tmp_path / "policyfeed.toml"
    config.write_text(
        (Path(__file__).resolve().parent.parent / "policyfeed.toml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    result = cli_run(demo_db_path, "--config", str(config), "bounces", "process", "outbox")
    assert result.exit_code == 1
    assert "outbox is policyfeed's outbox (the mail going out), not a bounce mailbox" in (
        result.output
    )
    assert sorted(p.name for p in (tmp_path / "outbox" / "new").iterdir()) == before


def test_reactivate_refuses_someone_who_unsubscribed(demo_db_path: Path) -> None:
    cli_run(demo_db_path, "subscribers", "unsubscribe", ANA)
    result = cli_run(demo_db_path, "subscribers", "reactivate", ANA)
    assert result.exit_code == 1
    assert "is unsubscribed (they asked to leave), not bounced" in result.output
    assert "--resubscribe" in result.output
