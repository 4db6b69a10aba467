"""Queries for how members join and leave: consent records, forgotten addresses, the web forms'
rate-limit counters, and purging sign-ups nobody confirmed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from policyfeed.store import from_db_time, to_db_time


@dataclass(frozen=True)
class Consent:
    """One sign-up, import or operator's addition, and its confirmation when there is one."""

    id: int
    subscriber_id: int
    method: str  # form | import | operator
    source: str
    consent_text: str
    name: str
    chapter_id: int | None
    requested_at: datetime
    ip: str = ""
    user_agent: str = ""
    confirmed_at: datetime | None = None
    confirm_ip: str = ""
    confirm_user_agent: str = ""


_CONSENT_COLUMNS = (
    "id, subscriber_id, method, source, consent_text, name, chapter_id, requested_at, ip, "
    "user_agent, confirmed_at, confirm_ip, confirm_user_agent"
)


def _consent(row: Any) -> Consent:
    return Consent(
        id=int(row[0]),
        subscriber_id=int(row[1]),
        method=row[2],
        source=row[3],
        consent_text=row[4],
        name=row[5],
        chapter_id=int(row[6]) if row[6] is not None else None,
        requested_at=from_db_time(row[7]),
        ip=row[8],
        user_agent=row[9],
        confirmed_at=from_db_time(row[10]) if row[10] else None,
        confirm_ip=row[11],
        confirm_user_agent=row[12],
    )


def insert_consent(
    db: Database,
    *,
    subscriber_id: int,
    method: str,
    now: datetime,
    source: str = "",
    consent_text: str = "",
    name: str = "",
    chapter_id: int | None = None,
    ip: str = "",
    user_agent: str = "",
    confirmed: bool = False,
) -> int:
    """Record a consent; an import's or an operator's is confirmed as it is made."""
    stamp = to_db_time(now)
    cursor = db.execute(
        "INSERT INTO consents (subscriber_id, method, source, consent_text, name, chapter_id, "
        "requested_at, ip, user_agent, confirmed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            subscriber_id,
            method,
            source,
            consent_text,
            name,
            chapter_id,
            stamp,
            ip,
            user_agent,
            stamp if confirmed else None,
        ],
    )
    return int(cursor.lastrowid or 0)


def get_consent(db: Database, consent_id: int) -> Consent | None:
    row = db.execute(
        f"SELECT {_CONSENT_COLUMNS} FROM consents WHERE id = ?", [consent_id]
    ).fetchone()
    return _consent(row) if row else None


def consents_for_subscriber(db: Database, subscriber_id: int) -> list[Consent]:
    rows = db.execute(
        f"SELECT {_CONSENT_COLUMNS} FROM consents WHERE subscriber_id = ? ORDER BY id",
        [subscriber_id],
    ).fetchall()
    return [_consent(r) for r in rows]


def confirm_consent(
    db: Database, consent_id: int, *, now: datetime, ip: str = "", user_agent: str = ""
) -> bool:
    """Mark a consent confirmed; False when it already was (a link followed twice)."""
    cursor = db.execute(
        "UPDATE consents SET confirmed_at = ?, confirm_ip = ?, confirm_user_agent = ? "
        "WHERE id = ? AND confirmed_at IS NULL",
        [to_db_time(now), ip, user_agent, consent_id],
    )
    return cursor.rowcount > 0


def purge_unconfirmed(db: Database, *, before: datetime) -> int:
    """Forget sign-ups requested before ``before`` and never confirmed: their consent rows, and
    subscribers who never were anything but pending. Returns the subscribers removed."""
    stamp = to_db_time(before)
    removed = db.execute(
        "DELETE FROM subscribers WHERE status = 'pending' AND confirmed_at IS NULL "
        "AND created_at < ? AND NOT EXISTS (SELECT 1 FROM consents c WHERE "
        "c.subscriber_id = subscribers.id AND (c.confirmed_at IS NOT NULL OR c.requested_at >= ?))",
        [stamp, stamp],
    ).rowcount
    db.execute("DELETE FROM consents WHERE confirmed_at IS NULL AND requested_at < ?", [stamp])
    return int(removed)


# --- forgotten addresses -----------------------------------------------------------------------


def is_forgotten(db: Database, address_hash: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM forgotten_addresses WHERE address_hash = ?", [address_hash]
    ).fetchone()
    return row is not None


def forgotten_hashes(db: Database) -> set[str]:
    return {r[0] for r in db.execute("SELECT address_hash FROM forgotten_addresses").fetchall()}


def add_forgotten(db: Database, address_hash: str, *, now: datetime) -> None:
    db.execute(
        "INSERT OR IGNORE INTO forgotten_addresses (address_hash, forgotten_at) VALUES (?, ?)",
        [address_hash, to_db_time(now)],
    )


def remove_forgotten(db: Database, address_hash: str) -> bool:
    cursor = db.execute("DELETE FROM forgotten_addresses WHERE address_hash = ?", [address_hash])
    return cursor.rowcount > 0


# --- rate limits -------------------------------------------------------------------------------


def count_requests(db: Database, bucket: str, key: str, *, since: datetime) -> int:
    row = db.execute(
        "SELECT count(*) FROM throttle WHERE bucket = ? AND key = ? AND at >= ?",
        [bucket, key, to_db_time(since)],
    ).fetchone()
    return int(row[0])


def record_request(db: Database, bucket: str, key: str, *, now: datetime) -> None:
    db.execute(
        "INSERT INTO throttle (bucket, key, at) VALUES (?, ?, ?)", [bucket, key, to_db_time(now)]
    )


def purge_requests(db: Database, *, before: datetime) -> int:
    return int(db.execute("DELETE FROM throttle WHERE at < ?", [to_db_time(before)]).rowcount)
