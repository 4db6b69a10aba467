"""Queries for building the site: visible posts in feed order, the post journal, topics.

A post is *visible* when it is published and dated at or before the build's ``now``. Feed order
is the key ``(published_at, id)``: every query here walks the ``(status, published_at)`` index,
whose entries are ordered by that key, so none of them sorts or reads more rows than it returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlite_utils import Database

from policyfeed.model import Post, Topic
from policyfeed.store import to_db_time
from policyfeed.store.posts import get_posts_by_ids

#: A post's place in feed order: (published_at as stored, id).
Key = tuple[str, int]

_VISIBLE = "status = 'published' AND published_at <= ?"


@contextmanager
def read_snapshot(db: Database) -> Iterator[None]:
    """Hold one read transaction so that every query sees the same database state."""
    if db.conn.in_transaction:
        yield
        return
    db.conn.execute("BEGIN")
    try:
        yield
    finally:
        db.conn.execute("ROLLBACK")


# --- the journal ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalRow:
    """One change to a post (or its topics) and the values the post had before it."""

    seq: int
    post_id: int
    old_slug: str | None
    old_status: str | None
    old_published_at: str | None


def journal_head(db: Database) -> int:
    """The sequence number of the latest change (0 when nothing was ever recorded)."""
    row = db.execute("SELECT max(seq) FROM post_journal").fetchone()
    return int(row[0] or 0)


def journal_post_at(db: Database, seq: int) -> int | None:
    """The post changed at ``seq``: tells whether a saved sequence number is from this database."""
    row = db.execute("SELECT post_id FROM post_journal WHERE seq = ?", [seq]).fetchone()
    return int(row[0]) if row else None


def journal_since(db: Database, seq: int, head: int) -> list[JournalRow]:
    """Changes after ``seq`` up to ``head``, oldest first."""
    rows = db.execute(
        "SELECT seq, post_id, old_slug, old_status, old_published_at FROM post_journal "
        "WHERE seq > ? AND seq <= ? ORDER BY seq",
        [seq, head],
    ).fetchall()
    return [JournalRow(*row) for row in rows]


# --- visible posts --------------------------------------------------------------------------


def visible_keys_from(db: Database, *, now: datetime, start: Key | None) -> list[Key]:
    """Keys of visible posts from ``start`` (inclusive) to the newest, in feed order."""
    if start is None:
        rows = db.execute(
            f"SELECT published_at, id FROM posts WHERE {_VISIBLE} ORDER BY published_at, id",
            [to_db_time(now)],
        ).fetchall()
    else:
        rows = db.execute(
            f"SELECT published_at, id FROM posts WHERE {_VISIBLE} AND published_at >= ? "
            "ORDER BY published_at, id",
            [to_db_time(now), start[0]],
        ).fetchall()
    keys = [(published, int(post_id)) for published, post_id in rows]
    return keys if start is None else [key for key in keys if key >= start]


NEWEST_VISIBLE_SQL = (
    f"SELECT id FROM posts WHERE {_VISIBLE} ORDER BY published_at DESC, id DESC LIMIT ?"
)


def newest_visible(db: Database, *, now: datetime, limit: int) -> list[Post]:
    """The newest ``limit`` visible posts, newest first; reads only those rows."""
    ids = [int(r[0]) for r in db.execute(NEWEST_VISIBLE_SQL, [to_db_time(now), int(limit)])]
    return get_posts_by_ids(db, ids)


def changed_visibility(db: Database, *, after: str, until: str) -> list[int]:
    """Published posts dated in (``after``, ``until``]: those whose visibility moved with now."""
    rows = db.execute(
        "SELECT id FROM posts WHERE status = 'published' AND published_at > ? "
        "AND published_at <= ?",
        [after, until],
    ).fetchall()
    return [int(row[0]) for row in rows]


def visibility_window(db: Database, *, now: datetime) -> tuple[str | None, str | None]:
    """(newest visible date, next scheduled date): the visible set is the same for any ``now``
    from the first (inclusive) to the second (exclusive)."""
    stamp = to_db_time(now)
    newest = db.execute(
        "SELECT max(published_at) FROM posts WHERE status = 'published' AND published_at <= ?",
        [stamp],
    ).fetchone()[0]
    upcoming = db.execute(
        "SELECT min(published_at) FROM posts WHERE status = 'published' AND published_at > ?",
        [stamp],
    ).fetchone()[0]
    return newest, upcoming


@dataclass(frozen=True)
class PostState:
    """What decides whether and where a post shows: its slug, status and date."""

    id: int
    slug: str
    status: str
    published_at: str | None

    def visible(self, now: datetime) -> bool:
        return (
            self.status == "published"
            and self.published_at is not None
            and self.published_at <= to_db_time(now)
        )

    @property
    def key(self) -> Key | None:
        return (self.published_at, self.id) if self.published_at else None


def post_states(db: Database, ids: Sequence[int]) -> dict[int, PostState]:
    """The current slug, status and date of each of ``ids`` that still exists."""
    found: dict[int, PostState] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        rows = db.execute(
            f"SELECT id, slug, status, published_at FROM posts "
            f"WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        for row in rows:
            found[int(row[0])] = PostState(int(row[0]), row[1], row[2], row[3])
    return found


# --- topics ---------------------------------------------------------------------------------


def all_topics(db: Database) -> list[Topic]:
    """Every topic, by name."""
    rows = db.execute("SELECT slug, name FROM topics ORDER BY name, slug").fetchall()
    return [Topic(slug, name) for slug, name in rows]


def all_topic_ids(db: Database) -> dict[str, tuple[int, Topic]]:
    """Every topic's id and topic, by slug."""
    rows = db.execute("SELECT id, slug, name FROM topics").fetchall()
    return {slug: (int(topic_id), Topic(slug, name)) for topic_id, slug, name in rows}


