"""Queries for chapters (with their topic filter) and subscribers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from policyfeed.errors import ConflictError, NotFoundError
from policyfeed.model import SUBSCRIBER_STATUSES, Chapter, Subscriber
from policyfeed.store import from_db_time, to_db_time

# --- chapters -------------------------------------------------------------------------------


def _chapter_topics(db: Database) -> dict[int, list[str]]:
    rows = db.execute(
        "SELECT ct.chapter_id, t.slug FROM chapter_topics ct JOIN topics t ON t.id = ct.topic_id "
        "ORDER BY t.slug"
    ).fetchall()
    result: dict[int, list[str]] = {}
    for chapter_id, slug in rows:
        result.setdefault(int(chapter_id), []).append(slug)
    return result


def list_chapters(db: Database) -> list[Chapter]:
    """Every chapter, by slug."""
    topics = _chapter_topics(db)
    rows = db.execute(
        "SELECT id, slug, name, intro, language, post_language FROM chapters ORDER BY slug"
    ).fetchall()
    return [
        Chapter(slug, name, intro, topics.get(int(i), []), int(i), language, post_language)
        for i, slug, name, intro, language, post_language in rows
    ]


def get_chapter(db: Database, slug: str) -> Chapter:
    for chapter in list_chapters(db):
        if chapter.slug == slug:
            return chapter
    raise NotFoundError(f"no chapter {slug!r}")


def chapter_ids(db: Database) -> dict[str, int]:
    return {slug: int(i) for i, slug in db.execute("SELECT id, slug FROM chapters").fetchall()}


def topic_ids_by_slug(db: Database) -> dict[str, int]:
    return {slug: int(i) for i, slug in db.execute("SELECT id, slug FROM topics").fetchall()}


def topic_names(db: Database) -> dict[str, str]:
    """Every topic's name, by slug."""
    return {slug: name for slug, name in db.execute("SELECT slug, name FROM topics").fetchall()}


def insert_chapter(db: Database, chapter: Chapter, topic_ids: Sequence[int]) -> int:
    """Insert a chapter and its topic filter. Call inside a transaction."""
    if db.execute("SELECT 1 FROM chapters WHERE slug = ?", [chapter.slug]).fetchone():
        raise ConflictError(f"chapter {chapter.slug!r} already exists")
    cursor = db.execute(
        "INSERT INTO chapters (slug, name, intro, language, post_language) VALUES (?, ?, ?, ?, ?)",
        [chapter.slug, chapter.name, chapter.intro, chapter.language, chapter.post_language],
    )
    chapter_id = int(cursor.lastrowid or 0)
    db.conn.executemany(
        "INSERT OR IGNORE INTO chapter_topics (chapter_id, topic_id) VALUES (?, ?)",
        [(chapter_id, topic_id) for topic_id in topic_ids],
    )
    return chapter_id


def set_chapter_languages(
    db: Database, slug: str, *, language: str | None, post_language: str | None
) -> None:
    """Change a chapter's language and/or post language (None: unchanged)."""
    if db.execute("SELECT 1 FROM chapters WHERE slug = ?", [slug]).fetchone() is None:
        raise NotFoundError(f"no chapter {slug!r}")
    if language is not None:
        db.execute("UPDATE chapters SET language = ? WHERE slug = ?", [language, slug])
    if post_language is not None:
        db.execute("UPDATE chapters SET post_language = ? WHERE slug = ?", [post_language, slug])


def subscriber_language(db: Database, subscriber_id: int) -> str:
    """The language of a member's chapter ("" : none, the chapter has none, or the database
    is older than chapters' languages: the page is then in the site's)."""
    import sqlite3

    try:
        row = db.execute(
            "SELECT c.language FROM subscribers s JOIN chapters c ON c.id = s.chapter_id "
            "WHERE s.id = ?",
            [subscriber_id],
        ).fetchone()
    except sqlite3.OperationalError:
        return ""
    return str(row[0]) if row else ""


def chapter_language(db: Database, chapter_id: int | None) -> str:
    """A chapter's language ("" : none, no such chapter, or an older database)."""
    import sqlite3

    if chapter_id is None:
        return ""
    try:
        row = db.execute("SELECT language FROM chapters WHERE id = ?", [chapter_id]).fetchone()
    except sqlite3.OperationalError:
        return ""
    return str(row[0]) if row else ""


