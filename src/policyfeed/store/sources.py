"""Queries for the ``[[sources]]`` feeds: their fetch state and which post each item became."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from policyfeed.model import SourceState
from policyfeed.store import from_db_time, to_db_time

_COLUMNS = (
    "name, url, config, etag, last_modified, first_synced_at, last_attempt_at, last_success_at, "
    "last_error, last_error_at, last_temporary, feed_items, last_created, last_updated, moved_to"
)


def _time(value: str | None) -> datetime | None:
    return from_db_time(value) if value else None


def _state(row: Sequence[Any], items: int) -> SourceState:
    return SourceState(
        name=row[0],
        url=row[1],
        config=row[2],
        etag=row[3],
        last_modified=row[4],
        first_synced_at=_time(row[5]),
        last_attempt_at=_time(row[6]),
        last_success_at=_time(row[7]),
        last_error=row[8],
        last_error_at=_time(row[9]),
        last_temporary=bool(row[10]),
        feed_items=int(row[11]),
        last_created=int(row[12]),
        last_updated=int(row[13]),
        moved_to=row[14],
        items=items,
    )


def _item_counts(db: Database) -> dict[str, int]:
    rows = db.execute("SELECT source, count(post_id) FROM source_items GROUP BY source").fetchall()
    return {name: int(count) for name, count in rows}


def source_state(db: Database, name: str) -> SourceState | None:
    """The stored state of source ``name`` (None before its first attempt)."""
    row = db.execute(f"SELECT {_COLUMNS} FROM sources WHERE name = ?", [name]).fetchone()
    if row is None:
        return None
    count = db.execute(
        "SELECT count(post_id) FROM source_items WHERE source = ?", [name]
    ).fetchone()
    return _state(row, int(count[0]))


def all_source_states(db: Database) -> dict[str, SourceState]:
    """Every stored source, by name (configured or not any more)."""
    counts = _item_counts(db)
    rows = db.execute(f"SELECT {_COLUMNS} FROM sources ORDER BY name").fetchall()
    return {row[0]: _state(row, counts.get(row[0], 0)) for row in rows}


def _ensure(db: Database, name: str) -> None:
    db.execute("INSERT OR IGNORE INTO sources (name) VALUES (?)", [name])


def item_post(db: Database, source: str, key: str) -> tuple[int | None, str] | None:
    """(post id, item hash) of the post the item ``key`` of ``source`` became (post id None:
    an editor removed it), or None for an item never synced."""
    row = db.execute(
        "SELECT post_id, item_hash FROM source_items WHERE source = ? AND item_key = ?",
        [source, key],
    ).fetchone()
    if row is None:
        return None
    return (None if row[0] is None else int(row[0]), row[1])


def item_sources(db: Database, post_id: int) -> list[str]:
    """The sources whose items became post ``post_id``."""
    rows = db.execute(
        "SELECT DISTINCT source FROM source_items WHERE post_id = ? ORDER BY source", [post_id]
    ).fetchall()
    return [row[0] for row in rows]


def post_by_guid_or_url(db: Database, *, guid: str, url: str) -> int | None:
    """A post (imported before the source was synced) with this guid (or imported id, see
    ``posts.source_id``), else this url."""
    if guid:
        row = db.execute(
            "SELECT id FROM posts WHERE guid = ? OR source_id = ? ORDER BY guid IS NULL LIMIT 1",
            [guid, guid],
        ).fetchone()
        if row:
            return int(row[0])
    if url:
        row = db.execute("SELECT id FROM posts WHERE url = ? ORDER BY id LIMIT 1", [url]).fetchone()
        if row:
            return int(row[0])
    return None


def slug_taken(db: Database, slug: str) -> bool:
    return db.execute("SELECT 1 FROM posts WHERE slug = ?", [slug]).fetchone() is not None


def record_item(db: Database, source: str, key: str, post_id: int, item_hash: str) -> None:
    """Remember that item ``key`` of ``source`` is post ``post_id``. Call inside a transaction."""
    _ensure(db, source)
    db.execute(
        "INSERT INTO source_items (source, item_key, post_id, item_hash) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (source, item_key) DO UPDATE SET post_id = excluded.post_id, "
        "item_hash = excluded.item_hash",
        [source, key, post_id, item_hash],
    )


def record_success(
    db: Database,
    name: str,
    *,
    now: datetime,
    url: str,
    config: str,
    etag: str,
    last_modified: str,
    feed_items: int | None,
    created: int,
    updated: int,
    moved_to: str,
) -> None:
    """A sync that worked (``feed_items`` None: the feed had not changed). Call inside the
    transaction that saved its posts."""
    _ensure(db, name)
    stamp = to_db_time(now)
    db.execute(
        "UPDATE sources SET url = ?, config = ?, etag = ?, last_modified = ?, "
        "first_synced_at = coalesce(first_synced_at, ?), last_attempt_at = ?, "
        "last_success_at = ?, last_error = '', last_error_at = NULL, last_temporary = 0, "
        "feed_items = coalesce(?, feed_items), last_created = ?, last_updated = ?, "
        "moved_to = ? WHERE name = ?",
        [url, config, etag, last_modified, stamp, stamp, stamp, feed_items, created, updated,
         moved_to, name],
    )  # fmt: skip


def record_failure(db: Database, name: str, *, now: datetime, error: str, temporary: bool) -> None:
    """A sync that failed: its one-line error; the validators and items stay as they were."""
    _ensure(db, name)
    stamp = to_db_time(now)
    db.execute(
        "UPDATE sources SET last_attempt_at = ?, last_error = ?, last_error_at = ?, "
        "last_temporary = ? WHERE name = ?",
        [stamp, error, stamp, int(temporary), name],
    )
