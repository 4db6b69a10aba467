"""Posts that count as already announced: the digest never takes them (see
``store.issues.waiting_post_ids``). Nothing else treats them differently."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlite_utils import Database

from policyfeed.store import from_db_time, to_db_time


def mark_announced(db: Database, post_ids: Iterable[int], *, now: datetime, reason: str) -> int:
    """Mark posts as announced (those in an issue already are left as they are); returns how
    many were marked now. Call inside the transaction that saved them."""
    stamp = to_db_time(now)
    marked = 0
    for post_id in post_ids:
        cursor = db.execute(
            "INSERT OR IGNORE INTO announced_posts (post_id, announced_at, reason) "
            "SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM issue_posts WHERE post_id = ?)",
            [post_id, stamp, reason, post_id],
        )
        marked += cursor.rowcount if cursor.rowcount > 0 else 0
    return marked


def announcement(db: Database, post_id: int) -> tuple[datetime, str] | None:
    """When and why post ``post_id`` was marked announced, or None."""
    row = db.execute(
        "SELECT announced_at, reason FROM announced_posts WHERE post_id = ?", [post_id]
    ).fetchone()
    return (from_db_time(row[0]), row[1]) if row else None


def announced_count(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM announced_posts").fetchone()[0])
