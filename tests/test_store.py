"""The post store: PRAGMAs, queries served by the index, full-text search, saving and deleting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from policyfeed.content.posts import draft_from_record
from policyfeed.errors import ConflictError, NotFoundError
from policyfeed.model import PostDraft, Topic
from policyfeed.store import from_db_time, open_db, to_db_time, transaction
from policyfeed.store import posts as store

BASE = "https://policy.example.org/"
DOMAIN = "policy.example.org"
NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)


def make_draft(**fields: Any) -> PostDraft:
    record = {"title": "A post", **fields}
    return draft_from_record(record, base_url=BASE, tz=UTC, source="test", where="record 1")


def add(db: sqlite_utils.Database, now: datetime = NOW, **fields: Any) -> int:
    with transaction(db):
        return store.save_post(db, make_draft(**fields), now=now, domain=DOMAIN)


def query_plan(db: sqlite_utils.Database, sql: str, params: list[Any]) -> str:
    rows = db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return "\n".join(row[3] for row in rows)


def select_sql(trace: list[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """The one statement that read posts (not the topics lookup that follows it)."""
    reads = [(sql, params) for sql, params in trace if "FROM posts WHERE" in sql]
    assert len(reads) == 1, reads
    sql, params = reads[0]
    return sql, list(params or [])


@pytest.fixture
def many_posts(db: sqlite_utils.Database) -> sqlite_utils.Database:
    """Enough rows (published and drafts) for the planner to prefer the index honestly."""
    start = datetime(2012, 1, 1, 9, 0, tzinfo=UTC)
    with transaction(db):
        for n in range(300):
            fields: dict[str, Any] = {"title": f"Post {n}", "slug": f"post-{n}"}
            if n % 3:
                fields["published_at"] = (start + timedelta(days=n)).isoformat()
            store.save_post(db, make_draft(**fields), now=NOW, domain=DOMAIN)
    db.execute("ANALYZE")
    return db


# --- opening ---------------------------------------------------------------------------------


def test_open_sets_wal_foreign_keys_and_a_busy_timeout(db: sqlite_utils.Database) -> None:
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_foreign_keys_remove_topic_links_with_their_post(db: sqlite_utils.Database) -> None:
    post_id = add(db, slug="linked", topics=["IETF"])
    with transaction(db):
        db.execute("DELETE FROM posts WHERE id = ?", [post_id])
    assert db.execute("SELECT count(*) FROM post_topics").fetchone()[0] == 0


def test_times_are_stored_as_utc_text_that_sorts_as_time() -> None:
    zurich_summer = datetime(2012, 7, 25, 18, 0, tzinfo=UTC) + timedelta(hours=0)
    assert to_db_time(zurich_summer) == "2012-07-25T18:00:00Z"
    assert from_db_time("2012-07-25T18:00:00Z") == zurich_summer
    with pytest.raises(ValueError, match="naive"):
        to_db_time(datetime(2012, 7, 25, 18, 0))


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.timezones()
    )
)
def test_stored_time_is_the_utc_second_in_the_stored_form(moment: datetime) -> None:
    assert to_db_time(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the (status, published_at) index ----------------------------------------------------------


def test_latest_published_is_served_by_the_status_date_index(
    many_posts: sqlite_utils.Database,
) -> None:
    trace: list[tuple[str, Any]] = []
    traced = sqlite_utils.Database(many_posts.conn, tracer=lambda sql, p: trace.append((sql, p)))
    posts = store.latest_published(traced, now=NOW, limit=10)
    assert len(posts) == 10
    plan = query_plan(many_posts, *select_sql(trace))
    assert "USING INDEX posts_status_published" in plan
    assert "SCAN posts" not in plan


def test_published_since_is_served_by_the_status_date_index(
    many_posts: sqlite_utils.Database,
) -> None:
    trace: list[tuple[str, Any]] = []
    traced = sqlite_utils.Database(many_posts.conn, tracer=lambda sql, p: trace.append((sql, p)))
    since = datetime(2012, 7, 1, tzinfo=UTC)
    posts = store.published_since(traced, since=since, now=NOW)
    assert posts
    plan = query_plan(many_posts, *select_sql(trace))
    assert "USING INDEX posts_status_published" in plan
    assert "SCAN posts" not in plan


def test_count_published_is_served_by_the_status_date_index(
    many_posts: sqlite_utils.Database,
) -> None:
    plan = query_plan(
        many_posts,
        "SELECT count(*) FROM posts WHERE status = ? AND published_at <= ?",
        ["published", to_db_time(NOW)],
    )
    assert "posts_status_published" in plan
    assert "SCAN posts" not in plan
    # Published: n % 3 != 0, dated 2012-01-01 + n days, up to NOW (n <= 211).
    assert store.count_published(many_posts, now=NOW) == 141


# --- reading ---------------------------------------------------------------------------------


def test_latest_published_is_newest_first_and_leaves_out_drafts_and_future_posts(
    db: sqlite_utils.Database,
) -> None:
    add(db, slug="old", published_at="2012-07-09T09:00:00Z")
    add(db, slug="new", published_at="2012-07-25T09:00:00Z")
    add(db, slug="draft")
    add(db, slug="scheduled", published_at="2012-08-01T09:00:00Z")
    assert [p.slug for p in store.latest_published(db, now=NOW, limit=10)] == ["new", "old"]
    assert [p.slug for p in store.latest_published(db, now=NOW, limit=1, offset=1)] == ["old"]
    assert store.count_published(db, now=NOW) == 2


def test_latest_published_for_one_topic(db: sqlite_utils.Database) -> None:
    add(db, slug="ietf", published_at="2012-07-25", topics=["IETF"])
    add(db, slug="itu", published_at="2012-07-24", topics=["ITU / WCIT"])
    posts = store.latest_published(db, now=NOW, limit=10, topic="itu-wcit")
    assert [p.slug for p in posts] == ["itu"]
    assert posts[0].topics == [Topic("itu-wcit", "ITU / WCIT")]
    assert store.count_published(db, now=NOW, topic="ietf") == 1
    assert store.count_published(db, now=NOW, topic="nothing") == 0


def test_published_since_is_oldest_first_after_since_up_to_now(db: sqlite_utils.Database) -> None:
    add(db, slug="before", published_at="2012-07-20T08:00:00Z")
    add(db, slug="at-since", published_at="2012-07-23T08:00:00Z")
    add(db, slug="second", published_at="2012-07-25T09:00:00Z")
    add(db, slug="first", published_at="2012-07-24T09:00:00Z")
    add(db, slug="at-now", published_at=NOW.isoformat())
    add(db, slug="after-now", published_at="2012-07-31T09:00:00Z")
    since = datetime(2012, 7, 23, 8, 0, tzinfo=UTC)
    posts = store.published_since(db, since=since, now=NOW)
    assert [p.slug for p in posts] == ["first", "second", "at-now"]


def test_list_posts_shows_undated_drafts_first_then_newest(db: sqlite_utils.Database) -> None:
    add(db, slug="older", published_at="2012-07-09")
    add(db, slug="draft")
    add(db, slug="newer", published_at="2012-07-25")
    assert [p.slug for p in store.list_posts(db)] == ["draft", "newer", "older"]
    assert [p.slug for p in store.list_posts(db, status="published")] == ["newer", "older"]
    assert [p.slug for p in store.list_posts(db, limit=1, offset=1)] == ["newer"]


def test_get_post_of_an_unknown_slug_is_not_found(db: sqlite_utils.Database) -> None:
    with pytest.raises(NotFoundError, match="no post with slug 'nope'"):
        store.get_post(db, "nope")


def test_get_posts_by_ids_keeps_the_order_asked_for(db: sqlite_utils.Database) -> None:
    first = add(db, slug="first")
    second = add(db, slug="second")
    third = add(db, slug="third")
    posts = store.get_posts_by_ids(db, [third, first, 999, second])
    assert [p.slug for p in posts] == ["third", "first", "second"]


def test_topics_are_shared_between_posts_and_counted_when_published(
    db: sqlite_utils.Database,
) -> None:
    add(db, slug="a", published_at="2012-07-25", topics=["IETF", "Internet governance"])
    add(db, slug="b", published_at="2012-07-24", topics=["Internet governance"])
    add(db, slug="c", topics=["IETF"])
    assert store.list_topics(db) == [
        (Topic("ietf", "IETF"), 1),
        (Topic("internet-governance", "Internet governance"), 2),
    ]
    ids = [add(db, slug="d", topics=["IETF"]), 12345]
    assert store.topics_for_posts(db, ids) == {ids[0]: [Topic("ietf", "IETF")]}


def test_newest_change_is_the_latest_update_among_the_posts(db: sqlite_utils.Database) -> None:
    first = add(db, slug="first", published_at="2012-07-09", updated_at="2012-07-20T10:00:00Z")
    second = add(db, slug="second", published_at="2012-07-11", updated_at="2012-07-12T10:00:00Z")
    assert store.newest_change(db, [first, second]) == datetime(2012, 7, 20, 10, tzinfo=UTC)
    assert store.newest_change(db, [second]) == datetime(2012, 7, 12, 10, tzinfo=UTC)
    assert store.newest_change(db, []) is None


# --- full-text search ------------------------------------------------------------------------


@pytest.fixture
def searchable(db: sqlite_utils.Database) -> sqlite_utils.Database:
    add(db, slug="title-hit", title="Beijing Treaty signed", published_at="2012-07-01")
    add(
        db,
        slug="summary-hit",
        summary="Performers in Beijing get new rights.",
        published_at="2012-07-02",
    )
    add(db, slug="body-hit", body="<p>The treaty was signed in <b>Vancouver</b>.</p>")
    add(db, slug="other", title="ITU-T and WTSA: the Council's referral", published_at="2012-07-03")
    return db


def slugs_found(db: sqlite_utils.Database, query: str) -> set[str]:
    return {p.slug for p in store.search_posts(db, query)}


def test_search_finds_words_in_title_summary_and_body(searchable: sqlite_utils.Database) -> None:
    assert slugs_found(searchable, "beijing") == {"title-hit", "summary-hit"}
    assert slugs_found(searchable, "Vancouver") == {"body-hit"}
    assert slugs_found(searchable, "treaty signed") == {"title-hit", "body-hit"}


def test_search_survives_punctuation_and_fts_syntax(searchable: sqlite_utils.Database) -> None:
    assert slugs_found(searchable, "ITU-T") == {"other"}
    assert slugs_found(searchable, "council's") == {"other"}
    assert slugs_found(searchable, 'WTSA: "referral"') == {"other"}
    assert slugs_found(searchable, "NEAR( OR AND *") == set()
    assert slugs_found(searchable, "!!! ???") == set()
    assert slugs_found(searchable, "   ") == set()


def test_search_follows_edits_and_deletes(searchable: sqlite_utils.Database) -> None:
    post = store.get_post(searchable, "body-hit")
    with transaction(searchable):
        store.save_post(
            searchable,
            make_draft(slug="body-hit", body="<p>Now about Geneva.</p>"),
            now=NOW,
            domain=DOMAIN,
            post_id=post.id,
        )
    assert slugs_found(searchable, "vancouver") == set()
    assert slugs_found(searchable, "geneva") == {"body-hit"}
    store.delete_post(searchable, "body-hit")
    assert slugs_found(searchable, "geneva") == set()


def test_search_puts_the_best_match_first(db: sqlite_utils.Database) -> None:
    add(db, slug="passing", title="Weekly notes", body="<p>Also, ACTA came up.</p>",
        published_at="2012-07-25")  # fmt: skip
    add(db, slug="about-acta", title="ACTA and the TPPA", summary="Why ACTA matters.",
        body="<p>ACTA, ACTA and ACTA.</p>", published_at="2012-07-09")  # fmt: skip
    assert [p.slug for p in store.search_posts(db, "acta")] == ["about-acta", "passing"]
    assert [p.slug for p in store.search_posts(db, "acta", limit=1)] == ["about-acta"]


# --- saving ----------------------------------------------------------------------------------


def test_saving_a_new_post_stores_every_field(db: sqlite_utils.Database) -> None:
    add(
        db,
        title="IETF 84",
        slug="ietf-84",
        summary="We meet in Vancouver.",
        body="<p>Hello</p>",
        author="Policy team",
        # A url that is the post's own page is not stored (its permalink says so): one elsewhere.
        url="https://www.internetsociety.org/ietf-84/",
        topics=["IETF"],
        published_at="2012-07-25T09:00:00Z",
    )
    post = store.get_post(db, "ietf-84")
    assert (post.title, post.summary, post.body_html, post.body_text, post.author) == (
        "IETF 84",
        "We meet in Vancouver.",
        "<p>Hello</p>",
        "Hello",
        "Policy team",
    )
    assert post.url == "https://www.internetsociety.org/ietf-84/"
    assert post.status == "published"
    assert post.published_at == datetime(2012, 7, 25, 9, tzinfo=UTC)
    assert post.updated_at == post.published_at
    assert post.created_at == NOW
    assert post.topics == [Topic("ietf", "IETF")]


def test_a_slug_used_by_another_post_is_a_conflict(db: sqlite_utils.Database) -> None:
    add(db, slug="taken")
    other = add(db, slug="other")
    with pytest.raises(ConflictError, match="slug 'taken' is already used by another post"):
        store.save_post(db, make_draft(slug="taken"), now=NOW, domain=DOMAIN, post_id=other)
    with pytest.raises(ConflictError, match="slug 'taken'"):
        store.save_post(db, make_draft(slug="taken"), now=NOW, domain=DOMAIN)


def test_a_guid_used_by_another_post_is_a_conflict(db: sqlite_utils.Database) -> None:
    add(db, slug="first", guid="urn:x:1")
    with pytest.raises(ConflictError, match="guid 'urn:x:1' is already used by post 'first'"):
        store.save_post(db, make_draft(slug="second", guid="urn:x:1"), now=NOW, domain=DOMAIN)


def test_saving_an_unknown_post_id_is_not_found(db: sqlite_utils.Database) -> None:
    with pytest.raises(NotFoundError):
        store.save_post(db, make_draft(slug="ghost"), now=NOW, domain=DOMAIN, post_id=404)


def test_an_update_without_status_or_date_keeps_them(db: sqlite_utils.Database) -> None:
    post_id = add(db, slug="kept", published_at="2012-07-11T09:00:00Z")
    later = NOW + timedelta(days=3)
    with transaction(db):
        store.save_post(
            db, make_draft(slug="kept", title="New title"), now=later, domain=DOMAIN,
            post_id=post_id,
        )  # fmt: skip
    post = store.get_post(db, "kept")
    assert post.title == "New title"
    assert post.status == "published"
    assert post.published_at == datetime(2012, 7, 11, 9, tzinfo=UTC)
    assert post.updated_at == later


def test_an_unchanged_save_keeps_updated_at_but_a_topic_change_bumps_it(
    db: sqlite_utils.Database,
) -> None:
    fields = {"slug": "same", "published_at": "2012-07-11T09:00:00Z", "topics": ["IETF"]}
    post_id = add(db, **fields)
    first = store.get_post(db, "same").updated_at
    with transaction(db):
        store.save_post(db, make_draft(**fields), now=NOW, domain=DOMAIN, post_id=post_id)
    assert store.get_post(db, "same").updated_at == first
    changed = {**fields, "topics": ["IETF", "Trade agreements"]}
    with transaction(db):
        store.save_post(db, make_draft(**changed), now=NOW, domain=DOMAIN, post_id=post_id)
    assert store.get_post(db, "same").updated_at == NOW


def test_publishing_a_draft_without_a_date_dates_it_now(db: sqlite_utils.Database) -> None:
    add(db, slug="draft")
    post = store.set_status(db, "draft", "published", now=NOW, domain=DOMAIN)
    assert (post.status, post.published_at) == ("published", NOW)


def test_publishing_a_published_post_again_changes_nothing(db: sqlite_utils.Database) -> None:
    add(db, slug="live", published_at="2012-07-25T09:00:00Z")
    before = store.get_post(db, "live")
    again = store.set_status(db, "live", "published", now=NOW, domain=DOMAIN)
    assert again == before
    assert store.get_post(db, "live").updated_at == datetime(2012, 7, 25, 9, tzinfo=UTC)


def test_deleting_a_post_that_went_out_in_an_issue_is_refused(db: sqlite_utils.Database) -> None:
    post_id = add(db, slug="sent", published_at="2012-07-25")
    with transaction(db):
        db.execute(
            "INSERT INTO issues (id, number, period, created_at, updated_at) "
            "VALUES (1, 1, '2012-W30', '2012-07-30T08:00:00Z', '2012-07-30T08:00:00Z')"
        )
        db.execute("INSERT INTO issue_posts VALUES (1, ?, 1)", [post_id])
    with pytest.raises(ConflictError, match="part of an issue"):
        store.delete_post(db, "sent")
    assert store.get_post(db, "sent").id == post_id


def test_delete_removes_the_post(db: sqlite_utils.Database) -> None:
    add(db, slug="gone")
    store.delete_post(db, "gone")
    with pytest.raises(NotFoundError):
        store.get_post(db, "gone")


def test_a_second_connection_sees_committed_posts(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    add(db, slug="shared", published_at="2012-07-25")
    other = open_db(tmp_path / "test.db")
    assert [p.slug for p in store.list_posts(other)] == ["shared"]
    other.conn.close()


# --- transactions ----------------------------------------------------------------------------


def test_a_transaction_rolls_back_every_write_when_one_fails(db: sqlite_utils.Database) -> None:
    add(db, slug="taken")
    with pytest.raises(ConflictError), transaction(db):
        store.save_post(db, make_draft(slug="first-new"), now=NOW, domain=DOMAIN)
        store.save_post(db, make_draft(slug="second-new", topics=["IETF"]), now=NOW, domain=DOMAIN)
        store.save_post(db, make_draft(slug="taken"), now=NOW, domain=DOMAIN)
    assert [p.slug for p in store.list_posts(db)] == ["taken"]
    assert store.list_topics(db) == []
    assert not db.conn.in_transaction


def test_a_nested_transaction_undoes_only_its_own_writes(db: sqlite_utils.Database) -> None:
    with transaction(db):
        store.save_post(db, make_draft(slug="outer"), now=NOW, domain=DOMAIN)
        with pytest.raises(RuntimeError), transaction(db):
            store.save_post(db, make_draft(slug="inner"), now=NOW, domain=DOMAIN)
            raise RuntimeError("inner block fails")
    assert [p.slug for p in store.list_posts(db)] == ["outer"]


def test_writes_in_a_transaction_are_invisible_to_others_until_it_ends(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    other = open_db(tmp_path / "test.db")
    with transaction(db):
        store.save_post(db, make_draft(slug="pending"), now=NOW, domain=DOMAIN)
        assert store.list_posts(other) == []
    assert [p.slug for p in store.list_posts(other)] == ["pending"]
    other.conn.close()


def test_a_bulk_save_finds_what_was_stored_before_and_what_it_wrote(
    db: sqlite_utils.Database,
) -> None:
    # find_post_id answers "no post" from memory for a bulk save; every slug, guid and imported
    # id stored before or written during the transaction must still be found.
    before = add(db, slug="before", published_at="2012-07-20", guid="legacy-7")
    bulk = store.BulkSave()
    with transaction(db):
        assert store.find_post_id(db, slug="before", bulk=bulk) == before
        assert store.find_post_id(db, slug="x", guid="legacy-7", bulk=bulk) == before
        first = store.save_post(
            db, make_draft(slug="first", published_at="2012-07-25"), now=NOW, domain=DOMAIN,
            bulk=bulk, looked_up=True,
        )  # fmt: skip
        generated = db.execute("SELECT guid FROM posts WHERE id = ?", [first]).fetchone()[0]
        assert generated == "tag:policy.example.org,2012-07-25:posts/first"
        assert store.find_post_id(db, slug="other", guid=generated, bulk=bulk) == first
        taken = "tag:policy.example.org,2012-07-27:posts/third"
        second = store.save_post(
            db, make_draft(slug="second", published_at="2012-07-26", guid=taken),
            now=NOW, domain=DOMAIN, bulk=bulk, looked_up=True,
        )  # fmt: skip
        store.save_post(
            db, make_draft(slug="first", published_at="2012-07-25"), now=NOW, domain=DOMAIN,
            post_id=first, bulk=bulk,
        )  # fmt: skip
        # The guid this post would get is the second's: it is made unique with its id.
        third = store.save_post(
            db, make_draft(slug="third", published_at="2012-07-27"), now=NOW, domain=DOMAIN,
            bulk=bulk, looked_up=True,
        )  # fmt: skip
        third_guid = db.execute("SELECT guid FROM posts WHERE id = ?", [third]).fetchone()[0]
        assert third_guid == f"{taken}-{third}"
        assert store.find_post_id(db, slug="none", guid=taken, bulk=bulk) == second
        assert store.find_post_id(db, slug="none", guid=third_guid, bulk=bulk) == third
        assert store.find_post_id(db, slug="second", bulk=bulk) == second
        assert store.find_post_id(db, slug="new", guid="new-id", bulk=bulk) is None
