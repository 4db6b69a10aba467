"""``policyfeed issue approve|edit|discard`` and ``publish`` with approval, on the demo database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest_support import parse
from policyfeed.cli import cli
from policyfeed.lock import exclusive_lock, lock_path_for

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "policyfeed.toml"
PERIOD = "2012-07-30T08:00"
ACTA = "acta-and-tppa-a-coincidence-worth-exploring"
ITU = "itu-council-refers-internet-issues-to-wtsa"
WCIT = "wcit-preparation-ask-your-government"


@pytest.fixture
def run(demo_db_path: Path, tmp_path: Path):
    env = {
        "POLICYFEED_OUTBOX_DIR": str(tmp_path / "outbox"),
        "POLICYFEED_OUTPUT_DIR": str(tmp_path / "public"),
    }

    def invoke(*args: str, extra: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            ["--db", str(demo_db_path), "--config", str(DEMO_CONFIG), *args],
            env={**env, **(extra or {})},
        )

    return invoke


def show(run, number: int = 1) -> dict:
    result = run("issue", "show", str(number), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_approve_a_draft_then_approving_again_says_when(run) -> None:
    run("issue", "new", "--period", PERIOD)

    first = run("issue", "approve", "1")
    again = run("issue", "approve", "1")

    assert first.exit_code == 0, first.output
    assert first.output == (
        f"Approved issue 1 (period {PERIOD}, 5 posts): the next `policyfeed publish` delivers "
        "it to 5 members.\n"
    )
    assert again.exit_code == 0
    assert again.output.startswith("Issue 1 was approved on ")
    assert show(run)["status"] == "approved" and show(run)["approved_at"]


def test_approving_a_sent_issue_is_refused(run) -> None:
    assert run("publish", "--period", PERIOD, "--force").exit_code == 0

    result = run("issue", "approve", "1")

    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot approve issue 1: it was sent on ")


def test_approve_refuses_a_draft_holding_a_post_unpublished_since(run) -> None:
    run("issue", "new", "--period", PERIOD)
    assert run("posts", "unpublish", ACTA).exit_code == 0

    result = run("issue", "approve", "1")

    assert result.exit_code == 1
    assert result.output == (
        f"Error: cannot approve issue 1: post '{ACTA}' is not published any more; leave it out "
        f"(policyfeed issue edit 1 --exclude {ACTA}) or publish it again\n"
    )
    assert show(run)["status"] == "draft"


def test_edit_sets_the_subject_of_every_chapters_version(run) -> None:
    run("issue", "new", "--period", PERIOD)

    result = run("issue", "edit", "1", "--subject", "  WCIT:   the week\tin Dubai ")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "Subject: WCIT: the week in Dubai"
    for chapter in ("switzerland", "vancouver"):
        eml = run("issue", "render", "1", "--format", "eml", "--chapter", chapter).output
        assert "Subject: WCIT: the week in Dubai\n" in eml.replace("\r\n", "\n")
    # "" gives back the subject made from the posts.
    reset = run("issue", "edit", "1", "--subject", "")
    assert reset.output.splitlines()[-1].startswith("Subject: Public Policy #1: ACTA")


def test_edit_excludes_and_pins_and_the_subject_follows_the_posts(run) -> None:
    run("issue", "new", "--period", PERIOD, "--exclude", WCIT)

    result = run("issue", "edit", "1", "--exclude", ACTA, "--pin", WCIT, "--pin", ITU)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Edited issue 1 (period {PERIOD}), 4 posts:"
    assert [line.split()[2] for line in lines[1:5]] == [
        WCIT,
        ITU,
        "beijing-treaty-on-audiovisual-performances",
        "public-policy-guests-at-ietf-84-vancouver",
    ]
    assert lines[5].startswith("Subject: Public Policy #1: Preparing for WCIT")
    # The excluded post waits for the next issue.
    later = run("issue", "new", "--period", "later", "--dry-run")
    assert ACTA in later.output


def test_edit_of_an_approved_issue_makes_it_a_draft_again(run) -> None:
    run("issue", "new", "--period", PERIOD)
    run("issue", "approve", "1")

    result = run("issue", "edit", "1", "--note", "**Read** this first.")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "It is a draft again: approve it once more (policyfeed issue approve 1)."
    )
    assert (show(run)["status"], show(run)["approved_at"]) == ("draft", None)
    box = parse(run("issue", "render", "1").output).cssselect(".note-box strong")
    assert box[0].text == "Read"


def test_edit_with_the_same_values_changes_nothing_and_keeps_the_approval(run) -> None:
    run("issue", "new", "--period", PERIOD, "--note", "Hello")
    run("issue", "approve", "1")

    result = run("issue", "edit", "1", "--note", "Hello")

    assert (result.exit_code, result.output) == (0, "Nothing changed: issue 1 is so already.\n")
    assert show(run)["status"] == "approved"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "nothing to change: give --subject, --note, --pin or --exclude"),
        (("--exclude", "no-such-post"), 1, "Error: --exclude no-such-post: no post with that slug"),
        (("--pin", ACTA, "--exclude", ACTA), 1, f"Error: post '{ACTA}' cannot be both pinned"),
        (("--subject", "x" * 201), 1, "Error: --subject: the subject is 201 characters long"),
    ],
)
def test_edit_refuses_bad_requests_and_changes_nothing(run, args, code, message) -> None:
    run("issue", "new", "--period", PERIOD, "--exclude", WCIT)
    before = show(run)

    result = run("issue", "edit", "1", *args)

    assert result.exit_code == code
    assert message in result.output
    assert show(run) == before


def test_edit_refuses_to_leave_an_issue_empty(run) -> None:
    run("issue", "new", "--period", PERIOD, "--pin", ACTA, "--exclude", WCIT, "--exclude", ITU,
        "--exclude", "beijing-treaty-on-audiovisual-performances",
        "--exclude", "public-policy-guests-at-ietf-84-vancouver")  # fmt: skip

    result = run("issue", "edit", "1", "--exclude", ACTA)

    assert result.exit_code == 1
    assert result.output == (
        "Error: issue 1 would hold no posts; discard it instead (policyfeed issue discard 1)\n"
    )


def test_edit_pin_refuses_a_post_of_another_issue(run) -> None:
    run("issue", "new", "--period", "w1", "--pin", ACTA, "--exclude", WCIT)
    run("issue", "new", "--period", "w2")

    result = run("issue", "edit", "1", "--pin", WCIT)

    assert result.exit_code == 1
    assert result.output == f"Error: cannot pin '{WCIT}': it is in issue 2\n"


def test_editing_or_discarding_a_sent_issue_is_refused(run) -> None:
    assert run("publish", "--period", PERIOD, "--force").exit_code == 0

    for args in (("edit", "1", "--note", "x"), ("discard", "1")):
        result = run("issue", *args)
        assert result.exit_code == 1
        assert "it was sent on " in result.output and "delivery has begun" in result.output
    assert show(run)["status"] == "sent"


def test_discard_frees_the_posts_for_the_next_issue(run) -> None:
    run("issue", "new", "--period", PERIOD)

    result = run("issue", "discard", "1")
    again = run("issue", "discard", "1")

    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Discarded issue 1 (period {PERIOD}): its 5 posts wait for the next issue.\n"
    )
    assert again.exit_code == 0 and again.output.startswith("Issue 1 was discarded on ")
    assert (show(run)["status"], show(run)["posts"]) == ("discarded", [])
    made = run("issue", "new", "--period", PERIOD)
    assert made.output.splitlines()[0] == f"Created issue 2 (period {PERIOD}) with 5 posts:"
    listing = run("issue", "list").output.splitlines()
    assert listing[0].split() == ["ISSUE", "PERIOD", "STATUS", "POSTS", "SUBJECT"]
    assert listing[2].split()[:4] == ["1", PERIOD, "discarded", "0"]
    assert run("issue", "send-test", "1", "--to", "ed@example.org").output == (
        "Error: issue 1 holds no posts (discarded): nothing to send\n"
    )


def test_no_change_while_a_publish_run_holds_the_lock(run, demo_db_path: Path) -> None:
    run("issue", "new", "--period", PERIOD)

    with exclusive_lock(lock_path_for(demo_db_path)):
        results = [run("issue", *args) for args in (("approve", "1"), ("discard", "1"))]

    for result in results:
        assert result.exit_code == 75
        assert "a publish run is under way" in result.output
    assert show(run)["status"] == "draft"


def test_a_mistyped_database_is_refused_not_created(run, tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    result = CliRunner().invoke(cli, ["--db", str(missing), "issue", "approve", "1"])

    assert result.exit_code == 1
    assert "no such database" in result.output
    assert not missing.exists()


def test_every_editing_command_has_help_with_an_example() -> None:
    for name in ("approve", "edit", "discard"):
        result = CliRunner().invoke(cli, ["issue", name, "--help"])
        assert result.exit_code == 0
        assert "Example:" in result.output, name


def test_an_issue_of_one_post_says_1_post(run) -> None:
    slugs = [p["slug"] for p in json.loads(run("posts", "list", "--json").output)]
    excluded = [arg for slug in slugs[1:] for arg in ("--exclude", slug)]
    assert run("issue", "new", "--period", PERIOD, *excluded).exit_code == 0

    edited = run("issue", "edit", "1", "--subject", "One post")
    approved = run("issue", "approve", "1")
    discarded = run("issue", "discard", "1")

    assert edited.output.splitlines()[0] == f"Edited issue 1 (period {PERIOD}), 1 post:"
    assert approved.output.startswith(f"Approved issue 1 (period {PERIOD}, 1 post): ")
    assert discarded.output == (
        f"Discarded issue 1 (period {PERIOD}): its 1 post waits for the next issue.\n"
    )


def test_approving_a_special_issue_names_the_command_that_sends_it(run) -> None:
    assert run("issue", "new", "--period", "wcit-special").exit_code == 0

    first = run("issue", "approve", "1")
    again = run("issue", "approve", "1")

    assert first.exit_code == 0, first.output
    assert first.output == (
        "Approved issue 1 (period wcit-special, 5 posts): the scheduled run never mails it; "
        "`policyfeed publish --period wcit-special` delivers it to 5 members.\n"
    )
    assert again.exit_code == 0
    assert again.output.startswith("Issue 1 was approved on ")
    assert again.output.endswith("; `policyfeed publish --period wcit-special` delivers it.\n")
    assert "the next `policyfeed publish`" not in first.output + again.output


def test_approving_for_one_member_says_member(run) -> None:
    for email in ("zoe.muller@example.org", "chen.wei@example.org", "sam.taylor@example.org",
                  "policy-watch@example.org"):  # fmt: skip
        assert run("subscribers", "unsubscribe", email).exit_code == 0
    assert run("issue", "new", "--period", PERIOD).exit_code == 0
    approved = run("issue", "approve", "1")
    assert approved.exit_code == 0, approved.output
    assert approved.output.endswith(" delivers it to 1 member.\n")


def test_an_issue_made_for_a_period_years_ahead_says_its_posts_wait_until_then(run) -> None:
    """A slip of the year (2031 for 2021) makes an issue whose posts skip every issue before
    it: made all the same (an issue may be made ahead of its time), but never silently."""
    made = run("issue", "new", "--period", "2031-01-06")
    assert made.exit_code == 0, made.output
    assert "Created issue 1 (period 2031-01-06T08:00)" in made.stdout
    assert made.stderr.startswith(
        "Warning: period 2031-01-06T08:00 is more than one scheduled time ahead (the next is "
    )
    assert (
        "its posts wait for it and skip every issue before it (`policyfeed issue discard 1` "
        "puts them back)" in made.stderr
    )


def test_an_issue_made_for_the_next_scheduled_time_says_nothing_more(run) -> None:
    from datetime import UTC, datetime

    from policyfeed.config import load_settings
    from policyfeed.schedule import next_period

    settings = load_settings(DEMO_CONFIG, environ={})
    upcoming = next_period(settings.schedule, settings.tz, datetime.now(UTC))
    made = run("issue", "new", "--period", upcoming.key)
    assert made.exit_code == 0, made.output
    assert made.stderr == ""
