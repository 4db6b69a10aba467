"""A member's own topics (chosen on their preferences page, or set by an operator): ``publish``
gives them exactly the posts of the issue on those topics, inside their chapter's variant, one
rendering per distinct variant, and a delivery that began keeps each member's variant to the end.
"""

from __future__ import annotations

import email
from datetime import datetime, timedelta
from email import policy
from pathlib import Path

import pytest
import sqlite_utils

import policyfeed.digest.render
from policyfeed.audience.subscribers import (
    add_chapter,
    add_subscriber,
    export_subscriber,
    forget_subscriber,
    set_member_topics,
    unsubscribe,
)
from policyfeed.config import Settings
from policyfeed.delivery.outbox import OutboxTransport
from policyfeed.delivery.transport import Handoff, SendDeferred
from policyfeed.errors import InputError
from policyfeed.publish import publish
from policyfeed.store import subscribers as store

# The demo's posts, by a phrase of each title, and their topics.
ITU_COUNCIL = "ITU Council sends OTT"  # itu-wcit, internet-governance
IETF = "IETF 84 in Vancouver"  # ietf
BEIJING = "The Beijing Treaty"  # intellectual-property
WCIT = "Preparing for WCIT"  # itu-wcit, internet-governance
ACTA = "ACTA and the TPPA"  # intellectual-property, trade-agreements
ALL = (ITU_COUNCIL, IETF, BEIJING, WCIT, ACTA)
SWISS_INTRO = "What the ITU meetings in Geneva and Dubai mean"
VANCOUVER_INTRO = "IETF 84 is in our city this week"


class FlakyOutbox(OutboxTransport):
    """The outbox, but the relay 'goes down' after ``accept`` messages (handed over one at a
    time, as a relay takes them)."""

    batch_size = 0

    def __init__(self, root: Path, accept: int) -> None:
        super().__init__(root)
        self.accept = accept

    def send(
        self,
        message: bytes,
        *,
        sender: str,
        recipient: str,
        message_id: str,
        handoff: Handoff | None = None,
    ) -> None:
        if self.accept <= 0:
            raise SendDeferred("421 4.3.2 try again later")
        self.accept -= 1
        super().send(
            message, sender=sender, recipient=recipient, message_id=message_id, handoff=handoff
        )


def messages(settings: Settings) -> dict[str, email.message.EmailMessage]:
    """Recipient → their message in the outbox (one each, or the test fails)."""
    found: dict[str, email.message.EmailMessage] = {}
    for path in OutboxTransport(settings.outbox_dir).messages():
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        address = message["To"].addresses[0].addr_spec
        assert address not in found, f"two messages for {address}"
        found[address] = message
    return found


