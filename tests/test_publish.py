"""``publish`` as a library call: what a scheduled run does on each state of the database."""

from __future__ import annotations

import email
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

import policyfeed.digest.render
from policyfeed.audience.subscribers import add_chapter, add_subscriber, unsubscribe
from policyfeed.config import Settings
from policyfeed.delivery.outbox import OutboxTransport
from policyfeed.delivery.transport import Handoff, SendDeferred
from policyfeed.digest.issues import get_issue_by_period
from policyfeed.errors import EXIT_ERROR, EXIT_TEMPFAIL, ConfigError
from policyfeed.publish import PublishResult, publish
from policyfeed.schedule import StalePeriodError

PERIOD = "2012-07-30T08:00"  # the schedule's period for the `now` fixture (Monday 30 July, noon)
DEMO_ACTIVE = {
    "ana.silva@example.org",
    "zoe.muller@example.org",
    "chen.wei@example.org",
    "sam.taylor@example.org",
    "policy-watch@example.org",
}


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


class UnsureTransport(OutboxTransport):
    """An outbox that cannot tell whether an interrupted hand-off happened (as SMTP cannot)."""

    def delivered(self, message_id: str) -> None:
        return None


def outbox_messages(settings: Settings) -> dict[str, email.message.EmailMessage]:
    """Recipient address → the message the outbox holds for them (one each, or the test fails)."""
    found: dict[str, email.message.EmailMessage] = {}
    for path in OutboxTransport(settings.outbox_dir).messages():
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        address = message["To"].addresses[0].addr_spec
        assert address not in found, f"two messages for {address}"
        found[address] = message
    return found


def html_of(message: email.message.EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def ledger(db: sqlite_utils.Database) -> dict[str, str]:
    rows = db.execute(
        "SELECT s.email, d.status FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
    ).fetchall()
    return dict(rows)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path → bytes), to compare before and after."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith("posts.db")
    }


def dump(db: sqlite_utils.Database) -> list[str]:
    return list(db.conn.iterdump())


# --- a normal week ---------------------------------------------------------------------------


