"""``policyfeed issue new|list|show|preview|render`` on the demo database."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest_support import parse
from policyfeed.cli import cli
from policyfeed.config import load_settings
from policyfeed.digest.render import UNSUBSCRIBE_URL_TOKEN
from policyfeed.digest.sample import sample_unsubscribe_url

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "policyfeed.toml"

DEMO_LINES = [
    "  1. 2012-07-09  acta-and-tppa-a-coincidence-worth-exploring  "
    "ACTA and the TPPA: a coincidence worth exploring",
    "  2. 2012-07-11  wcit-preparation-ask-your-government         "
    "Preparing for WCIT: ask your government how its submission will be made",
    "  3. 2012-07-23  beijing-treaty-on-audiovisual-performances   "
    "The Beijing Treaty gives audiovisual performers international protection",
    "  4. 2012-07-25  public-policy-guests-at-ietf-84-vancouver    "
    "Five public policy guests join us at IETF 84 in Vancouver",
    "  5. 2012-07-25  itu-council-refers-internet-issues-to-wtsa   "
    "ITU Council sends OTT, domain names and ICANN questions to WTSA",
]
# The demo's sample member's link: subscriber 0 (there is none), signed with the public sample key.
SAMPLE_UNSUBSCRIBE = sample_unsubscribe_url(load_settings(DEMO_CONFIG, environ={}))
DEMO_SUBJECT = "Public Policy #1: ACTA and the TPPA: a coincidence worth exploring and 4 more"


@pytest.fixture
def run(demo_db_path: Path):
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(
            cli, ["--db", str(demo_db_path), "--config", str(DEMO_CONFIG), *args]
        )

    return invoke


def test_issue_new_creates_the_next_issue_and_lists_its_posts(run) -> None:
    result = run("issue", "new", "--period", "2012-07-30T08:00", "--note", "Welcome")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Created issue 1 (period 2012-07-30T08:00) with 5 posts:",
        *DEMO_LINES,
        f"Subject: {DEMO_SUBJECT}",
    ]
    shown = json.loads(run("issue", "show", "1", "--json").output)
    assert (shown["note"], shown["status"], len(shown["posts"])) == ("Welcome", "draft", 5)


def test_issue_new_dry_run_records_nothing(run) -> None:
    result = run("issue", "new", "--dry-run", "--period", "2012-07-30")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Would create issue 1 (period 2012-07-30T08:00) with 5 posts:",
        *DEMO_LINES,
        f"Subject: {DEMO_SUBJECT}",
        "Dry run: nothing recorded.",
    ]
    assert run("issue", "list").output == "No issues yet.\n"


def test_issue_new_with_nothing_waiting_says_so_and_exits_0(run) -> None:
    run("issue", "new", "--period", "week-1")

    result = run("issue", "new", "--period", "week-2")

    assert result.exit_code == 0
    assert result.output == "Nothing new: no published posts are waiting for an issue.\n"
    assert len(json.loads(run("issue", "list", "--json").output)) == 1


def test_issue_new_pins_and_excludes_posts(run) -> None:
    result = run(
        "issue", "new", "--period", "w", "--pin", "itu-council-refers-internet-issues-to-wtsa",
        "--exclude", "acta-and-tppa-a-coincidence-worth-exploring",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Created issue 1 (period w) with 4 posts:"
    assert lines[1].split()[:3] == [
        "1.",
        "2012-07-25",
        "itu-council-refers-internet-issues-to-wtsa",
    ]
    assert "acta-and-tppa-a-coincidence-worth-exploring" not in result.output


def test_issue_new_with_an_unknown_slug_fails_with_one_line_and_records_nothing(run) -> None:
    result = run("issue", "new", "--exclude", "no-such-post")

    assert result.exit_code == 1
    assert result.output == "Error: --exclude no-such-post: no post with that slug\n"
    assert run("issue", "list").output == "No issues yet.\n"


def test_issue_new_for_a_period_that_has_an_issue_is_refused(run) -> None:
    acta = "acta-and-tppa-a-coincidence-worth-exploring"
    run("issue", "new", "--period", "2012-07-30T08:00", "--exclude", acta)

    result = run("issue", "new", "--period", "2012-07-30T08:00")

    assert result.exit_code == 1
    assert result.output == (
        "Error: period '2012-07-30T08:00' already has issue 1 (draft); one issue per period: "
        "posts added since wait for the next period's issue (`policyfeed issue preview` shows "
        "what is waiting), or make a special issue now with `policyfeed issue new --period "
        "NAME`\n"
    )


def test_issue_new_with_a_bad_period_date_is_refused(run) -> None:
    result = run("issue", "new", "--period", "2012-02-30")

    assert result.exit_code == 2
    assert result.output.startswith("Error: --period: '2012-02-30': ")


def test_issue_list_shows_a_table(run) -> None:
    run("issue", "new", "--period", "2012-07-30T08:00")

    result = run("issue", "list")

    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "ISSUE  PERIOD            STATUS   POSTS  SUBJECT",
        f"    1  2012-07-30T08:00  draft        5  {DEMO_SUBJECT}",
    ]


def test_issue_show_prints_the_issue_and_its_posts_in_order(run) -> None:
    run("issue", "new", "--period", "2012-07-30T08:00", "--note", "Hello")

    result = run("issue", "show", "1")

    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[:4] == [
        "issue:   1",
        "period:  2012-07-30T08:00",
        "status:  draft",
        f"subject: {DEMO_SUBJECT}",
    ]
    assert lines[6:] == [
        "web:     https://policy.example.org/issues/1/",
        "mailed:  none yet",
        "note:    Hello",
        "",
        "5 posts:",
        *DEMO_LINES,
    ]


def test_issue_show_of_an_unknown_number_fails(run) -> None:
    result = run("issue", "show", "9")

    assert result.exit_code == 1
    assert result.output == "Error: no issue number 9\n"


def test_issue_preview_writes_html_and_text_prints_the_paths_and_records_nothing(
    run, tmp_path
) -> None:
    result = run("issue", "preview", "--out", str(tmp_path / "p"), "--note", "Draft note")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        str(tmp_path / "p" / "issue-1.html"),
        str(tmp_path / "p" / "issue-1.txt"),
    ]
    html = (tmp_path / "p" / "issue-1.html").read_text(encoding="utf-8")
    text = (tmp_path / "p" / "issue-1.txt").read_text(encoding="utf-8")
    assert "Draft note" in html and "Draft note" in text
    # A sample member's links, never the placeholder delivery fills in.
    assert "%%" not in html and "%%" not in text
    assert parse(html).cssselect("a.unsubscribe")[0].get("href") == SAMPLE_UNSUBSCRIBE
    assert SAMPLE_UNSUBSCRIBE in text
    assert run("issue", "list").output == "No issues yet.\n"


def test_issue_preview_of_an_existing_issue_and_a_chapter_variant(run, tmp_path) -> None:
    run("issue", "new", "--period", "2012-07-30T08:00")

    result = run("issue", "preview", "1", "--chapter", "switzerland", "--out", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == str(tmp_path / "issue-1-switzerland.html")
    assert (tmp_path / "issue-1-switzerland.txt").exists()


def test_issue_preview_options_for_the_next_issue_are_refused_for_an_existing_one(run):
    run("issue", "new", "--period", "2012-07-30T08:00")

    result = run("issue", "preview", "1", "--note", "x")

    assert result.exit_code == 2
    assert "--note, --exclude and --pin shape the next issue only" in result.output


def test_issue_render_prints_html_text_or_a_whole_message(run) -> None:
    run("issue", "new", "--period", "2012-07-30T08:00")

    html = run("issue", "render", "1").output
    text = run("issue", "render", "1", "--format", "text").output
    eml = run("issue", "render", "1", "--format", "eml").stdout_bytes

    assert parse(html).cssselect("h2.post-title")[0].text_content() == DEMO_LINES[0].split("  ")[-1]
    assert text.startswith("Public Policy - issue 1\n")
    message = email.message_from_bytes(eml, policy=email.policy.default)
    assert message["Subject"] == DEMO_SUBJECT
    assert message.get_body(("plain",)).get_content().startswith("Public Policy - issue 1")


def test_issue_render_shows_a_sample_members_links_not_the_placeholder(run) -> None:
    # The HTML used to carry the raw placeholder %%UNSUBSCRIBE_URL%% as the link's href.
    run("issue", "new", "--period", "2012-07-30T08:00")

    html = run("issue", "render", "1").output
    text = run("issue", "render", "1", "--format", "text").output
    eml = run("issue", "render", "1", "--format", "eml").stdout_bytes
    geneva = run("issue", "render", "1", "--chapter", "switzerland").output

    assert UNSUBSCRIBE_URL_TOKEN not in html + text + geneva
    for page in (html, geneva):
        assert parse(page).cssselect("a.unsubscribe")[0].get("href") == SAMPLE_UNSUBSCRIBE
    assert f"Unsubscribe:\n{SAMPLE_UNSUBSCRIBE}\n" in text
    message = email.message_from_bytes(eml, policy=email.policy.default)
    assert message["List-Unsubscribe"].startswith(f"<{SAMPLE_UNSUBSCRIBE}>")
    html_part = message.get_body(("html",)).get_content()
    assert parse(html_part).cssselect("a.unsubscribe")[0].get("href") == SAMPLE_UNSUBSCRIBE


def test_issue_new_refuses_an_issue_too_large_to_send_before_recording_it(
    run, demo_db_path: Path
) -> None:
    from policyfeed.store import open_db

    huge = "<p>" + "Internet governance needs everyone at the table. " * 40 + "</p>"
    db = open_db(demo_db_path)
    with db.conn:
        db.execute("UPDATE posts SET title = title || ?, body_html = ?", [" x" * 12_000, huge])
    db.conn.close()

    result = run("issue", "new", "--period", "w")

    assert result.exit_code == 1
    assert "even with summaries only" in result.output
    assert run("issue", "list").output == "No issues yet.\n"


def test_every_issue_command_has_help_ending_with_an_example() -> None:
    for name in ("new", "list", "show", "preview", "render", "deliveries", "mark-sent"):
        result = CliRunner().invoke(cli, ["issue", name, "--help"])
        assert result.exit_code == 0
        assert "Example:" in result.output, name


def test_issue_new_dry_run_refuses_what_issue_new_would_refuse(run) -> None:
    # The dry run used to promise "issue 2" for a period that already had issue 1, which the
    # real command then refused.
    acta = "acta-and-tppa-a-coincidence-worth-exploring"
    run("issue", "new", "--period", "2012-07-30T08:00", "--exclude", acta)

    dry = run("issue", "new", "--dry-run", "--period", "2012-07-30T08:00")
    real = run("issue", "new", "--period", "2012-07-30T08:00")

    assert (dry.exit_code, dry.output) == (real.exit_code, real.output)
    assert dry.output == (
        "Error: period '2012-07-30T08:00' already has issue 1 (draft); one issue per period: "
        "posts added since wait for the next period's issue (`policyfeed issue preview` shows "
        "what is waiting), or make a special issue now with `policyfeed issue new --period "
        "NAME`\n"
    )


def test_issue_new_dry_run_promises_the_number_and_posts_issue_new_then_gives(run) -> None:
    acta = "acta-and-tppa-a-coincidence-worth-exploring"
    run("issue", "new", "--period", "w1", "--exclude", acta)

    dry = run("issue", "new", "--dry-run", "--period", "w2")
    real = run("issue", "new", "--period", "w2")

    assert real.exit_code == dry.exit_code == 0, real.output
    promised = dry.output.splitlines()[:-1]
    assert promised[0] == "Would create issue 2 (period w2) with 1 post:"
    assert [promised[0].replace("Would create", "Created"), *promised[1:]] == (
        real.output.splitlines()
    )


def test_issue_new_reads_a_markdown_note_from_a_file(run, tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("**WCIT** is coming.\n\n- read [the agenda](/wcit/)\n", encoding="utf-8")

    result = run("issue", "new", "--period", "w", "--note-file", str(note))

    assert result.exit_code == 0, result.output
    assert json.loads(run("issue", "show", "1", "--json").output)["note"] == (
        "**WCIT** is coming.\n\n- read [the agenda](/wcit/)"
    )
    box = parse(run("issue", "render", "1").output).cssselect(".note-box")[0]
    assert box.cssselect("strong")[0].text == "WCIT"
    assert box.cssselect("li a")[0].get("href") == "https://policy.example.org/wcit/"


def test_issue_new_with_both_note_options_is_a_usage_error(run, tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text("x", encoding="utf-8")

    result = run("issue", "new", "--note", "a", "--note-file", str(tmp_path / "note.md"))

    assert result.exit_code == 2
    assert "use --note or --note-file, not both" in result.output
    assert run("issue", "list").output == "No issues yet.\n"


def test_a_note_file_that_is_not_utf8_is_refused_naming_it(run, tmp_path: Path) -> None:
    (tmp_path / "note.md").write_bytes(b"caf\xe9\n")

    result = run("issue", "new", "--note-file", str(tmp_path / "note.md"))

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {tmp_path / 'note.md'}, line 1: not UTF-8 text")
    assert run("issue", "list").output == "No issues yet.\n"


def test_issue_new_reads_the_note_from_standard_input(demo_db_path: Path) -> None:
    base = ["--db", str(demo_db_path), "--config", str(DEMO_CONFIG)]
    result = CliRunner().invoke(
        cli, [*base, "issue", "new", "--period", "w", "--note-file", "-"], input="*Hi* all\n"
    )

    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(cli, [*base, "issue", "show", "1", "--json"]).output
    assert json.loads(shown)["note"] == "*Hi* all"
