"""``policyfeed publish`` on the command line: output, JSON, exit codes, the lock."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policyfeed.cli import App, cli
from policyfeed.lock import exclusive_lock, lock_path_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(
    tmp_path: Path, demo_db_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The demo site in the test's folder, at the `now` of the tests (Monday 30 July, noon)."""
    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    monkeypatch.setattr(App, "now", lambda self: now)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", "posts.db", "--config", "policyfeed.toml", *args])


def files_in(site: Path) -> dict[str, bytes]:
    """Every file but the database and SQLite's side files (their bytes are SQLite's business)."""
    return {
        str(p): p.read_bytes()
        for p in site.rglob("*")
        if p.is_file() and not p.name.startswith("posts.db")
    }


def outbox(site: Path) -> list[str]:
    return sorted(p.name for p in (site / "outbox" / "new").glob("*"))


def test_publish_prints_a_one_line_summary_and_exits_0(site: Path) -> None:
    result = run("publish")
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith(
        "sent: issue 1, period 2012-07-30T08:00: 5 posts, 5 recipients: 5 sent, 0 failed, "
        "0 skipped in "
    )
    assert line.endswith(" s; site in public/, messages to outbox/")
    assert len(outbox(site)) == 5
    assert (site / "public" / "index.html").exists()


def test_nothing_new_exits_0_and_writes_nothing(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("publish")
    files = files_in(site)
    monkeypatch.setattr(App, "now", lambda self: datetime(2012, 8, 6, 9, 0, tzinfo=UTC))
    result = run("publish")
    assert result.exit_code == 0
    assert result.stdout == (
        "nothing_new: no issue, period 2012-08-06T08:00: no post is waiting; "
        "nothing written, nothing sent\n"
    )
    assert files_in(site) == files


def test_a_missing_database_is_an_error_and_none_is_created(site: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--db", "typo.db", "--config", "policyfeed.toml", "publish", "--json"]
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "error"
    assert "typo.db: no such database" in result.stderr
    assert not (site / "typo.db").exists() and not (site / "typo.db.lock").exists()


def test_json_is_exactly_one_object_on_stdout_and_logs_go_to_stderr(site: Path) -> None:
    result = run("publish", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {k: report[k] for k in ("status", "issue", "period", "posts", "recipients", "sent")} == {
        "status": "sent",
        "issue": 1,
        "period": "2012-07-30T08:00",
        "posts": 5,
        "recipients": 5,
        "sent": 5,
    }
    assert (report["failed"], report["skipped"]) == (0, 0)
    assert isinstance(report["duration"], float)


def test_same_period_twice_the_second_run_sends_nothing_and_exits_0(site: Path) -> None:
    run("publish")
    files = {p: p.read_bytes() for p in (site / "outbox").rglob("*") if p.is_file()}
    result = run("publish", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "already_sent"
    assert json.loads(result.stdout)["sent"] == 0
    assert {p: p.read_bytes() for p in (site / "outbox").rglob("*") if p.is_file()} == files


def test_a_second_run_while_one_holds_the_lock_exits_75_at_once(site: Path) -> None:
    with exclusive_lock(lock_path_for(site / "posts.db")):
        result = run("publish", "--json")
    assert result.exit_code == 75
    assert json.loads(result.stdout)["status"] == "busy"
    assert "another run holds" in result.stderr
    assert not (site / "outbox").exists()


def test_a_database_busy_past_its_timeout_exits_75_not_a_traceback(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What SQLite says when another writer (an editor, an unsubscribe) holds the database for
    # longer than busy_timeout: a temporary failure, safe to run again.
    def locked(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr("policyfeed.digest.issues.create_issue", locked)
    result = run("publish", "--json")
    assert result.exit_code == 75, result.output
    report = json.loads(result.stdout)
    assert (report["status"], report["exit_code"]) == ("busy", 75)
    assert "database is locked" in result.stderr and "Traceback" not in result.stderr
    plain = run("publish")
    assert plain.exit_code == 75
    assert plain.stderr.startswith("Error: the database is busy (database is locked)")


def test_dry_run_reports_variants_and_writes_nothing(site: Path) -> None:
    db_before = (site / "posts.db").read_bytes()
    result = run("publish", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["status"], report["recipients"]) == ("dry_run", 5)
    assert [v["chapter"] for v in report["variants"]] == [None, "switzerland", "vancouver"]
    # Only SQLite's own side files may appear (a reader of a WAL database makes them).
    assert {p.name for p in site.iterdir()} - {"posts.db-wal", "posts.db-shm"} == {
        "policyfeed.toml",
        "posts.db",
    }
    assert (site / "posts.db").read_bytes() == db_before


def test_a_stale_period_is_refused_with_exit_1_and_a_way_out(site: Path) -> None:
    result = run("publish", "--period", "2012-07-16T08:00")
    assert result.exit_code == 1
    assert "Error: period 2012-07-16T08:00 was scheduled 14 days ago" in result.stderr
    assert "--force" in result.stderr
    forced = run("publish", "--period", "2012-07-16T08:00", "--force", "--json")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["status"] == "sent"


def test_max_lateness_on_the_command_line_wins_over_the_config(site: Path) -> None:
    result = run("publish", "--period", "2012-07-16T08:00", "--max-lateness", "3w")
    assert result.exit_code == 0, result.output


def test_errors_with_json_still_print_one_object(site: Path) -> None:
    result = run("publish", "--period", "2012-07-16T08:00", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "error" and "--force" in report["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-lateness", "soon"], "not a duration"),
        (["--period", "2012-13-45"], "--period: '2012-13-45': month must be in 1..12"),
    ],
)
def test_bad_options_are_refused(site: Path, args: list[str], message: str) -> None:
    result = run("publish", *args)
    assert result.exit_code in (1, 2)
    assert message in result.stderr
    assert not (site / "outbox").exists()


def test_a_usage_error_exits_2(site: Path) -> None:
    assert run("publish", "--max-lateness", "soon").exit_code == 2
    assert run("publish", "--no-such-option").exit_code == 2


def test_help_lists_the_exit_codes_and_ends_with_an_example() -> None:
    result = CliRunner().invoke(cli, ["publish", "--help"])
    assert result.exit_code == 0
    for line in ("0   done", "1   error", "2   usage error", "75  temporary"):
        assert line in result.output
    example = result.output.split("Example:", 1)[1].split()
    assert example[0] == "policyfeed" and example[1] == "publish"