def status_counts(db: Database, *, chapter: str | None = None) -> dict[str, int]:
    """Subscribers per status (every status, zeros included); ``chapter`` as in
    :func:`list_subscribers`."""
    where, params = "1", []
    if chapter == "":
        where = "s.chapter_id IS NULL"
    elif chapter is not None:
        where, params = "c.slug = ?", [chapter]
    rows = db.execute(
        "SELECT s.status, count(*) FROM subscribers s LEFT JOIN chapters c ON c.id = s.chapter_id "
        f"WHERE {where} GROUP BY s.status",
        params,
    ).fetchall()
    counts = dict.fromkeys(SUBSCRIBER_STATUSES, 0)
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def subscriber_counts(db: Database) -> dict[int | None, int]:
    """Active subscribers per chapter id (None: no chapter)."""
    rows = db.execute(
        "SELECT chapter_id, count(*) FROM subscribers WHERE status = 'active' GROUP BY chapter_id"
    ).fetchall()
    return {(int(c) if c is not None else None): int(n) for c, n in rows}


# --- subscribers ----------------------------------------------------------------------------

#: The topic slugs a member chose, space separated (slugs hold no space), in no set order.
_CHOSEN_TOPICS = (
    "(SELECT group_concat(t.slug, ' ') FROM subscriber_topics st JOIN topics t "
    "ON t.id = st.topic_id WHERE st.subscriber_id = s.id)"
)
_SUBSCRIBER_SELECT = (
    "SELECT s.id, s.email, s.name, c.slug, s.status, s.created_at, s.updated_at, "
    f"s.unsubscribed_at, s.chapter_id, s.confirmed_at, {_CHOSEN_TOPICS} "
    "FROM subscribers s LEFT JOIN chapters c ON c.id = s.chapter_id"
)


def _slugs(text: str | None) -> list[str]:
    return sorted(text.split()) if text else []


def _subscriber_from_row(row: Sequence[Any]) -> Subscriber:
    return Subscriber(
        id=int(row[0]),
        email=row[1],
        name=row[2],
        chapter=row[3],
        status=row[4],
        created_at=from_db_time(row[5]),
        updated_at=from_db_time(row[6]),
        unsubscribed_at=from_db_time(row[7]) if row[7] else None,
        chapter_id=int(row[8]) if row[8] is not None else None,
        confirmed_at=from_db_time(row[9]) if row[9] else None,
        topics=_slugs(row[10]),
    )


def find_subscriber(db: Database, email: str) -> Subscriber | None:
    """The subscriber with this address (case-insensitive), if any."""
    row = db.execute(f"{_SUBSCRIBER_SELECT} WHERE s.email = ?", [email]).fetchone()
    return _subscriber_from_row(row) if row else None


def get_subscriber(db: Database, email: str) -> Subscriber:
    found = find_subscriber(db, email)
    if found is None:
        raise NotFoundError(f"no subscriber {email!r}")
    return found


def subscriber_by_id(db: Database, subscriber_id: int) -> Subscriber | None:
    row = db.execute(f"{_SUBSCRIBER_SELECT} WHERE s.id = ?", [subscriber_id]).fetchone()
    return _subscriber_from_row(row) if row else None


def list_subscribers(
    db: Database, *, status: str | None = None, chapter: str | None = None
) -> list[Subscriber]:
    """Subscribers by address; ``chapter`` "" selects those without a chapter."""
    where: list[str] = ["1"]
    params: list[Any] = []
    if status is not None:
        where.append("s.status = ?")
        params.append(status)
    if chapter == "":
        where.append("s.chapter_id IS NULL")
    elif chapter is not None:
        where.append("c.slug = ?")
        params.append(chapter)
    rows = db.execute(
        f"{_SUBSCRIBER_SELECT} WHERE {' AND '.join(where)} ORDER BY s.email", params
    ).fetchall()
    return [_subscriber_from_row(r) for r in rows]


def active_subscriber_ids(db: Database) -> list[tuple[int, int | None]]:
    """(subscriber id, chapter id) of every active subscriber, by id."""
    rows = db.execute(
        "SELECT id, chapter_id FROM subscribers WHERE status = 'active' ORDER BY id"
    ).fetchall()
    return [(int(i), int(c) if c is not None else None) for i, c in rows]


def active_recipients(db: Database) -> list[tuple[int, int | None, tuple[str, ...] | None]]:
    """(subscriber id, chapter id, the topic slugs they chose, sorted, or None: their chapter's)
    of every active subscriber, by id."""
    rows = db.execute(
        f"SELECT s.id, s.chapter_id, {_CHOSEN_TOPICS} FROM subscribers s "
        "WHERE s.status = 'active' ORDER BY s.id"
    ).fetchall()
    return [
        (int(i), int(c) if c is not None else None, tuple(_slugs(t)) if t else None)
        for i, c, t in rows
    ]


