"""``policyfeed check`` on the command line, and ``publish`` refusing to send what fails it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policyfeed.check.report import Report
from policyfeed.cli import App, cli

ROOT = Path(__file__).resolve().parent.parent
PERIOD = "2012-07-30T08:00"
# What the demo is told every time: it lives on example.org and the tests set no secret.
DEMO_WARNINGS = [
    "WARN message issue-1/switzerland: the subject is 100 characters long; inboxes cut it before "
    '100, "Public Policy #1: Preparing for WCIT: as…"',
    "WARN settings POLICYFEED_SECRET: not set: the outbox's unsubscribe links use the public "
    "development key, so anyone could unsubscribe anyone",
    "WARN settings site.base_url: https://policy.example.org/ is on a domain reserved for "
    "examples (RFC 2606): its links lead nowhere",
]
LEFTOVER = (
    "ERROR message issue-1: template syntax left over: '{{ first_name }}', HTML part, "
    'p "Dear {{ first_name }}, you receive the…" (also issue-1/switzerland, issue-1/vancouver)'
)


@pytest.fixture
def site(
    tmp_path: Path, demo_db_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The demo site in the test's folder, at the tests' `now` (Monday 30 July 2012, noon)."""
    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    monkeypatch.setattr(App, "now", lambda self: now)
    return tmp_path