def topics_of_posts(db: Database, post_ids: Sequence[int]) -> dict[int, set[str]]:
    """The slugs of the topics each of the given posts belongs to now."""
    found: dict[int, set[str]] = {}
    for start in range(0, len(post_ids), 500):
        chunk = list(post_ids[start : start + 500])
        rows = db.execute(
            "SELECT pt.post_id, t.slug FROM post_topics pt JOIN topics t ON t.id = pt.topic_id "
            f"WHERE pt.post_id IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        for post_id, slug in rows:
            found.setdefault(int(post_id), set()).add(slug)
    return found


def _count_to(db: Database, sql: str, params: Sequence[object], cap: int) -> int:
    """How many rows ``sql`` selects, counted no further than ``cap``."""
    row = db.execute(f"SELECT count(*) FROM ({sql} LIMIT ?)", [*params, cap]).fetchone()
    return int(row[0])


def topic_keys_from(db: Database, topic_id: int, *, now: datetime, start: Key | None) -> list[Key]:
    """Keys of a topic's visible posts from ``start`` (inclusive) to the newest, in feed order.

    Two plans: read the topic's own posts through the topic index and sort them, or walk the
    date index from ``start`` and keep the topic's. The rows each would read are counted, side
    by side and no further than the smaller count, and the smaller one is taken: a new post's
    build reads about as many rows as the tail holds, whatever the size of the topic or of the
    site.
    """
    stamp = to_db_time(now)
    by_topic = True
    if start is not None:
        in_topic = "SELECT 1 FROM post_topics WHERE topic_id = ?"
        in_span = (
            "SELECT 1 FROM posts WHERE status = 'published' AND published_at >= ? "
            "AND published_at <= ?"
        )
        cap = 64
        while True:
            size = _count_to(db, in_topic, [topic_id], cap)
            span = _count_to(db, in_span, [start[0], stamp], cap)
            if size < cap or span < cap:
                by_topic = size <= span
                break
            cap *= 4
    since = "" if start is None else "AND p.published_at >= ? "
    params: list[object] = [topic_id, stamp] if start is None else [topic_id, stamp, start[0]]
    if by_topic:
        sql = (
            "SELECT p.published_at, p.id FROM post_topics pt CROSS JOIN posts p "
            "ON p.id = pt.post_id WHERE pt.topic_id = ? AND p.status = 'published' "
            f"AND p.published_at <= ? {since}ORDER BY p.published_at, p.id"
        )
    else:
        sql = (
            "SELECT p.published_at, p.id FROM posts p WHERE EXISTS (SELECT 1 FROM post_topics "
            "pt WHERE pt.post_id = p.id AND pt.topic_id = ?) AND p.status = 'published' "
            f"AND p.published_at <= ? {since}ORDER BY p.published_at, p.id"
        )
    keys = [(published, int(post_id)) for published, post_id in db.execute(sql, params)]
    return keys if start is None else [key for key in keys if key >= start]


def site_last_change(db: Database, now: datetime) -> datetime:
    """When the site last changed as of ``now``: the newest publication among visible posts
    (one step down the date index), else when the database was made. Dates feeds that have no
    entries, so that none says 1970."""
    from policyfeed.store import from_db_time

    newest, _upcoming = visibility_window(db, now=now)
    if newest:
        return from_db_time(newest)
    made = db.execute("SELECT min(applied_at) FROM _sqlite_migrations").fetchone()
    try:
        created = datetime.fromisoformat(str(made[0]))
    except (TypeError, ValueError):
        return now
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    # Not clamped to now: a date that moved with the clock would rewrite the feeds every build.
    return created.astimezone(UTC).replace(microsecond=0)


# --- old slugs ------------------------------------------------------------------------------


def redirects(db: Database, *, now: datetime) -> dict[str, str]:
    """Old slug → current slug of every visible post renamed since it was published, but the
    old slugs a post holds now (its page is there)."""
    # post_slugs first (CROSS JOIN keeps that order): it holds only the slugs renamed posts
    # left, while the planner would otherwise walk every visible post to probe it.
    rows = db.execute(
        "SELECT s.slug, p.slug FROM post_slugs s CROSS JOIN posts p ON p.id = s.post_id "
        "WHERE p.status = 'published' AND p.published_at <= ? "
        "AND NOT EXISTS (SELECT 1 FROM posts q WHERE q.slug = s.slug) ORDER BY s.slug",
        [to_db_time(now)],
    ).fetchall()
    return {str(old): str(new) for old, new in rows}


def old_slugs(db: Database, post_id: int) -> list[str]:
    """The slugs a post had before and no post holds now, in name order."""
    rows = db.execute(
        "SELECT s.slug FROM post_slugs s WHERE s.post_id = ? "
        "AND NOT EXISTS (SELECT 1 FROM posts q WHERE q.slug = s.slug) ORDER BY s.slug",
        [post_id],
    ).fetchall()
    return [str(row[0]) for row in rows]