def set_subscriber_topics(db: Database, subscriber_id: int, topic_ids: Sequence[int]) -> None:
    """Replace the topics a member chose (none: back to their chapter's). Call inside a
    transaction."""
    db.execute("DELETE FROM subscriber_topics WHERE subscriber_id = ?", [subscriber_id])
    db.conn.executemany(
        "INSERT OR IGNORE INTO subscriber_topics (subscriber_id, topic_id) VALUES (?, ?)",
        [(subscriber_id, topic_id) for topic_id in topic_ids],
    )


def insert_subscriber(
    db: Database,
    *,
    email: str,
    name: str,
    chapter_id: int | None,
    now: datetime,
    status: str = "active",
) -> int:
    """A new subscriber; an ``active`` one counts as confirmed now (vouched for by an operator
    or an import), a ``pending`` one waits for their confirmation."""
    stamp = to_db_time(now)
    # Numbered after every id ever used, removed ones too (old unsubscribe links name them);
    # NULL (an empty database) lets SQLite choose.
    cursor = db.execute(
        "INSERT INTO subscribers (id, email, name, chapter_id, status, created_at, updated_at, "
        "confirmed_at) "
        "VALUES ((SELECT max(id) + 1 FROM (SELECT max(id) AS id FROM subscribers "
        "UNION ALL SELECT max(id) FROM retired_subscriber_ids)), ?, ?, ?, ?, ?, ?, ?)",
        [email, name, chapter_id, status, stamp, stamp, stamp if status == "active" else None],
    )
    return int(cursor.lastrowid or 0)


def update_subscriber(
    db: Database,
    subscriber_id: int,
    *,
    now: datetime,
    name: str | None = None,
    set_chapter: bool = False,
    chapter_id: int | None = None,
    status: str | None = None,
    confirmed: bool = False,
) -> None:
    """Change the given fields (the chapter only with ``set_chapter``); ``updated_at`` is now,
    and so is ``confirmed_at`` with ``confirmed``."""
    sets: list[str] = ["updated_at = ?"]
    params: list[Any] = [to_db_time(now)]
    if name is not None:
        sets.append("name = ?")
        params.append(name)
    if set_chapter:
        sets.append("chapter_id = ?")
        params.append(chapter_id)
    if status is not None:
        sets.append("status = ?")
        params.append(status)
        sets.append("unsubscribed_at = ?")
        params.append(to_db_time(now) if status == "unsubscribed" else None)
    if confirmed:
        sets.append("confirmed_at = ?")
        params.append(to_db_time(now))
    db.execute(f"UPDATE subscribers SET {', '.join(sets)} WHERE id = ?", [*params, subscriber_id])


def unsubscribe(db: Database, subscriber_id: int, *, now: datetime) -> bool:
    """Mark unsubscribed; False when already unsubscribed (the first time is kept)."""
    cursor = db.execute(
        "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?, updated_at = ? "
        "WHERE id = ? AND status != 'unsubscribed'",
        [to_db_time(now), to_db_time(now), subscriber_id],
    )
    return cursor.rowcount > 0


def delete_subscriber(db: Database, subscriber_id: int) -> None:
    """Forget a subscriber and their delivery history."""
    db.execute("DELETE FROM subscribers WHERE id = ?", [subscriber_id])


def subscribers_by_ids(db: Database, subscriber_ids: Sequence[int]) -> dict[int, Subscriber]:
    """The subscribers with these ids (one query for a batch; missing ids are left out)."""
    found: dict[int, Subscriber] = {}
    unique = list(dict.fromkeys(subscriber_ids))
    for start in range(0, len(unique), 500):  # well under SQLite's limit on parameters
        chunk = unique[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in db.execute(f"{_SUBSCRIBER_SELECT} WHERE s.id IN ({marks})", chunk):
            found[int(row[0])] = _subscriber_from_row(row)
    return found


def iter_active_recipients(
    db: Database,
) -> Iterator[tuple[int, int | None, tuple[str, ...] | None]]:
    """:func:`active_recipients` one at a time, without a list of every member in memory."""
    cursor = db.conn.execute(
        f"SELECT s.id, s.chapter_id, {_CHOSEN_TOPICS} FROM subscribers s "
        "WHERE s.status = 'active' ORDER BY s.id"
    )
    for i, c, t in cursor:
        yield (int(i), int(c) if c is not None else None, tuple(_slugs(t)) if t else None)
