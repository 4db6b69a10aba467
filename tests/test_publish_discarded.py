"""``publish`` for a period whose issue an editor discarded reports ``discarded`` (exit 0) and
makes nothing: a special issue's name (``issue new --period NAME``) as much as a scheduled
period."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import run


@pytest.fixture
def site(cli_site: Path) -> Path:
    return cli_site


def issue_count() -> int:
    listed = run("issue", "list", "--json")
    assert listed.exit_code == 0, listed.output
    return len(json.loads(listed.stdout))


def test_publish_names_a_discarded_special_issue_discarded(site: Path) -> None:
    assert run("issue", "new", "--period", "spec2").exit_code == 0
    assert run("issue", "discard", "1").exit_code == 0

    published = run("publish", "--period", "spec2")

    assert published.exit_code == 0, published.output
    assert published.stdout.startswith("discarded: issue 1, period spec2"), published.output
    assert issue_count() == 1
    assert not (site / "outbox").exists()
    report = json.loads(run("publish", "--period", "spec2", "--json").stdout)
    assert (report["status"], report["issue"], report["period"]) == ("discarded", 1, "spec2")


def test_publish_names_a_discarded_scheduled_period_discarded(site: Path) -> None:
    assert run("issue", "new").exit_code == 0
    assert run("issue", "discard", "1").exit_code == 0

    for args in ([], ["--period", "2012-07-30T08:00"]):
        published = run("publish", *args)
        assert published.exit_code == 0, published.output
        assert published.stdout.startswith("discarded: issue 1, period 2012-07-30T08:00"), (
            published.output
        )
    assert issue_count() == 1
    assert not (site / "outbox").exists()


def test_a_name_no_issue_ever_had_is_still_a_usage_error(site: Path) -> None:
    published = run("publish", "--period", "spec3")
    assert published.exit_code == 2
    assert "'spec3' is not a period, nor the name of a special issue" in published.stderr