@pytest.fixture
def broken_template(site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An override of the digest template that greets members with a merge tag from another
    mailing tool, which nothing fills in."""
    source = (ROOT / "templates" / "email" / "digest.html").read_text(encoding="utf-8")
    broken = source.replace('_("You receive the', '_("Dear {{ first_name }}, you receive the')
    assert broken != source
    folder = site / "my-templates"
    (folder / "email").mkdir(parents=True)
    (folder / "email" / "digest.html").write_text(broken, encoding="utf-8")
    monkeypatch.setenv("POLICYFEED_TEMPLATES_DIR", str(folder))
    return folder


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", "posts.db", "--config", "policyfeed.toml", *args])


def outbox(site: Path) -> list[str]:
    return sorted(p.name for p in (site / "outbox" / "new").glob("*"))


def deliveries(site: Path) -> int:
    conn = sqlite3.connect(site / "posts.db")
    try:
        return int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])
    finally:
        conn.close()


def test_the_demo_after_its_first_issue_passes_with_no_error(site: Path) -> None:
    assert run("publish").exit_code == 0
    result = run("check")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [*DEMO_WARNINGS, "check: 0 errors, 3 warnings"]


def test_check_json_has_the_same_findings_as_objects(site: Path) -> None:
    assert run("publish").exit_code == 0
    result = run("check", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["errors"], data["warnings"]) == (0, 3)
    assert [f["line"] for f in data["findings"]] == DEMO_WARNINGS
    assert data["findings"][2] == {
        "level": "warning",
        "area": "settings",
        "file": "site.base_url",
        "what": "https://policy.example.org/ is on a domain reserved for examples (RFC 2606): "
        "its links lead nowhere",
        "where": "",
        "also": [],
        "line": DEMO_WARNINGS[2],
    }
    assert data["summary"] == "check: 0 errors, 3 warnings"


def test_the_built_demo_before_its_first_issue_passes(site: Path) -> None:
    assert run("build").exit_code == 0
    result = run("check")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [*DEMO_WARNINGS, "check: 0 errors, 3 warnings"]


def test_check_before_anything_is_built_says_so(site: Path) -> None:
    result = run("check")
    assert result.exit_code == 1
    assert "ERROR site public: no site here: `policyfeed build` writes it" in (
        result.stdout.splitlines()
    )
    assert result.stdout.splitlines()[-1] == "check: 1 error, 3 warnings"


def test_check_an_issue_that_does_not_exist(site: Path) -> None:
    result = run("check", "--issue", "9")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no issue number 9"


def test_check_a_missing_database(site: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", "typo.db", "--config", "policyfeed.toml", "check"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: typo.db: no such database")
    assert not (site / "typo.db").exists()


def test_check_with_a_broken_template_exits_1_and_names_it(
    site: Path, broken_template: Path
) -> None:
    assert run("build").exit_code == 0
    result = run("check")
    assert result.exit_code == 1
    assert LEFTOVER in result.stdout.splitlines()


# --- publish ------------------------------------------------------------------------------------


def test_publish_prints_the_checks_warnings_and_sends(site: Path) -> None:
    result = run("publish")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-3:] == DEMO_WARNINGS
    assert len(outbox(site)) == 5


def test_publish_with_a_broken_template_sends_nothing_and_says_why(
    site: Path, broken_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run("publish")
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == [
        f"refused: issue 1, period {PERIOD}: check: 1 error, 3 warnings; nothing sent"
    ]
    assert LEFTOVER in result.stderr.splitlines()
    assert outbox(site) == [] and deliveries(site) == 0

    again = run("publish", "--json")  # the scheduler's next run: refused again, as JSON
    assert again.exit_code == 1
    data = json.loads(again.stdout)
    assert (data["status"], data["issue"], data["sent"]) == ("refused", 1, 0)
    assert data["check"]["errors"] == 1
    assert data["check"]["findings"][0]["line"] == LEFTOVER

    monkeypatch.delenv("POLICYFEED_TEMPLATES_DIR")  # the editor fixes the template
    fixed = run("publish")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.stdout.startswith(f"sent: issue 1, period {PERIOD}: 5 posts, 5 recipients: 5 sent")
    assert len(outbox(site)) == 5


def test_publish_dry_run_tells_of_the_refusal_and_writes_nothing(
    site: Path, broken_template: Path
) -> None:
    before = (site / "posts.db").read_bytes()
    result = run("publish", "--dry-run")
    assert result.exit_code == 1
    assert result.stdout.startswith(
        f"refused: issue 1, period {PERIOD}: dry run, check: 1 error, 3 warnings; nothing sent"
    )
    assert LEFTOVER in result.stderr.splitlines()
    assert (site / "posts.db").read_bytes() == before
    assert not (site / "public").exists() and not (site / "outbox").exists()


def test_publish_refuses_a_site_that_fails_the_check(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site template whose pages lose their lang: the build writes them, the mail waits."""
    source = (ROOT / "templates" / "site" / "base.html").read_text(encoding="utf-8")
    folder = site / "my-templates"
    (folder / "site").mkdir(parents=True)
    (folder / "site" / "base.html").write_text(
        source.replace('<html lang="{{ site.language }}"', "<html"), encoding="utf-8"
    )
    monkeypatch.setenv("POLICYFEED_TEMPLATES_DIR", str(folder))
    result = run("publish")
    assert result.exit_code == 1
    assert "refused: issue 1" in result.stdout
    assert any(
        line.startswith("ERROR a11y index.html: no lang attribute on <html>")
        and "more files)" in line
        for line in result.stderr.splitlines()
    )
    assert outbox(site) == []


# --- the report's form ------------------------------------------------------------------------


def test_the_report_groups_by_area_then_errors_first_and_merges_the_same_finding() -> None:
    report = Report()
    report.warn("settings", "digest.mail_from_name", "no sender name")
    report.error(
        "site", "b.html", "links to x.html, which the site does not have (a 404)", "line 3"
    )
    report.error("feeds", "atom.xml", "a date after now", "entry 1")
    report.error(
        "site", "a.html", "links to x.html, which the site does not have (a 404)", "line 9"
    )
    report.warn("site", "a.html", "link to #x, which is not on the page", "line 2")
    for n in range(5):
        report.error("a11y", f"p{n}.html", "no lang")
    assert report.lines() == [
        "ERROR feeds atom.xml: a date after now, entry 1",
        "ERROR site b.html: links to x.html, which the site does not have (a 404), line 3 "
        "(also a.html)",
        "WARN site a.html: link to #x, which is not on the page, line 2",
        "ERROR a11y p0.html: no lang (and 4 more files)",
        "WARN settings digest.mail_from_name: no sender name",
        "check: 3 errors, 2 warnings",
    ]
    assert report.as_json()["errors"] == 3
