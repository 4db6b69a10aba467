"""Queries behind the unsubscribe endpoint."""

from __future__ import annotations

from datetime import datetime

from sqlite_utils import Database

from policyfeed.store import from_db_time, subscribers, transaction


def unsubscribe_subscriber(db: Database, subscriber_id: int, now: datetime) -> bool:
    """Mark a subscriber unsubscribed and commit; False when already so or unknown.

    A bounced address that asks to leave is recorded as unsubscribed too, so that reviving
    bounced addresses later never brings back someone who left.
    """
    with transaction(db):
        return subscribers.unsubscribe(db, subscriber_id, now=now)


def subscriber_status(db: Database, subscriber_id: int) -> str | None:
    """The subscriber's status, or None when there is no such subscriber."""
    row = db.conn.execute(
        "SELECT status FROM subscribers WHERE id = ?", (subscriber_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def subscriber_state(db: Database, subscriber_id: int) -> tuple[str, datetime | None] | None:
    """The subscriber's status and when they unsubscribed, or None when there is no such
    subscriber."""
    row = db.conn.execute(
        "SELECT status, unsubscribed_at FROM subscribers WHERE id = ?", (subscriber_id,)
    ).fetchone()
    if row is None:
        return None
    return str(row[0]), from_db_time(row[1]) if row[1] else None
