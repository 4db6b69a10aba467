"""``digest.approval = "required"``: publish makes a draft, the editor approves, the next run
delivers; a draft is never sent by surprise. The demo database, as a scheduler would run it."""

from __future__ import annotations

import dataclasses
import email
import json
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from digest_support import add_post, parse
from policyfeed.cli import cli
from policyfeed.config import Settings
from policyfeed.delivery.outbox import OutboxTransport
from policyfeed.digest.editing import approve_issue, discard_issue, edit_issue
from policyfeed.digest.issues import create_issue, get_issue, issue_posts
from policyfeed.digest.sample import sample_unsubscribe_url
from policyfeed.errors import EXIT_ERROR, EXIT_TEMPFAIL, DeliveryError
from policyfeed.publish import publish
from test_publish import DEMO_ACTIVE, FlakyOutbox, dump, tree

PERIOD = "2012-07-30T08:00"
EDITOR = "policy-editor@example.org"  # the demo's site.editor_email
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
DEMO_CONFIG = Path(__file__).resolve().parent.parent / "policyfeed.toml"


@pytest.fixture
def required(settings: Settings) -> Settings:
    return dataclasses.replace(settings, approval="required")


def messages(settings: Settings) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(OutboxTransport(settings.outbox_dir).messages())
    ]


def to(settings: Settings) -> list[str]:
    return sorted(m["To"].addresses[0].addr_spec for m in messages(settings))


