"""Which posts go into an issue (a ledger, not a date window) and an issue's life."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlite_utils

from digest_support import NOW, add_post, make_post, slugs
from policyfeed.audience.subscribers import add_chapter
from policyfeed.config import Settings
from policyfeed.digest.issues import (
    MAX_POSTS_PER_ISSUE,
    create_issue,
    default_period,
    get_chapter,
    get_issue,
    get_issue_by_period,
    issue_post_counts,
    issue_posts,
    list_issues,
    mark_issue_status,
    period_key,
    plan_issue,
    posts_for_chapter,
    select_posts_for_issue,
)
from policyfeed.errors import ConflictError, InputError, NotFoundError
from policyfeed.model import Topic
from policyfeed.store import posts as post_store

DAY = timedelta(days=1)


def issue_count(db: sqlite_utils.Database) -> int:
    return len(list_issues(db))


def test_next_issue_takes_the_published_posts_oldest_first(db, settings) -> None:
    add_post(db, settings, "second", date=NOW - 2 * DAY)
    add_post(db, settings, "first", date=NOW - 3 * DAY)
    add_post(db, settings, "third", date=NOW - DAY)

    assert slugs(select_posts_for_issue(db, NOW)) == ["first", "second", "third"]


def test_drafts_are_never_selected(db, settings) -> None:
    add_post(db, settings, "published")
    add_post(db, settings, "draft", status="draft")

    assert slugs(select_posts_for_issue(db, NOW)) == ["published"]


def test_posts_dated_in_the_future_wait_for_a_later_issue(db, settings) -> None:
    add_post(db, settings, "today", date=NOW - timedelta(hours=1))
    add_post(db, settings, "tomorrow", date=NOW + DAY)

    first = create_issue(db, settings, period="week-1", now=NOW)
    assert first is not None
    assert slugs(issue_posts(db, first)) == ["today"]

    second = create_issue(db, settings, period="week-2", now=NOW + 2 * DAY)
    assert second is not None
    assert slugs(issue_posts(db, second)) == ["tomorrow"]


def test_a_post_goes_into_at_most_one_issue(db, settings) -> None:
    add_post(db, settings, "only-once")
    assert create_issue(db, settings, period="week-1", now=NOW) is not None

    assert create_issue(db, settings, period="week-2", now=NOW + 7 * DAY) is None
    assert issue_count(db) == 1


def test_a_post_published_late_with_an_early_date_goes_into_the_next_issue(db, settings) -> None:
    add_post(db, settings, "on-time", date=NOW - DAY)
    add_post(db, settings, "backdated", date=NOW - 10 * DAY, status="draft")
    create_issue(db, settings, period="week-1", now=NOW)
    post_store.set_status(db, "backdated", "published", now=NOW + DAY, domain=settings.domain)

    second = create_issue(db, settings, period="week-2", now=NOW + 7 * DAY)

    assert second is not None
    assert slugs(issue_posts(db, second)) == ["backdated"]


def test_excluded_posts_are_left_out_and_wait_for_the_next_issue(db, settings) -> None:
    add_post(db, settings, "keep", date=NOW - 2 * DAY)
    add_post(db, settings, "later", date=NOW - DAY)

    first = create_issue(db, settings, period="week-1", now=NOW, exclude=["later"])
    second = create_issue(db, settings, period="week-2", now=NOW + 7 * DAY)

    assert first is not None and second is not None
    assert slugs(issue_posts(db, first)) == ["keep"]
    assert slugs(issue_posts(db, second)) == ["later"]


def test_pinned_posts_come_first_in_the_given_order_then_the_rest_oldest_first(db, settings):
    for days, slug in enumerate(["a", "b", "c", "d"], 1):
        add_post(db, settings, slug, date=NOW - (10 - days) * DAY)

    assert slugs(select_posts_for_issue(db, NOW, pin=["d", "b"])) == ["d", "b", "a", "c"]


def test_an_issue_keeps_its_frozen_order_after_its_posts_are_edited(db, settings) -> None:
    add_post(db, settings, "a", date=NOW - 3 * DAY)
    add_post(db, settings, "b", date=NOW - 2 * DAY)
    issue = create_issue(db, settings, period="week-1", now=NOW, pin=["b"])
    assert issue is not None
    add_post(db, settings, "a", date=NOW - DAY, title="A, retitled")

    posts = issue_posts(db, issue)
    assert slugs(posts) == ["b", "a"]
    assert posts[1].title == "A, retitled"


@pytest.mark.parametrize(
    ("setup", "pin", "error", "message"),
    [
        ("sent", "old", ConflictError, "cannot pin 'old': it went out in issue 1"),
        ("draft", "old", ConflictError, "cannot pin 'old': it is a draft"),
        ("future", "old", ConflictError, "cannot pin 'old': it is dated 2012-08-06"),
        ("none", "missing", NotFoundError, "--pin missing: no post with that slug"),
    ],
)
def test_a_post_that_cannot_go_into_this_issue_cannot_be_pinned(
    db, settings, setup, pin, error, message
) -> None:
    add_post(db, settings, "fresh")
    if setup == "sent":
        add_post(db, settings, "old", date=NOW - 9 * DAY)
        create_issue(db, settings, period="week-0", now=NOW - 7 * DAY)
    elif setup == "draft":
        add_post(db, settings, "old", status="draft")
    elif setup == "future":
        add_post(db, settings, "old", date=NOW + 7 * DAY)
    before = issue_count(db)

    with pytest.raises(error, match=message):
        create_issue(db, settings, period="week-1", now=NOW, pin=[pin])
    assert issue_count(db) == before


def test_excluding_an_unknown_slug_is_an_error_naming_it(db, settings) -> None:
    add_post(db, settings, "fresh")

    with pytest.raises(NotFoundError, match="--exclude typo: no post with that slug"):
        select_posts_for_issue(db, NOW, exclude=["typo"])


def test_a_post_cannot_be_both_pinned_and_excluded(db, settings) -> None:
    add_post(db, settings, "fresh")

    with pytest.raises(InputError, match="'fresh' cannot be both pinned and excluded"):
        select_posts_for_issue(db, NOW, exclude=["fresh"], pin=["fresh"])


def test_a_backlog_larger_than_an_issue_goes_out_oldest_first_over_several_issues(
    db, settings
) -> None:
    for index in range(5):
        add_post(db, settings, f"post-{index}", date=NOW - (10 - index) * DAY)

    first = create_issue(db, settings, period="week-1", now=NOW, limit=3)
    second = create_issue(db, settings, period="week-2", now=NOW, limit=3)

    assert first is not None and second is not None
    assert slugs(issue_posts(db, first)) == ["post-0", "post-1", "post-2"]
    assert slugs(issue_posts(db, second)) == ["post-3", "post-4"]
    assert MAX_POSTS_PER_ISSUE >= 20


def test_create_issue_records_number_period_subject_note_and_status(db, settings) -> None:
    add_post(db, settings, "wcit", title="WCIT & the ITRs", date=NOW - DAY)
    add_post(db, settings, "ietf", title="IETF 84", date=NOW - 2 * DAY)

    note = "\n  Hello\n  all \n\n"  # Markdown: the common indent and outer blank lines go

    issue = create_issue(db, settings, period="2012-07-30T08:00", now=NOW, note=note)

    assert issue is not None
    assert (issue.number, issue.period, issue.status) == (1, "2012-07-30T08:00", "draft")
    assert issue.subject == "Public Policy #1: IETF 84 and 1 more"
    assert issue.note == "Hello\nall"
    assert issue.created_at == NOW and issue.sent_at is None
    assert issue.web_path == "issues/1/"
    assert get_issue(db, 1) == issue
    assert get_issue_by_period(db, "2012-07-30T08:00") == issue


def test_issues_are_numbered_one_two_three(db, settings) -> None:
    for week in range(3):
        add_post(db, settings, f"post-{week}", date=NOW + week * 7 * DAY)
        create_issue(db, settings, period=f"week-{week}", now=NOW + (week * 7 + 1) * DAY)

    assert [i.number for i in list_issues(db)] == [3, 2, 1]
    assert issue_post_counts(db) == {1: 1, 2: 1, 3: 1}


def test_nothing_new_creates_no_issue(db, settings) -> None:
    add_post(db, settings, "draft", status="draft")

    assert create_issue(db, settings, period="week-1", now=NOW) is None
    assert plan_issue(db, settings, now=NOW) is None
    assert issue_count(db) == 0


def test_a_period_takes_one_issue_only(db, settings) -> None:
    add_post(db, settings, "a", date=NOW - 2 * DAY)
    create_issue(db, settings, period="week-1", now=NOW)
    add_post(db, settings, "b", date=NOW - DAY)

    with pytest.raises(ConflictError, match="period 'week-1' already has issue 1"):
        create_issue(db, settings, period="week-1", now=NOW)
    assert issue_count(db) == 1
    assert slugs(select_posts_for_issue(db, NOW)) == ["b"]


def test_planning_an_issue_records_nothing(db, settings) -> None:
    add_post(db, settings, "a")

    planned = plan_issue(db, settings, now=NOW, note="Draft note")

    assert planned is not None
    issue, posts = planned
    assert (issue.number, issue.id, issue.note, slugs(posts)) == (1, None, "Draft note", ["a"])
    assert issue_count(db) == 0
    assert slugs(select_posts_for_issue(db, NOW)) == ["a"]


def test_marking_an_issue_sent_sets_sent_at_once(db, settings) -> None:
    add_post(db, settings, "a")
    issue = create_issue(db, settings, period="week-1", now=NOW)
    assert issue is not None

    sending = mark_issue_status(db, issue, "sending", NOW + timedelta(minutes=1))
    sent = mark_issue_status(db, sending, "sent", NOW + timedelta(minutes=2))
    again = mark_issue_status(db, sent, "sent", NOW + timedelta(minutes=3))

    assert (sending.status, sending.sent_at) == ("sending", None)
    assert (sent.status, sent.sent_at) == ("sent", NOW + timedelta(minutes=2))
    assert again.sent_at == NOW + timedelta(minutes=2)
    assert get_issue(db, 1).updated_at == NOW + timedelta(minutes=3)


def test_an_unknown_status_is_refused(db, settings) -> None:
    add_post(db, settings, "a")
    issue = create_issue(db, settings, period="week-1", now=NOW)
    assert issue is not None

    with pytest.raises(
        InputError, match="issue status must be one of draft, approved, sending, sent, discarded"
    ):
        mark_issue_status(db, issue, "done", NOW)
    assert get_issue(db, 1).status == "draft"


def test_an_unknown_issue_number_is_not_found(db) -> None:
    with pytest.raises(NotFoundError, match="no issue number 7"):
        get_issue(db, 7)


def test_a_chapter_variant_has_only_posts_with_one_of_its_topics() -> None:
    ietf = make_post("ietf-84", topics=[Topic("ietf", "IETF")])
    wcit = make_post("wcit", topics=[Topic("itu-wcit", "ITU / WCIT"), Topic("ig", "IG")])
    other = make_post("other", topics=[])

    assert slugs(posts_for_chapter([ietf, wcit, other], ["ig", "ietf"])) == ["ietf-84", "wcit"]
    assert slugs(posts_for_chapter([ietf, wcit, other], [])) == ["ietf-84", "wcit", "other"]


def test_get_chapter_reads_its_topic_filter(db, settings) -> None:
    add_post(db, settings, "a", topics=["IETF", "Internet governance"])
    add_chapter(db, slug="geneva", name="Geneva chapter", intro="Hi Geneva", topics=["IETF"])

    chapter = get_chapter(db, "geneva")

    assert (chapter.slug, chapter.name, chapter.intro) == ("geneva", "Geneva chapter", "Hi Geneva")
    assert chapter.topic_slugs == ("ietf",)
    with pytest.raises(NotFoundError, match="no chapter with slug 'nowhere'"):
        get_chapter(db, "nowhere")


def test_the_default_period_is_the_latest_scheduled_time_in_the_site_time_zone(settings):
    # Monday 30 July 2012, 14:00 in Zurich; the demo schedule is Mondays at 08:00.
    assert default_period(settings, NOW) == "2012-07-30T08:00"
    assert default_period(settings, NOW - DAY) == "2012-07-23T08:00"


def test_an_editors_period_is_normalised_like_the_schedules(settings: Settings) -> None:
    assert period_key(settings, "2012-07-30") == "2012-07-30T08:00"  # the schedule's time
    assert period_key(settings, "2012-07-30 08:00") == "2012-07-30T08:00"
    assert period_key(settings, "wcit-special") == "wcit-special"
    with pytest.raises(InputError, match="2012-13-01"):
        period_key(settings, "2012-13-01")


def test_selecting_waiting_posts_walks_the_date_index_not_the_whole_table(db, settings):
    add_post(db, settings, "a")
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        select_posts_for_issue(db, NOW)
    finally:
        db.conn.set_trace_callback(None)
    waiting = [sql for sql in statements if "NOT EXISTS" in sql and "issue_posts" in sql]
    assert len(waiting) == 1

    plan = [str(row[-1]) for row in db.execute("EXPLAIN QUERY PLAN " + waiting[0]).fetchall()]

    assert any("posts_status_published" in step for step in plan), plan
    assert not any(step.startswith("SCAN p") for step in plan), plan