def posts_in(message: email.message.EmailMessage) -> set[str]:
    """Which of the demo's posts the message holds, in both of its parts (which must agree)."""
    html = str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    text = str(message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    in_html = {title for title in ALL if title in html}
    in_text = {title for title in ALL if title in " ".join(text.split())}
    assert in_html == in_text
    return in_html


def html(message: email.message.EmailMessage) -> str:
    return str(message.get_body(("html",)).get_content())  # type: ignore[union-attr]


def row_of(db: sqlite_utils.Database, address: str) -> tuple[str, str]:
    row = db.execute(
        "SELECT d.status, d.last_error FROM deliveries d JOIN subscribers s "
        "ON s.id = d.subscriber_id WHERE s.email = ?",
        [address],
    ).fetchone()
    return (row[0], row[1])


def count_inlining(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    inline = policyfeed.digest.render.inline_css

    def counting(source: str) -> str:
        calls.append(1)
        return inline(source)

    monkeypatch.setattr(policyfeed.digest.render, "inline_css", counting)
    return calls


# --- what a member gets -----------------------------------------------------------------------


def test_a_member_with_chosen_topics_gets_exactly_the_posts_on_those_topics(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    # Ana is in the Swiss chapter (ITU / WCIT, Internet governance) and ticks IETF and Trade
    # agreements: she gets those, and not her chapter's filter.
    set_member_topics(demo_db, "ana.silva@example.org", ["ietf", "Trade agreements"], now=now)
    result = publish(demo_db, settings, now=now)
    assert (result.status, result.sent, result.skipped) == ("sent", 5, 0)
    got = messages(settings)
    ana = got["ana.silva@example.org"]
    assert posts_in(ana) == {IETF, ACTA}
    assert SWISS_INTRO in html(ana)  # still her chapter's variant: its name and intro line
    # Her chapter's subject names the first of *her* posts, not one she does not get.
    assert (
        ana["Subject"]
        == "Public Policy #1: ACTA and the TPPA: a coincidence worth exploring and 1 more"
    )
    # The others are untouched: their chapter's filter, or the whole issue.
    assert posts_in(got["zoe.muller@example.org"]) == {ITU_COUNCIL, WCIT}
    assert posts_in(got["chen.wei@example.org"]) == {IETF, BEIJING, ACTA}
    assert posts_in(got["policy-watch@example.org"]) == set(ALL)


def test_a_member_without_a_chapter_who_chose_topics_gets_a_subject_of_their_own_posts(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    set_member_topics(demo_db, "policy-watch@example.org", ["intellectual-property"], now=now)
    publish(demo_db, settings, now=now)
    mine = messages(settings)["policy-watch@example.org"]
    assert posts_in(mine) == {BEIJING, ACTA}
    # The issue's own subject names a post they do not get: theirs names their first.
    assert (
        mine["Subject"]
        == "Public Policy #1: ACTA and the TPPA: a coincidence worth exploring and 1 more"
    )


def test_going_back_to_what_the_chapter_gets_restores_the_chapter_variant(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    set_member_topics(demo_db, "chen.wei@example.org", ["ietf"], now=now)
    set_member_topics(demo_db, "chen.wei@example.org", None, now=now)
    assert store.get_subscriber(demo_db, "chen.wei@example.org").topics == []
    publish(demo_db, settings, now=now)
    assert posts_in(messages(settings)["chen.wei@example.org"]) == {IETF, BEIJING, ACTA}


def test_two_members_with_the_same_choice_share_one_rendering(
    demo_db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with demo_db.conn:
        demo_db.execute("INSERT INTO topics (slug, name) VALUES ('dns', 'DNS')")
    for n in range(20):
        add_subscriber(demo_db, f"ietf{n}@example.org", now=now, chapter="vancouver")
        set_member_topics(demo_db, f"ietf{n}@example.org", ["ietf"], now=now)
    # Another choice that leaves the same posts in the same chapter: the same message.
    add_subscriber(
        demo_db, "dns.too@example.org", now=now, chapter="vancouver", topics=["ietf", "dns"]
    )
    set_member_topics(demo_db, "ana.silva@example.org", ["ietf"], now=now)
    set_member_topics(demo_db, "zoe.muller@example.org", ["ietf"], now=now)
    calls = count_inlining(monkeypatch)
    result = publish(demo_db, settings, now=now)
    assert (result.status, result.sent) == ("sent", 26)
    # The whole issue, Vancouver's own, Vancouver with IETF, Switzerland with IETF (no Swiss
    # member takes the chapter's own filter now: it is not rendered), and the preflight's one
    # try of the template: never one per recipient.
    assert len(calls) == 5
    got = messages(settings)
    assert all(posts_in(got[f"ietf{n}@example.org"]) == {IETF} for n in range(20))
    assert posts_in(got["dns.too@example.org"]) == {IETF}
    assert posts_in(got["ana.silva@example.org"]) == {IETF}
    assert SWISS_INTRO in html(got["ana.silva@example.org"])
    assert VANCOUVER_INTRO in html(got["ietf0@example.org"])


def test_a_member_whose_topics_match_no_post_of_the_issue_gets_nothing_that_time(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    with demo_db.conn:
        demo_db.execute("INSERT INTO topics (slug, name) VALUES ('dns', 'DNS')")
    set_member_topics(demo_db, "sam.taylor@example.org", ["dns"], now=now)
    result = publish(demo_db, settings, now=now)
    assert (result.status, result.sent, result.skipped, result.recipients) == ("sent", 4, 1, 5)
    assert "sam.taylor@example.org" not in messages(settings)
    assert row_of(demo_db, "sam.taylor@example.org") == (
        "skipped",
        "no posts on the topics they chose (dns)",
    )
    # The next issue, with a post on their topic, reaches them.
    with demo_db.conn:
        demo_db.execute(
            "INSERT INTO posts (slug, title, body_html, status, published_at, updated_at, "
            "created_at) VALUES ('resolvers', 'Resolvers in the news', '<p>DNS.</p>', "
            "'published', ?, ?, ?)",
            ["2012-08-01T09:00:00Z"] * 3,
        )
        demo_db.execute(
            "INSERT INTO post_topics SELECT p.id, t.id FROM posts p, topics t "
            "WHERE p.slug = 'resolvers' AND t.slug = 'dns'"
        )
    following = publish(demo_db, settings, now=now + timedelta(days=7))
    assert following.status == "sent"
    assert following.sent == 2  # Sam (DNS) and the member who gets the whole issue
    assert following.skipped == 3  # the chapters' filters leave them nothing


def test_a_dry_run_reports_each_members_variant(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    set_member_topics(demo_db, "ana.silva@example.org", ["ietf"], now=now)
    result = publish(demo_db, settings, now=now, dry_run=True)
    assert [(v.chapter, v.topics, v.posts, v.recipients) for v in result.variants] == [
        (None, None, 5, 1),
        ("switzerland", None, 2, 1),
        ("switzerland", ["ietf"], 1, 1),
        ("vancouver", None, 3, 2),
    ]
    assert "switzerland (topics ietf) 1 post/1 to/" in result.summary()


# --- what is frozen when delivery starts ------------------------------------------------------


def test_a_member_changing_topics_mid_delivery_keeps_the_variant_their_delivery_began_with(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    set_member_topics(demo_db, "sam.taylor@example.org", ["intellectual-property"], now=now)
    first = publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 1))
    assert (first.status, first.sent, first.pending) == ("partial", 1, 4)
    later = now + timedelta(minutes=30)
    # Ana's message went out. Meanwhile: Sam ticks other topics, Zoe ticks some for the first
    # time, Chen moves to the Swiss chapter, and that chapter's filter becomes IETF alone.
    set_member_topics(demo_db, "sam.taylor@example.org", ["itu-wcit"], now=later)
    set_member_topics(demo_db, "zoe.muller@example.org", ["ietf"], now=later)
    with demo_db.conn:
        demo_db.execute(
            "UPDATE subscribers SET chapter_id = (SELECT id FROM chapters WHERE slug = "
            "'switzerland') WHERE email = 'chen.wei@example.org'"
        )
        demo_db.execute(
            "DELETE FROM chapter_topics WHERE chapter_id = "
            "(SELECT id FROM chapters WHERE slug = 'switzerland')"
        )
        demo_db.execute(
            "INSERT INTO chapter_topics SELECT c.id, t.id FROM chapters c, topics t "
            "WHERE c.slug = 'switzerland' AND t.slug = 'ietf'"
        )
    resumed = publish(demo_db, settings, now=now + timedelta(hours=1))
    assert (resumed.status, resumed.sent, resumed.skipped) == ("resumed", 4, 0)
    got = messages(settings)  # one message each: nobody twice
    assert len(got) == 5
    # Everyone gets the variant their row was frozen with when delivery began.
    assert posts_in(got["ana.silva@example.org"]) == {ITU_COUNCIL, WCIT}
    assert posts_in(got["zoe.muller@example.org"]) == {ITU_COUNCIL, WCIT}
    assert SWISS_INTRO in html(got["zoe.muller@example.org"])
    assert posts_in(got["sam.taylor@example.org"]) == {BEIJING, ACTA}
    assert posts_in(got["chen.wei@example.org"]) == {IETF, BEIJING, ACTA}
    assert VANCOUVER_INTRO in html(got["chen.wei@example.org"])
    assert posts_in(got["policy-watch@example.org"]) == set(ALL)
    # The next issue follows the new choices.
    assert store.get_subscriber(demo_db, "sam.taylor@example.org").topics == ["itu-wcit"]


def test_a_post_whose_topics_change_mid_delivery_stays_in_the_variants_frozen_with_it(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    set_member_topics(demo_db, "sam.taylor@example.org", ["ietf"], now=now)
    publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 0))
    with demo_db.conn:  # the IETF post loses its topic
        demo_db.execute(
            "DELETE FROM post_topics WHERE post_id = "
            "(SELECT id FROM posts WHERE slug = 'public-policy-guests-at-ietf-84-vancouver')"
        )
    resumed = publish(demo_db, settings, now=now + timedelta(hours=1))
    assert (resumed.status, resumed.sent) == ("resumed", 5)
    got = messages(settings)
    assert posts_in(got["sam.taylor@example.org"]) == {IETF}
    assert posts_in(got["chen.wei@example.org"]) == {IETF, BEIJING, ACTA}


def test_a_member_who_leaves_mid_delivery_is_skipped_whatever_their_topics(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    set_member_topics(demo_db, "sam.taylor@example.org", ["ietf"], now=now)
    publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 0))
    unsubscribe(demo_db, "sam.taylor@example.org", now=now + timedelta(minutes=5))
    resumed = publish(demo_db, settings, now=now + timedelta(hours=1))
    assert (resumed.status, resumed.sent, resumed.skipped) == ("resumed", 4, 1)
    assert "sam.taylor@example.org" not in messages(settings)


# --- the member's data ------------------------------------------------------------------------


def test_topics_are_checked_kept_in_the_export_and_erased_with_the_member(
    demo_db: sqlite_utils.Database, now: datetime
) -> None:
    with pytest.raises(InputError, match=r"unknown topic 'Gardening' \(known: "):
        set_member_topics(demo_db, "ana.silva@example.org", ["ietf", "Gardening"], now=now)
    assert store.get_subscriber(demo_db, "ana.silva@example.org").topics == []  # all or nothing
    with pytest.raises(InputError, match="at least one topic"):
        set_member_topics(demo_db, "ana.silva@example.org", [], now=now)
    set_member_topics(
        demo_db, "ana.silva@example.org", ["IETF", "ietf", "trade-agreements"], now=now
    )
    assert store.get_subscriber(demo_db, "ana.silva@example.org").topics == [
        "ietf",
        "trade-agreements",
    ]
    exported = export_subscriber(demo_db, "ana.silva@example.org")
    assert exported["topics"] == [
        {"slug": "ietf", "name": "IETF"},
        {"slug": "trade-agreements", "name": "Trade agreements"},
    ]
    assert export_subscriber(demo_db, "zoe.muller@example.org")["topics"] is None
    member_id = store.get_subscriber(demo_db, "ana.silva@example.org").id
    forget_subscriber(demo_db, "ana.silva@example.org", now=now)
    assert demo_db.execute(
        "SELECT count(*) FROM subscriber_topics WHERE subscriber_id = ?", [member_id]
    ).fetchone() == (0,)


def test_a_chapter_with_no_filter_and_a_member_choice_inside_it(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    add_chapter(demo_db, slug="everything", name="Everything Chapter")
    add_subscriber(demo_db, "all@example.org", now=now, chapter="everything")
    add_subscriber(demo_db, "some@example.org", now=now, chapter="everything", topics=["ietf"])
    publish(demo_db, settings, now=now)
    got = messages(settings)
    assert posts_in(got["all@example.org"]) == set(ALL)
    assert posts_in(got["some@example.org"]) == {IETF}


# --- the preflight check ----------------------------------------------------------------------


def test_policyfeed_check_renders_the_variants_members_chose(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    from policyfeed.check.report import Report
    from policyfeed.check.run import check_messages, render_variants
    from policyfeed.digest.issues import plan_issue

    set_member_topics(demo_db, "ana.silva@example.org", ["ietf"], now=now)
    set_member_topics(demo_db, "zoe.muller@example.org", ["ietf"], now=now)  # the same: once
    set_member_topics(demo_db, "chen.wei@example.org", ["ietf", "trade-agreements"], now=now)
    unsubscribe(demo_db, "sam.taylor@example.org", now=now)  # not mailed: not checked
    set_member_topics(demo_db, "sam.taylor@example.org", ["itu-wcit"], now=now)
    planned = plan_issue(demo_db, settings, now=now)
    assert planned is not None
    report = Report()
    templates = render_variants(demo_db, settings, *planned, report, now=now)
    assert sorted(templates) == [
        "issue-1",
        "issue-1/switzerland",
        "issue-1/switzerland/topics=ietf",
        "issue-1/vancouver",
        "issue-1/vancouver/topics=ietf+trade-agreements",
    ]
    check_messages(report, settings, templates)
    assert report.errors == 0, report.lines()


def test_publish_refuses_when_only_a_members_own_variant_fails_the_check(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    # A post on a topic no chapter follows, whose text holds another tool's merge tag: only a
    # member who chose that topic would get it.
    with demo_db.conn:
        demo_db.execute("INSERT INTO topics (slug, name) VALUES ('dns', 'DNS')")
        demo_db.execute(
            "INSERT INTO posts (slug, title, body_html, status, published_at, updated_at, "
            "created_at) VALUES ('resolvers', 'Resolvers', '<p>Dear *|FNAME|*, resolvers.</p>', "
            "'published', ?, ?, ?)",
            ["2012-07-29T09:00:00Z"] * 3,
        )
        demo_db.execute(
            "INSERT INTO post_topics SELECT p.id, t.id FROM posts p, topics t "
            "WHERE p.slug = 'resolvers' AND t.slug = 'dns'"
        )
    unsubscribe(demo_db, "policy-watch@example.org", now=now)  # the whole issue: nobody
    set_member_topics(demo_db, "chen.wei@example.org", ["dns", "ietf"], now=now)
    result = publish(demo_db, settings, now=now)
    assert result.status == "refused"
    errors = [f for f in result.check["findings"] if f["level"] == "error"]
    assert {(f["area"], f["file"]) for f in errors} == {
        ("message", "issue-1/vancouver/topics=dns+ietf")
    }
    assert all("*|FNAME|*" in f["what"] for f in errors)
    assert not settings.outbox_dir.exists() or not list(settings.outbox_dir.rglob("*.eml"))
    assert demo_db.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)
