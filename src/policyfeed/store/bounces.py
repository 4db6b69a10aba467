"""Queries for bounces and complaints: what came back about a delivery, and its consequences for
the member (suspended as ``bounced``, or unsubscribed after a complaint)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from policyfeed.model import Delivery
from policyfeed.store import to_db_time

_DELIVERY_COLUMNS = (
    "id, issue_id, subscriber_id, chapter_id, message_id, status, attempts, last_error"
)
#: Statuses a bounce suspends (``paused`` members were mailed before and may be again).
SUSPENDABLE = ("active", "paused")


def _delivery(row: Sequence[Any] | None) -> Delivery | None:
    if row is None:
        return None
    return Delivery(
        id=int(row[0]),
        issue_id=int(row[1]),
        subscriber_id=int(row[2]),
        chapter_id=int(row[3]) if row[3] is not None else None,
        message_id=row[4],
        status=row[5],
        attempts=int(row[6]),
        last_error=row[7],
    )


def delivery_by_id(db: Database, delivery_id: int) -> Delivery | None:
    row = db.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", [delivery_id]
    ).fetchone()
    return _delivery(row)


def delivery_by_message_id(db: Database, message_id: str) -> Delivery | None:
    """The delivery whose Message-ID this is (without angle brackets; case as sent)."""
    row = db.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ?", [message_id]
    ).fetchone()
    return _delivery(row)


def is_recorded(db: Database, source_key: str) -> bool:
    """Whether a bounce or complaint from this report is already recorded."""
    row = db.execute(
        "SELECT 1 FROM bounces WHERE source_key = ? UNION ALL "
        "SELECT 1 FROM complaints WHERE source_key = ? LIMIT 1",
        [source_key, source_key],
    ).fetchone()
    return row is not None


def insert_bounce(
    db: Database,
    *,
    subscriber_id: int,
    delivery_id: int | None,
    kind: str,
    status: str,
    diagnostic: str,
    source: str,
    source_key: str,
    now: datetime,
) -> bool:
    """Record one bounce; False when this report was recorded before. Call in a transaction."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO bounces (subscriber_id, delivery_id, kind, status, diagnostic, "
        "source, source_key, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [subscriber_id, delivery_id, kind, status, diagnostic, source, source_key, to_db_time(now)],
    )
    return cursor.rowcount > 0


def insert_complaint(
    db: Database,
    *,
    subscriber_id: int,
    delivery_id: int | None,
    feedback_type: str,
    reporter: str,
    source: str,
    source_key: str,
    now: datetime,
) -> bool:
    """Record one complaint; False when this report was recorded before."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO complaints (subscriber_id, delivery_id, feedback_type, reporter, "
        "source, source_key, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [subscriber_id, delivery_id, feedback_type, reporter, source, source_key, to_db_time(now)],
    )
    return cursor.rowcount > 0


def soft_streak(db: Database, subscriber_id: int) -> int:
    """How many of the member's latest messages in a row soft-bounced (bounces an editor
    cleared do not count): counted back from the newest issue that went out to them, up to the
    first one that did not bounce."""
    rows = db.execute(
        "SELECT EXISTS (SELECT 1 FROM bounces b WHERE b.delivery_id = d.id "
        "AND b.cleared_at IS NULL) FROM deliveries d JOIN issues i ON i.id = d.issue_id "
        "WHERE d.subscriber_id = ? AND d.status IN ('sent', 'failed', 'sending') "
        "ORDER BY i.number DESC",
        [subscriber_id],
    ).fetchall()
    streak = 0
    for (bounced,) in rows:
        if not bounced:
            break
        streak += 1
    return streak


def suspend(db: Database, subscriber_id: int, *, now: datetime) -> bool:
    """Mark a member ``bounced``; False when they were not one a bounce suspends (already
    bounced, unsubscribed…)."""
    marks = ", ".join("?" * len(SUSPENDABLE))
    cursor = db.execute(
        f"UPDATE subscribers SET status = 'bounced', updated_at = ? "
        f"WHERE id = ? AND status IN ({marks})",
        [to_db_time(now), subscriber_id, *SUSPENDABLE],
    )
    return cursor.rowcount > 0


def reactivate(db: Database, subscriber_id: int, *, now: datetime) -> int:
    """``bounced`` → ``active``, and their bounces so far no longer count. Returns the number
    of bounces cleared. Call in a transaction."""
    stamp = to_db_time(now)
    db.execute(
        "UPDATE subscribers SET status = 'active', updated_at = ? "
        "WHERE id = ? AND status = 'bounced'",
        [stamp, subscriber_id],
    )
    cursor = db.execute(
        "UPDATE bounces SET cleared_at = ? WHERE subscriber_id = ? AND cleared_at IS NULL",
        [stamp, subscriber_id],
    )
    return cursor.rowcount


def complaint_count(db: Database, subscriber_id: int) -> int:
    row = db.execute(
        "SELECT count(*) FROM complaints WHERE subscriber_id = ?", [subscriber_id]
    ).fetchone()
    return int(row[0])


_EVENTS = (
    "SELECT * FROM ("
    "SELECT b.received_at AS at, s.email AS email, b.kind AS kind, b.status AS status, "
    "b.diagnostic AS detail, b.source AS source, i.number AS issue, "
    "b.cleared_at IS NOT NULL AS cleared "
    "FROM bounces b JOIN subscribers s ON s.id = b.subscriber_id "
    "LEFT JOIN deliveries d ON d.id = b.delivery_id LEFT JOIN issues i ON i.id = d.issue_id "
    "UNION ALL "
    "SELECT c.received_at, s.email, 'complaint', c.feedback_type, c.reporter, c.source, "
    "i.number, 0 "
    "FROM complaints c JOIN subscribers s ON s.id = c.subscriber_id "
    "LEFT JOIN deliveries d ON d.id = c.delivery_id LEFT JOIN issues i ON i.id = d.issue_id"
    ")"
)
_EVENT_KEYS = ("at", "email", "kind", "status", "detail", "source", "issue", "cleared")


def events(
    db: Database, *, email: str | None = None, kind: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Bounces and complaints, newest first (``kind`` hard, soft or complaint)."""
    where, params = ["1"], []
    if email is not None:
        where.append("email = ? COLLATE NOCASE")
        params.append(email)
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    rows = db.execute(
        f"{_EVENTS} WHERE {' AND '.join(where)} ORDER BY at DESC, kind LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [{**dict(zip(_EVENT_KEYS, row, strict=True)), "cleared": bool(row[7])} for row in rows]
