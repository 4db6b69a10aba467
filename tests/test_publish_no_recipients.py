"""Publishing with nobody to receive the issue makes no issue: the posts keep waiting for the
members who join later (it used to say ``sent: issue 1 …: 5 posts, 0 recipients``, exit 0, and
those posts never reached anyone)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policyfeed.cli import App, cli

ROOT = Path(__file__).resolve().parent.parent
MEMBERS = (
    "ana.silva@example.org",
    "zoe.muller@example.org",
    "chen.wei@example.org",
    "sam.taylor@example.org",
    "policy-watch@example.org",
)
ENV = {"POLICYFEED_SECRET": "a-test-secret-of-enough-length-000"}


@pytest.fixture
def site(
    tmp_path: Path, demo_db_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The demo site with every member unsubscribed."""
    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    monkeypatch.setattr(App, "now", lambda self: now)
    for email in MEMBERS:
        assert run("subscribers", "unsubscribe", email).exit_code == 0
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", "policyfeed.toml", *args], env=ENV)


def test_no_active_subscriber_means_no_issue_and_a_warning(site: Path) -> None:
    result = run("publish")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "no_recipients: no issue, period 2012-07-30T08:00: 5 posts waiting, but no active "
        "subscriber would receive an issue; none made, nothing sent\n"
    )
    assert "Warning: no active subscriber would receive the issue" in result.stderr
    assert run("issue", "list").stdout == "No issues yet.\n"
    assert not (site / "outbox" / "new").exists() or not any((site / "outbox" / "new").iterdir())


def test_the_posts_wait_for_the_members_who_join_later(site: Path) -> None:
    assert run("publish").exit_code == 0
    assert run("subscribers", "add", "new.member@example.org").exit_code == 0
    result = run("publish")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "sent: issue 1, period 2012-07-30T08:00: 5 posts, 1 recipient: 1 sent, 0 failed, "
    )


def test_json_says_no_recipients_with_the_warning(site: Path) -> None:
    result = run("publish", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["status"], report["issue"], report["posts"], report["recipients"]) == (
        "no_recipients",
        None,
        5,
        0,
    )
    assert report["warnings"] == [
        "no active subscriber would receive the issue: 5 posts keep waiting for the next run"
    ]
    assert "Warning: no active subscriber" in result.stderr


def test_a_dry_run_warns_that_nobody_would_receive_it(site: Path) -> None:
    result = run("publish", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "no_recipients"
    assert "Warning: no active subscriber would receive the issue" in result.stderr


def test_one_waiting_post_is_counted_in_the_singular(site: Path) -> None:
    listed = run("posts", "list", "--json")
    assert listed.exit_code == 0, listed.output
    slugs = [post["slug"] for post in json.loads(listed.stdout)]
    for slug in slugs[1:]:
        assert run("posts", "unpublish", slug).exit_code == 0
    report = json.loads(run("publish", "--json").stdout)
    assert report["warnings"] == [
        "no active subscriber would receive the issue: 1 post keeps waiting for the next run"
    ]
