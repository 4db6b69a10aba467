"""Queries for the notices ledger: the one-off messages of the sign-up (confirmation, welcome,
preferences link), each handed over at most once, like the digest's deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from policyfeed.store import from_db_time, to_db_time


@dataclass(frozen=True)
class Notice:
    id: int
    subscriber_id: int
    kind: str  # confirm | welcome | preferences
    message_id: str
    message: bytes | None
    status: str  # pending | sending | sent | failed | expired
    attempts: int
    last_error: str
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None


_COLUMNS = (
    "id, subscriber_id, kind, message_id, message, status, attempts, last_error, created_at, "
    "expires_at, sent_at"
)


def _notice(row: Sequence[Any]) -> Notice:
    return Notice(
        id=int(row[0]),
        subscriber_id=int(row[1]),
        kind=row[2],
        message_id=row[3],
        message=bytes(row[4]) if row[4] is not None else None,
        status=row[5],
        attempts=int(row[6]),
        last_error=row[7],
        created_at=from_db_time(row[8]),
        expires_at=from_db_time(row[9]),
        sent_at=from_db_time(row[10]) if row[10] else None,
    )


def insert_notice(
    db: Database,
    *,
    subscriber_id: int,
    kind: str,
    message_id: str,
    message: bytes,
    now: datetime,
    expires_at: datetime,
) -> int:
    stamp = to_db_time(now)
    cursor = db.execute(
        "INSERT INTO notices (subscriber_id, kind, message_id, message, created_at, updated_at, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [subscriber_id, kind, message_id, message, stamp, stamp, to_db_time(expires_at)],
    )
    return int(cursor.lastrowid or 0)


def get_notice(db: Database, notice_id: int) -> Notice | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM notices WHERE id = ?", [notice_id]).fetchone()
    return _notice(row) if row else None


def unsettled_notices(db: Database, ids: Sequence[int] | None = None) -> list[Notice]:
    """Notices still ``pending`` or ``sending``, oldest first (only ``ids``, if given)."""
    sql = f"SELECT {_COLUMNS} FROM notices WHERE status IN ('pending', 'sending')"
    params: list[Any] = []
    if ids is not None:
        if not ids:
            return []
        sql += f" AND id IN ({', '.join('?' for _ in ids)})"
        params.extend(ids)
    return [_notice(r) for r in db.execute(sql + " ORDER BY id", params).fetchall()]


def has_unsettled(db: Database) -> bool:
    row = db.execute(
        "SELECT 1 FROM notices WHERE status IN ('pending', 'sending') LIMIT 1"
    ).fetchone()
    return row is not None


def mark_sending(db: Database, notice_id: int, *, now: datetime, redo: bool = False) -> bool:
    """``pending`` → ``sending`` (or a ``sending`` row again, with ``redo``); False when another
    sender took it first."""
    states = "('pending', 'sending')" if redo else "('pending')"
    cursor = db.execute(
        "UPDATE notices SET status = 'sending', attempts = attempts + 1, updated_at = ? "
        f"WHERE id = ? AND status IN {states}",
        [to_db_time(now), notice_id],
    )
    return cursor.rowcount > 0


def mark_result(
    db: Database, notice_id: int, status: str, *, now: datetime, error: str = ""
) -> None:
    """Settle a notice (or put it back to ``pending``); a settled one no longer keeps its
    message, which holds the address and a signed link."""
    stamp = to_db_time(now)
    settled = status != "pending"
    db.execute(
        "UPDATE notices SET status = ?, last_error = ?, updated_at = ?, "
        "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END, "
        "message = CASE WHEN ? THEN NULL ELSE message END WHERE id = ?",
        [status, error[:500], stamp, status, stamp, settled, notice_id],
    )


def notices_for_subscriber(db: Database, subscriber_id: int) -> list[Notice]:
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM notices WHERE subscriber_id = ? ORDER BY id", [subscriber_id]
    ).fetchall()
    return [_notice(r) for r in rows]
