"""The queries of a build use the indexes: the main feeds read only the posts they show, and a
build after a new post never scans the posts, topics or journal tables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sqlite_utils

from policyfeed.config import Settings
from policyfeed.model import make_guid
from policyfeed.site.build import build_site
from policyfeed.store import memory_db, to_db_time
from policyfeed.store.site import NEWEST_VISIBLE_SQL
from site_support import NOW, save, with_limit

TABLE_SCAN = re.compile(r"^SCAN (posts|p|post_topics|pt|post_journal)\b")
TOPICS = ["IETF", "ITU / WCIT", "Internet governance", "Trade agreements"]


def plan(db: sqlite_utils.Database, sql: str, params: Any = ()) -> list[str]:
    return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params or []).fetchall()]


def bulk_site(settings: Settings, count: int) -> sqlite_utils.Database:
    """A database with ``count`` published posts, one every six hours before NOW, 1-2 topics."""
    db = memory_db()
    db["topics"].insert_all(
        [{"id": i + 1, "slug": f"topic-{i + 1}", "name": name} for i, name in enumerate(TOPICS)]
    )
    posts, links = [], []
    for n in range(1, count + 1):
        date = NOW - timedelta(hours=6 * (count - n + 1))
        stamp = to_db_time(date)
        posts.append(
            {"id": n, "guid": make_guid(settings.domain, date, f"post-{n}"), "slug": f"post-{n}",
             "title": f"Post {n}", "summary": f"About {n}.", "body_html": f"<p>Body {n}</p>",
             "body_text": f"Body {n}", "author": "", "url": None, "status": "published",
             "published_at": stamp, "updated_at": stamp, "created_at": stamp}
        )  # fmt: skip
        links.append({"post_id": n, "topic_id": n % 4 + 1})
        if n % 3 == 0:
            links.append({"post_id": n, "topic_id": (n + 1) % 4 + 1})
    with db.conn:
        db["posts"].insert_all(posts)
        db["post_topics"].insert_all(links)
    return db


@pytest.fixture
def no_fsync() -> Iterator[None]:
    # Durability is output.py's business: skip fsync so that the many small files are quick.
    with mock.patch("os.fsync"):
        yield


def test_the_main_feed_query_uses_the_date_index_and_reads_only_the_posts_it_shows(
    settings: Settings,
) -> None:
    db = bulk_site(settings, 50)
    details = plan(db, NEWEST_VISIBLE_SQL, [to_db_time(NOW), 5])
    assert len(details) == 1, details
    assert details[0].startswith("SEARCH posts USING COVERING INDEX posts_status_published")
    assert "published_at<?" in details[0]  # a range of the index, newest first, stops at LIMIT
    # and the posts shown are then read by primary key
    by_id = plan(db, "SELECT * FROM posts WHERE id IN (?, ?, ?)", [1, 2, 3])
    assert by_id == ["SEARCH posts USING INTEGER PRIMARY KEY (rowid=?)"]


def traced_build(db: sqlite_utils.Database, settings: Settings, out: Path) -> list[tuple[str, Any]]:
    queries: list[tuple[str, Any]] = []

    def trace(sql: str, params: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            queries.append((sql, params))

    with db.tracer(trace):
        build_site(db, settings, out, NOW)
    return queries


def test_a_build_after_a_new_post_reads_through_indexes_only(
    settings: Settings, tmp_path: Path, no_fsync: None
) -> None:
    settings = with_limit(settings, 5)
    db = bulk_site(settings, 300)
    build_site(db, settings, tmp_path, NOW)
    save(db, settings, "fresh-news", date=NOW, topics=["IETF"])
    queries = traced_build(db, settings, tmp_path)
    assert queries
    for sql, params in queries:
        details = plan(db, sql, params)
        assert not [d for d in details if TABLE_SCAN.match(d)], (sql, details)


def test_a_build_after_a_new_post_does_about_the_same_database_work_on_ten_times_the_posts(
    settings: Settings, tmp_path: Path, no_fsync: None
) -> None:
    """Counted in SQLite virtual-machine steps, which do not depend on the machine's speed."""
    settings = with_limit(settings, 5)
    steps = {}
    for count in (60, 600):
        db = bulk_site(settings, count)
        out = tmp_path / str(count)
        build_site(db, settings, out, NOW)
        save(db, settings, "fresh-news", date=NOW, topics=["IETF"])
        counter = [0]

        def tick(counter: list[int] = counter) -> int:
            counter[0] += 1
            return 0

        db.conn.set_progress_handler(tick, 10)
        build_site(db, settings, out, NOW)
        db.conn.set_progress_handler(None, 0)
        steps[count] = counter[0]
    assert steps[600] <= 1.5 * steps[60], steps
