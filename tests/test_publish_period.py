"""``--period``: only the schedule's own periods (in their obvious spellings), never a future one,
and the same lateness as a scheduled run. Anything else is a usage error (exit 2) that says how a
period is written, and nothing is made, written or mailed."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policyfeed.cli import App, cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(
    tmp_path: Path, demo_db_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The demo site (Mondays 08:00, Zurich) at Monday 30 July 2012, 14:00 Zurich time."""
    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    monkeypatch.setattr(App, "now", lambda self: now)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", "posts.db", "--config", "policyfeed.toml", *args])


def issues() -> list[dict[str, object]]:
    listed = run("issue", "list", "--json")
    assert listed.exit_code == 0, listed.output
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return found


def nothing_happened(site: Path) -> bool:
    return not (site / "outbox").exists() and not (site / "public").exists() and issues() == []


@pytest.mark.parametrize(
    "period", ["yesterday", "next week", "last monday", "now", "30/07/2012", "2012-W31"]
)
def test_a_word_that_is_no_period_is_a_usage_error_and_nothing_is_mailed(
    site: Path, period: str
) -> None:
    result = run("publish", "--period", period)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: --period: {period!r} is not a period")
    assert "YYYY-MM-DDTHH:MM" in line and "2012-07-30T08:00" in line
    assert nothing_happened(site)


def test_with_json_a_usage_error_is_still_one_object_and_exit_2(site: Path) -> None:
    result = run("publish", "--period", "yesterday", "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert (report["status"], report["exit_code"]) == ("error", 2)
    assert "YYYY-MM-DDTHH:MM" in report["error"]


@pytest.mark.parametrize(
    "period",
    [
        "2012-07-30T08:00",
        "2012-07-30T08:00:00",
        "2012-07-30 08:00",
        "2012-07-30 08:00:00",
        "2012-07-30T08:00:00+02:00",
        "2012-07-30T06:00Z",
        "2012-07-30",  # the schedule's one time that day
    ],
)
def test_the_obvious_spellings_of_a_scheduled_period_are_read_as_its_key(
    site: Path, period: str
) -> None:
    result = run("publish", "--period", period, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["status"], report["period"], report["sent"]) == ("sent", "2012-07-30T08:00", 5)


def test_a_time_that_is_not_on_the_schedule_is_refused_naming_the_nearest(site: Path) -> None:
    result = run("publish", "--period", "2012-07-29T18:00")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --period: 2012-07-29T18:00 is not a time of the schedule ('0 8 * * MON' in "
        "Europe/Zurich); the nearest are 2012-07-23T08:00 and 2012-07-30T08:00\n"
    )
    assert nothing_happened(site)


def test_a_date_without_a_scheduled_time_is_refused_naming_the_nearest(site: Path) -> None:
    result = run("publish", "--period", "2012-07-29")
    assert result.exit_code == 2
    assert "nothing is scheduled on 2012-07-29" in result.stderr
    assert "2012-07-23T08:00 and 2012-07-30T08:00" in result.stderr


def test_seconds_other_than_zero_are_refused(site: Path) -> None:
    result = run("publish", "--period", "2012-07-30T08:00:30")
    assert result.exit_code == 2
    assert "whole minutes" in result.stderr


def test_a_future_period_is_refused_and_nothing_is_mailed(site: Path) -> None:
    result = run("publish", "--period", "2012-08-06T08:00")
    assert result.exit_code == 2
    assert "period 2012-08-06T08:00 has not begun yet (in 6 days)" in result.stderr
    assert nothing_happened(site)
    forced = run("publish", "--period", "2012-08-06T08:00", "--force")
    assert forced.exit_code == 2  # --force is about lateness, never about the future
    assert nothing_happened(site)


def test_an_explicit_old_period_is_refused_as_late_as_a_scheduled_run_would_be(
    site: Path,
) -> None:
    result = run("publish", "--period", "2012-07-23 08:00:00")
    assert result.exit_code == 1
    assert "period 2012-07-23T08:00 was scheduled 7 days ago" in result.stderr
    assert nothing_happened(site)


def test_the_current_period_given_explicitly_is_never_late(
    site: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The machine was off all week: the scheduled run on Sunday still mails Monday's issue,
    # and so does the same run with that period written out.
    monkeypatch.setattr(App, "now", lambda self: now + timedelta(days=6))
    result = run("publish", "--period", "2012-07-30T08:00", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "sent"


def test_help_says_how_a_period_is_written() -> None:
    result = CliRunner().invoke(cli, ["publish", "--help"])
    assert "YYYY-MM-DDTHH:MM" in result.output
    assert "usage error (exit 2)" in " ".join(result.output.split())


# --- special issues ---------------------------------------------------------------------------


def test_a_special_issue_is_mailed_only_when_named(site: Path) -> None:
    made = run("issue", "new", "--period", "wcit-special")
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("Created issue 1 (period wcit-special) with 5 posts:")
    assert made.stdout.splitlines()[-1] == (
        "A special issue: the scheduled run never mails it; "
        "`policyfeed publish --period wcit-special` does."
    )
    scheduled = run("publish", "--json")
    assert json.loads(scheduled.stdout)["status"] == "nothing_new"  # its posts are taken
    assert not (site / "outbox").exists()
    named = run("publish", "--period", "wcit-special", "--json")
    assert named.exit_code == 0, named.output
    report = json.loads(named.stdout)
    assert (report["status"], report["period"], report["sent"]) == ("sent", "wcit-special", 5)


def test_a_special_issue_made_long_ago_is_late_like_any_other(
    site: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(App, "now", lambda self: now - timedelta(days=3))
    assert run("issue", "new", "--period", "wcit-special").exit_code == 0
    monkeypatch.setattr(App, "now", lambda self: now)
    result = run("publish", "--period", "wcit-special")
    assert result.exit_code == 1
    assert "issue 1 (period wcit-special) began going out 3 days ago" in result.stderr
    assert not (site / "outbox").exists()


def test_a_name_that_no_issue_has_is_refused(site: Path) -> None:
    result = run("publish", "--period", "wcit-special")
    assert result.exit_code == 2
    assert "'wcit-special' is not a period, nor the name of a special issue" in result.stderr


@pytest.mark.parametrize(
    "name", ["yesterday", "next week", "next-week", "Today", "monday", "2012", "30/07/2012"]
)
def test_issue_new_refuses_a_relative_day_or_a_shapeless_name(site: Path, name: str) -> None:
    result = run("issue", "new", "--period", name)
    assert result.exit_code == 2, result.output
    assert "is neither a period nor a special issue's name" in result.stderr
    assert issues() == []


def test_issue_new_reads_a_time_like_publish_and_may_be_made_ahead(site: Path) -> None:
    off = run("issue", "new", "--period", "2012-07-31T08:00")
    assert off.exit_code == 2 and "not a time of the schedule" in off.stderr
    ahead = run("issue", "new", "--period", "2012-08-06 08:00:00")
    assert ahead.exit_code == 0, ahead.output
    assert ahead.stdout.startswith("Created issue 1 (period 2012-08-06T08:00)")
    early = run("publish", "--period", "2012-08-06T08:00")
    assert early.exit_code == 2 and "has not begun yet" in early.stderr
    assert not (site / "outbox").exists()