def test_first_run_creates_the_issue_and_each_active_subscriber_gets_one_message(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    result = publish(demo_db, settings, now=now)
    assert (result.status, result.issue, result.period) == ("sent", 1, PERIOD)
    assert (result.posts, result.recipients, result.sent, result.failed) == (5, 5, 5, 0)
    assert result.exit_code == 0
    assert set(outbox_messages(settings)) == DEMO_ACTIVE
    assert set(ledger(demo_db).values()) == {"sent"}
    issue = get_issue_by_period(demo_db, PERIOD)
    assert issue is not None and issue.status == "sent" and issue.sent_at == now


def test_each_chapter_gets_its_own_variant_with_its_posts_and_intro(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now)
    messages = outbox_messages(settings)
    swiss = html_of(messages["ana.silva@example.org"])
    vancouver = html_of(messages["chen.wei@example.org"])
    everyone = html_of(messages["policy-watch@example.org"])
    assert "What the ITU meetings in Geneva and Dubai mean" in swiss
    assert "IETF 84 is in our city this week" in vancouver
    assert "Beijing Treaty" not in swiss and "Beijing Treaty" in vancouver
    assert "ITU Council" in swiss and "ITU Council" not in vancouver
    assert "ITU Council" in everyone and "Beijing Treaty" in everyone


def test_second_publish_in_same_period_sends_nothing(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    publish(demo_db, settings, now=now)
    before = tree(tmp_path)
    again = publish(demo_db, settings, now=now + timedelta(hours=5))
    assert (again.status, again.issue, again.sent, again.recipients) == ("already_sent", 1, 0, 5)
    assert again.exit_code == 0
    assert tree(tmp_path) == before


def test_nothing_new_creates_nothing_and_writes_nothing(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    publish(demo_db, settings, now=now)
    before, rows = tree(tmp_path), dump(demo_db)
    next_week = publish(demo_db, settings, now=now + timedelta(days=7))
    assert (next_week.status, next_week.issue, next_week.period) == (
        "nothing_new",
        None,
        "2012-08-06T08:00",
    )
    assert next_week.exit_code == 0
    assert tree(tmp_path) == before
    assert dump(demo_db) == rows


def test_a_post_published_after_the_issue_waits_for_the_next_period(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now)
    with demo_db.conn:
        demo_db.execute(
            "INSERT INTO posts (slug, title, status, published_at, updated_at, created_at) "
            "VALUES ('late', 'A late post', 'published', ?, ?, ?)",
            ["2012-07-31T09:00:00Z"] * 3,
        )
    assert publish(demo_db, settings, now=now + timedelta(days=1)).status == "already_sent"
    following = publish(demo_db, settings, now=now + timedelta(days=7))
    assert (following.status, following.issue, following.posts) == ("sent", 2, 1)


def test_dry_run_renders_and_reports_but_writes_nothing_at_all(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    before, rows = tree(tmp_path), dump(demo_db)
    result = publish(demo_db, settings, now=now, dry_run=True)
    assert (result.status, result.issue, result.posts, result.recipients) == ("dry_run", 1, 5, 5)
    assert [(v.chapter, v.posts, v.recipients) for v in result.variants] == [
        (None, 5, 1),
        ("switzerland", 2, 2),
        ("vancouver", 3, 2),
    ]
    assert all(v.bytes > 5_000 for v in result.variants)
    assert tree(tmp_path) == before
    assert dump(demo_db) == rows
    assert not settings.outbox_dir.exists() and not settings.output_dir.exists()


def test_render_and_inlining_happen_once_per_variant_never_per_recipient(
    demo_db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for n in range(30):
        add_subscriber(demo_db, f"reader{n}@example.org", now=now)
    calls: list[int] = []
    inline = policyfeed.digest.render.inline_css

    def counting_inline(html: str) -> str:
        calls.append(1)
        return inline(html)

    monkeypatch.setattr(policyfeed.digest.render, "inline_css", counting_inline)
    result = publish(demo_db, settings, now=now)
    assert result.sent == 35
    # the whole issue, each of the two chapters, and the preflight's one try of the template
    assert len(calls) == 4


# --- chapters ---------------------------------------------------------------------------------


def test_a_chapter_whose_filter_leaves_no_posts_gets_nothing_that_period(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    with demo_db.conn:
        demo_db.execute("INSERT INTO topics (slug, name) VALUES ('dns', 'DNS')")
    add_chapter(demo_db, slug="dns-people", name="DNS people", topics=["dns"])
    add_subscriber(demo_db, "resolver@example.org", now=now, chapter="dns-people")
    result = publish(demo_db, settings, now=now)
    assert (result.status, result.sent, result.recipients) == ("sent", 5, 6)
    assert "resolver@example.org" not in outbox_messages(settings)
    row = demo_db.execute(
        "SELECT d.status, d.last_error FROM deliveries d JOIN subscribers s "
        "ON s.id = d.subscriber_id WHERE s.email = 'resolver@example.org'"
    ).fetchone()
    assert tuple(row) == ("skipped", "no posts for DNS people")


# --- interrupted deliveries -------------------------------------------------------------------


def test_a_relay_outage_leaves_a_partial_delivery_that_the_next_run_resumes(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    first = publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 2))
    assert (first.status, first.sent, first.pending) == ("partial", 2, 3)
    assert first.exit_code == EXIT_TEMPFAIL
    assert "421" in first.message
    issue = get_issue_by_period(demo_db, PERIOD)
    assert issue is not None and issue.status == "sending"  # not sent until every row settles
    resumed = publish(demo_db, settings, now=now + timedelta(hours=1))
    assert (resumed.status, resumed.issue, resumed.sent, resumed.pending) == ("resumed", 1, 3, 0)
    assert set(outbox_messages(settings)) == DEMO_ACTIVE
    issue = get_issue_by_period(demo_db, PERIOD)
    assert issue is not None and issue.status == "sent"


def test_the_ledger_is_frozen_when_delivery_starts(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 1))
    add_subscriber(demo_db, "newcomer@example.org", now=now + timedelta(minutes=30))
    unsubscribe(demo_db, "policy-watch@example.org", now=now + timedelta(minutes=30))
    resumed = publish(demo_db, settings, now=now + timedelta(hours=1))
    assert resumed.recipients == 5
    received = set(outbox_messages(settings))
    assert "newcomer@example.org" not in received  # waits for the next issue
    assert "policy-watch@example.org" not in received  # left after the issue started
    assert ledger(demo_db)["policy-watch@example.org"] == "skipped"
    assert resumed.status == "resumed"


def test_a_row_left_sending_over_smtp_needs_resend_ambiguous(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 1))
    with demo_db.conn:  # as if a run died while handing a message to the relay
        demo_db.execute(
            "UPDATE deliveries SET status = 'sending' WHERE id = "
            "(SELECT min(id) FROM deliveries WHERE status = 'pending')"
        )
    unsure = publish(demo_db, settings, now=now, transport=UnsureTransport(settings.outbox_dir))
    assert (unsure.status, unsure.ambiguous, unsure.sent) == ("ambiguous", 1, 3)
    assert unsure.exit_code == EXIT_ERROR
    assert "--resend-ambiguous" in unsure.message
    assert len(outbox_messages(settings)) == 4
    settled = publish(
        demo_db,
        settings,
        now=now,
        transport=UnsureTransport(settings.outbox_dir),
        resend_ambiguous=True,
    )
    assert (settled.status, settled.sent, settled.ambiguous) == ("resumed", 1, 0)
    assert set(outbox_messages(settings)) == DEMO_ACTIVE


def test_the_outbox_settles_a_row_left_sending_without_being_asked(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 1))
    with demo_db.conn:  # one whose file was written, one whose file was not
        demo_db.execute("UPDATE deliveries SET status = 'sending' WHERE status = 'sent'")
        demo_db.execute(
            "UPDATE deliveries SET status = 'sending' WHERE id = "
            "(SELECT min(id) FROM deliveries WHERE status = 'pending')"
        )
    result = publish(demo_db, settings, now=now)
    assert (result.status, result.ambiguous, result.resolved, result.sent) == ("resumed", 0, 1, 4)
    assert set(outbox_messages(settings)) == DEMO_ACTIVE  # still one message each


# --- lateness ----------------------------------------------------------------------------------


def test_a_fresh_issue_for_the_current_period_is_never_too_late(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    thursday = now + timedelta(days=3)  # the machine was off on Monday
    result = publish(demo_db, settings, now=thursday)
    assert (result.status, result.period) == ("sent", PERIOD)


def test_resuming_an_issue_that_began_longer_ago_than_max_lateness_is_refused_unless_forced(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 2))
    thursday = now + timedelta(days=3)
    with pytest.raises(StalePeriodError, match=r"issue 1 .* began going out 3 days ago.*--force"):
        publish(demo_db, settings, now=thursday)
    assert len(outbox_messages(settings)) == 2
    assert publish(demo_db, settings, now=thursday, max_lateness=timedelta(days=4)).status == (
        "resumed"
    )


def test_a_crashed_run_picked_up_soon_after_goes_on_even_late_in_the_period(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    thursday = now + timedelta(days=3)  # the period began on Monday; this issue on Thursday
    publish(demo_db, settings, now=thursday, transport=FlakyOutbox(settings.outbox_dir, 2))
    resumed = publish(demo_db, settings, now=thursday + timedelta(hours=1))
    assert (resumed.status, resumed.period, resumed.sent) == ("resumed", PERIOD, 3)


def test_force_mails_a_stale_period(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 2))
    forced = publish(demo_db, settings, now=now + timedelta(days=3), force=True)
    assert (forced.status, forced.sent) == ("resumed", 3)


def test_an_explicit_old_period_is_refused_without_force_and_nothing_is_written(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    before, rows = tree(tmp_path), dump(demo_db)
    with pytest.raises(StalePeriodError, match="2012-07-16T08:00 was scheduled 14 days ago"):
        publish(demo_db, settings, now=now, period="2012-07-16T08:00")
    assert (tree(tmp_path), dump(demo_db)) == (before, rows)
    forced = publish(demo_db, settings, now=now, period="2012-07-16 08:00", force=True)
    assert (forced.status, forced.period) == ("sent", "2012-07-16T08:00")


def test_an_explicit_period_wins_over_the_schedule(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    daily = replace(settings, schedule="0 8 * * *")
    result = publish(demo_db, daily, now=now, period="2012-07-29T08:00")
    assert (result.status, result.period) == ("sent", "2012-07-29T08:00")
    assert publish(demo_db, daily, now=now).status == "nothing_new"


# --- configuration ----------------------------------------------------------------------------


def test_smtp_without_a_secret_is_refused_before_anything_is_written(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    relay = replace(settings, smtp_host="127.0.0.1")
    rows = dump(demo_db)
    with pytest.raises(ConfigError, match="POLICYFEED_SECRET"):
        publish(demo_db, relay, now=now)
    assert dump(demo_db) == rows


def test_the_outbox_without_a_secret_uses_the_development_key_and_says_so(
    demo_db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    publish(demo_db, settings, now=now)
    assert "POLICYFEED_SECRET is not set" in caplog.text


def test_no_issue_is_made_without_subscribers_and_the_posts_wait(
    db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    from policyfeed.content.importers import import_posts

    demo_posts = Path(__file__).resolve().parent.parent / "demo" / "posts.json"
    import_posts(
        db, demo_posts, fmt="json", base_url=settings.base_url, tz=settings.tz,
        domain=settings.domain, now=now,
    )  # fmt: skip
    result = publish(db, settings, now=now)
    assert (result.status, result.issue, result.posts, result.sent) == ("no_recipients", None, 5, 0)
    assert publish(db, settings, now=now).status == "no_recipients"  # the posts still wait


def test_the_result_is_one_json_ready_object(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    data = publish(demo_db, settings, now=now).as_json()
    for key in ("status", "issue", "period", "posts", "recipients", "sent", "failed", "skipped"):
        assert key in data
    assert isinstance(data["duration"], float)
    assert PublishResult("nothing_new", PERIOD).summary().startswith("nothing_new: no issue")


def test_every_message_is_in_the_ledger_under_its_message_id(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now)
    ids = {row[0] for row in demo_db.execute("SELECT message_id FROM deliveries")}
    files = {p.name for p in OutboxTransport(settings.outbox_dir).messages()}
    assert ids == files
    for message in outbox_messages(settings).values():
        assert message["Message-ID"].strip("<>") in ids


def test_every_time_stamped_comes_from_the_given_now(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now)
    stamps = {
        row[0]
        for row in demo_db.execute(
            "SELECT updated_at FROM deliveries UNION SELECT created_at FROM issues"
        )
    }
    assert stamps == {"2012-07-30T12:00:00Z"}


def test_sqlite_sees_a_consistent_ledger_from_another_connection(
    demo_db: sqlite_utils.Database, demo_db_path: Path, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 3))
    with sqlite3.connect(demo_db_path) as other:
        counts = dict(other.execute("SELECT status, count(*) FROM deliveries GROUP BY status"))
    assert counts == {"sent": 3, "pending": 2}


def test_the_site_and_the_issue_page_exist_before_the_first_message_goes_out(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    seen: list[bool] = []

    class Watching(OutboxTransport):
        def stage(self, message: bytes, **envelope: Any) -> bool:
            out = settings.output_dir
            seen.append(
                (out / "issues" / "1" / "index.html").exists() and (out / "feed.xml").exists()
            )
            return super().stage(message, **envelope)

    result = publish(demo_db, settings, now=now, transport=Watching(settings.outbox_dir))
    assert result.site_files > 0
    assert seen == [True] * 5


def _swiss_chapter_follows_dns_only(db: sqlite_utils.Database) -> None:
    with db.conn:  # a topic none of the issue's posts has
        db.execute("INSERT INTO topics (slug, name) VALUES ('dns', 'DNS')")
        db.execute(
            "DELETE FROM chapter_topics WHERE chapter_id = "
            "(SELECT id FROM chapters WHERE slug = 'switzerland')"
        )
        db.execute(
            "INSERT INTO chapter_topics SELECT c.id, t.id FROM chapters c, topics t "
            "WHERE c.slug = 'switzerland' AND t.slug = 'dns'"
        )


def test_a_chapter_whose_topics_change_while_its_issue_goes_out_gets_what_it_began_with(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 0))
    _swiss_chapter_follows_dns_only(demo_db)
    resumed = publish(demo_db, settings, now=now + timedelta(hours=1))
    assert (resumed.status, resumed.sent, resumed.skipped) == ("resumed", 5, 0)
    swiss = html_of(outbox_messages(settings)["ana.silva@example.org"])
    assert "ITU Council" in swiss and "Beijing Treaty" not in swiss  # its variant, frozen


def test_a_chapter_left_with_no_posts_while_its_issue_was_going_out_is_skipped_not_misdelivered(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    # Rows frozen before their variants were recorded (an issue begun by an older policyfeed)
    # follow their chapter as it is now.
    publish(demo_db, settings, now=now, transport=FlakyOutbox(settings.outbox_dir, 0))
    with demo_db.conn:
        demo_db.execute("UPDATE deliveries SET variant_id = NULL")
        demo_db.execute("DELETE FROM delivery_variants")
    _swiss_chapter_follows_dns_only(demo_db)
    resumed = publish(demo_db, settings, now=now + timedelta(hours=1))
    assert (resumed.status, resumed.sent, resumed.skipped) == ("resumed", 3, 2)
    assert ledger(demo_db)["ana.silva@example.org"] == "skipped"
    assert set(outbox_messages(settings)) == DEMO_ACTIVE - {
        "ana.silva@example.org",
        "zoe.muller@example.org",
    }