def deliveries(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT count(*) FROM deliveries").fetchone()[0])


def test_publish_makes_a_draft_sends_the_editor_one_copy_and_members_nothing(
    demo_db, required, now
) -> None:
    result = publish(demo_db, required, now=now)

    assert (result.status, result.issue, result.period, result.exit_code) == (
        "awaiting_approval", 1, PERIOD, 0,
    )  # fmt: skip
    assert result.summary().startswith(
        f"awaiting_approval: issue 1, period {PERIOD}: issue 1 is a draft waiting for approval "
        f"(its copy for approval went to {EDITOR} (outbox "
    )
    assert "policyfeed issue approve 1" in result.summary()
    assert result.as_json()["status"] == "awaiting_approval"
    assert to(required) == [EDITOR]
    assert deliveries(demo_db) == 0
    issue = get_issue(demo_db, 1)
    assert (issue.status, issue.review_sent_at, issue.approved_at) == ("draft", now, None)
    assert not (required.output_dir / "issues" / "1").exists()


def test_later_runs_in_the_period_wait_and_do_not_mail_the_editor_again(
    demo_db, required, now, tmp_path: Path
) -> None:
    publish(demo_db, required, now=now)
    before, rows = tree(tmp_path), dump(demo_db)

    for hours in (1, 2, 5):
        again = publish(demo_db, required, now=now + hours * HOUR)
        assert (again.status, again.issue, again.exit_code) == ("awaiting_approval", 1, 0)

    assert tree(tmp_path) == before and dump(demo_db) == rows
    assert to(required) == [EDITOR]


def test_the_copy_for_approval_is_the_issue_with_the_commands_and_each_version(
    demo_db, required, now
) -> None:
    settings = dataclasses.replace(required, preview_url="https://policy.example.org/preview/")
    publish(demo_db, settings, now=now)

    (copy,) = messages(settings)
    assert copy["Subject"].startswith("[For approval] Public Policy #1: ")
    assert copy["Message-ID"].startswith("<issue-1.review-")
    html = copy.get_body(("html",)).get_content()
    text = copy.get_body(("plain",)).get_content()
    box = parse(html).cssselect(".review-box")[0]
    words = " ".join(box.text_content().split())
    assert "Nothing has gone to them" in words
    for command in (
        "policyfeed issue approve 1",
        "policyfeed issue discard 1",
        "policyfeed issue edit 1",
    ):
        assert command in words and command in text
    links = {a.text_content(): a.get("href") for a in box.cssselect("li a")}
    assert (
        links["The whole issue (no chapter)"]
        == "https://policy.example.org/preview/issues/1/all.html"
    )
    assert set(links) >= {"The whole issue (no chapter)", "Switzerland Chapter"}
    assert "Approve it by 1 August 2012, 14:00 (Europe/Zurich)" in words
    assert "%%" not in html and "%%" not in text
    unsubscribe = parse(html).cssselect("a.unsubscribe")[0].get("href")
    assert unsubscribe == sample_unsubscribe_url(settings)
    # Below the box: the issue exactly as members will get it.
    titles = [h.text_content() for h in parse(html).cssselect("h2.post-title")]
    assert titles == [p.title for p in issue_posts(demo_db, get_issue(demo_db, 1))]


def test_after_approval_the_next_run_delivers_it_to_every_member(demo_db, required, now) -> None:
    publish(demo_db, required, now=now)
    approve_issue(demo_db, required, 1, now=now + HOUR)

    result = publish(demo_db, required, now=now + 2 * HOUR)

    assert (result.status, result.issue, result.sent) == ("sent", 1, 5)
    assert set(to(required)) == DEMO_ACTIVE | {EDITOR}
    issue = get_issue(demo_db, 1)
    assert (issue.status, issue.approved_at) == ("sent", now + HOUR)
    assert (required.output_dir / "issues" / "1" / "index.html").exists()
    assert publish(demo_db, required, now=now + 3 * HOUR).status == "already_sent"


def test_lateness_counts_from_the_approval_not_from_the_draft(demo_db, required, now) -> None:
    publish(demo_db, required, now=now)
    approve_issue(demo_db, required, 1, now=now + 3 * DAY)  # max_lateness is 2 days

    result = publish(demo_db, required, now=now + 3 * DAY + HOUR)

    assert (result.status, result.sent) == ("sent", 5)


def test_an_approved_issue_not_sent_within_max_lateness_of_its_approval_is_refused(
    demo_db, required, now
) -> None:
    from policyfeed.schedule import StalePeriodError

    publish(demo_db, required, now=now)
    approve_issue(demo_db, required, 1, now=now + HOUR)

    with pytest.raises(StalePeriodError, match="issue 1"):
        publish(demo_db, required, now=now + 3 * DAY)
    assert deliveries(demo_db) == 0


def test_a_draft_left_unapproved_past_max_lateness_is_reported_and_never_sent(
    demo_db, required, now
) -> None:
    publish(demo_db, required, now=now)

    late = publish(demo_db, required, now=now + 2 * DAY + HOUR)

    assert (late.status, late.issue, late.exit_code) == ("approval_overdue", 1, EXIT_ERROR)
    assert "has waited 2 days for approval, longer than the allowed lateness" in late.message
    assert "nothing sent" in late.message
    assert deliveries(demo_db) == 0 and to(required) == [EDITOR]
    assert get_issue(demo_db, 1).status == "draft"


def test_an_approved_issue_of_an_earlier_period_goes_out_at_the_next_run(
    demo_db, required, now
) -> None:
    daily = dataclasses.replace(required, schedule="0 8 * * *")
    assert publish(demo_db, daily, now=now).status == "awaiting_approval"
    approve_issue(demo_db, daily, 1, now=now + DAY)  # Tuesday: the period is Tuesday's now

    result = publish(demo_db, daily, now=now + DAY + HOUR)

    assert (result.status, result.issue, result.period, result.sent) == ("sent", 1, PERIOD, 5)
    # The run after it makes Tuesday's issue: nothing is waiting, so nothing.
    assert publish(demo_db, daily, now=now + DAY + 2 * HOUR).status == "nothing_new"


def test_an_approved_issue_for_a_time_still_to_come_waits_for_it(demo_db, required, now) -> None:
    create_issue(demo_db, required, period="2012-08-06T08:00", now=now)
    approve_issue(demo_db, required, 1, now=now)

    result = publish(demo_db, required, now=now + HOUR)

    assert result.status == "nothing_new"
    assert deliveries(demo_db) == 0


def test_a_discarded_draft_frees_its_posts_and_its_period_gets_nothing(
    demo_db, required, now
) -> None:
    publish(demo_db, required, now=now)
    discard_issue(demo_db, 1, now=now + HOUR)

    result = publish(demo_db, required, now=now + 2 * HOUR)

    assert (result.status, result.issue, result.exit_code) == ("discarded", 1, 0)
    assert "an editor discarded this period's issue; nothing made or sent" in result.summary()
    assert to(required) == [EDITOR]
    # An editor can make another for the period, from the freed posts.
    again = create_issue(demo_db, required, period=PERIOD, now=now + 3 * HOUR)
    assert again is not None and again.number == 2
    assert len(issue_posts(demo_db, again)) == 5
    assert publish(demo_db, required, now=now + 4 * HOUR).status == "awaiting_approval"


def test_an_edited_draft_goes_out_as_edited(demo_db, required, now) -> None:
    publish(demo_db, required, now=now)
    acta = "acta-and-tppa-a-coincidence-worth-exploring"
    edit_issue(demo_db, required, 1, now=now, subject="WCIT: read this first", exclude=[acta])
    approve_issue(demo_db, required, 1, now=now + HOUR)

    publish(demo_db, required, now=now + 2 * HOUR)

    for message in messages(required):
        if message["To"].addresses[0].addr_spec != EDITOR:
            assert message["Subject"] == "WCIT: read this first"
            assert "ACTA and the TPPA" not in message.get_body(("html",)).get_content()


def test_a_relay_down_for_the_copy_for_approval_exits_75_and_the_next_run_tries_again(
    demo_db, required, now
) -> None:
    with pytest.raises(DeliveryError, match="copy for approval to policy-editor") as caught:
        publish(demo_db, required, now=now, transport=FlakyOutbox(required.outbox_dir, 0))
    assert caught.value.exit_code == EXIT_TEMPFAIL
    issue = get_issue(demo_db, 1)
    assert (issue.status, issue.review_sent_at) == ("draft", None)

    again = publish(demo_db, required, now=now + HOUR)

    assert again.status == "awaiting_approval"
    assert to(required) == [EDITOR]


def test_a_dry_run_with_approval_says_what_a_real_run_would_do_and_writes_nothing(
    demo_db, required, now, tmp_path: Path
) -> None:
    before, rows = tree(tmp_path), dump(demo_db)

    dry = publish(demo_db, required, now=now, dry_run=True)

    assert dry.status == "dry_run"
    assert dry.message == (
        f"approval required: a real run makes issue 1 a draft, sends its copy for approval to "
        f"{EDITOR} and delivers nothing until `policyfeed issue approve 1`"
    )
    assert tree(tmp_path) == before and dump(demo_db) == rows
    publish(demo_db, required, now=now)
    waiting = publish(demo_db, required, now=now + HOUR, dry_run=True)
    assert (waiting.status, waiting.issue) == ("awaiting_approval", 1)


def test_without_approval_an_editors_draft_is_approved_by_the_run_that_sends_it(
    demo_db, settings, now
) -> None:
    create_issue(demo_db, settings, period=PERIOD, now=now, note="Hello")

    result = publish(demo_db, settings, now=now + HOUR)

    assert (result.status, result.sent) == ("sent", 5)
    issue = get_issue(demo_db, 1)
    assert (issue.status, issue.approved_at, issue.review_sent_at) == ("sent", now + HOUR, None)


def test_a_post_published_later_is_not_in_the_draft_and_waits(demo_db, required, now) -> None:
    publish(demo_db, required, now=now)
    add_post(demo_db, required, "late-news", title="Late news", date=now + HOUR, now=now + HOUR)
    approve_issue(demo_db, required, 1, now=now + 2 * HOUR)

    publish(demo_db, required, now=now + 3 * HOUR)

    assert "late-news" not in [p.slug for p in issue_posts(demo_db, get_issue(demo_db, 1))]


def test_a_draft_an_editor_made_gets_its_copy_for_approval_once(demo_db, required, now) -> None:
    create_issue(demo_db, required, period=PERIOD, now=now)

    first = publish(demo_db, required, now=now + HOUR)
    second = publish(demo_db, required, now=now + 2 * HOUR)

    assert first.status == second.status == "awaiting_approval"
    assert to(required) == [EDITOR]


def test_an_approved_special_issue_waits_for_its_own_publish_period(demo_db, required, now):
    create_issue(demo_db, required, period="wcit-special", now=now)
    approve_issue(demo_db, required, 1, now=now)

    scheduled = publish(demo_db, required, now=now + HOUR)
    special = publish(demo_db, required, now=now + HOUR, period="wcit-special")

    assert scheduled.status == "nothing_new"
    assert (special.status, special.issue, special.sent) == ("sent", 1, 5)


# --- the command line ------------------------------------------------------------------------


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


def test_publish_with_approval_required_reports_awaiting_approval_in_text_and_json(run) -> None:
    required = {"POLICYFEED_APPROVAL": "required"}

    first = run("publish", "--period", PERIOD, "--force", "--json", extra=required)
    second = run("publish", "--period", PERIOD, "--force", extra=required)

    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert (data["status"], data["issue"], data["sent"]) == ("awaiting_approval", 1, 0)
    assert "policyfeed issue approve 1" in data["message"]
    assert second.exit_code == 0
    assert second.output.startswith(
        f"awaiting_approval: issue 1, period {PERIOD}: issue 1 is a draft waiting for approval"
    )


def test_approval_required_without_an_editor_is_a_configuration_error(run) -> None:
    env = {"POLICYFEED_APPROVAL": "required", "POLICYFEED_EDITOR_EMAIL": ""}

    result = run("publish", extra=env)

    assert result.exit_code == 1
    assert result.output.startswith(
        'Error: digest.approval = "required" needs site.editor_email: the address that gets'
    )
