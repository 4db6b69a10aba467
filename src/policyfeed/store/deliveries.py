"""Queries for the deliveries ledger: one row per (issue, subscriber), frozen when delivery starts.

Each status change is its own small transaction, committed at once: the ledger on disk is always
what has really happened, whatever moment a run is killed at.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from policyfeed.model import DELIVERY_STATUSES, Delivery
from policyfeed.store import from_db_time, to_db_time

_COLUMNS = (
    "id, issue_id, subscriber_id, chapter_id, message_id, status, attempts, last_error, sent_at, "
    "variant_id"
)


def _from_row(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=int(row[0]),
        issue_id=int(row[1]),
        subscriber_id=int(row[2]),
        chapter_id=int(row[3]) if row[3] is not None else None,
        message_id=row[4],
        status=row[5],
        attempts=int(row[6]),
        last_error=row[7],
        sent_at=from_db_time(row[8]) if row[8] else None,
        variant_id=int(row[9]) if row[9] is not None else None,
    )


def has_deliveries(db: Database, issue_id: int) -> bool:
    return (
        db.execute("SELECT 1 FROM deliveries WHERE issue_id = ? LIMIT 1", [issue_id]).fetchone()
        is not None
    )


def delivery_started_at(db: Database, issue_id: int) -> datetime | None:
    """When the rows of an issue were frozen, i.e. its delivery began (None: not yet)."""
    row = db.execute(
        "SELECT min(created_at) FROM deliveries WHERE issue_id = ?", [issue_id]
    ).fetchone()
    return from_db_time(row[0]) if row and row[0] else None


def insert_deliveries(
    db: Database,
    issue_id: int,
    rows: Sequence[tuple[int, int | None, str, str, str, int | None]],
    *,
    now: datetime,
) -> int:
    """Insert (subscriber id, chapter id, message id, status, last error, variant id) rows;
    existing (issue, subscriber) pairs are left alone. Call inside a transaction. Returns rows
    added."""
    stamp = to_db_time(now)
    before = db.conn.total_changes
    db.conn.executemany(
        "INSERT OR IGNORE INTO deliveries (issue_id, subscriber_id, chapter_id, message_id, "
        "status, last_error, created_at, updated_at, variant_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (issue_id, sid, cid, mid, status, error, stamp, stamp, vid)
            for sid, cid, mid, status, error, vid in rows
        ],
    )
    return db.conn.total_changes - before


# --- the variants frozen with the rows --------------------------------------------------------


def _variant_key(chapter_id: int | None, topics: Sequence[str] | None) -> str:
    chapter = "" if chapter_id is None else str(chapter_id)
    return f"{chapter}:" + ("*" if topics is None else " ".join(topics))


def insert_variants(
    db: Database,
    issue_id: int,
    variants: Sequence[tuple[int | None, Sequence[str] | None, Sequence[int]]],
) -> dict[tuple[int | None, tuple[str, ...] | None], int]:
    """Record (chapter id, chosen topic slugs or None, post ids) variants of an issue; one
    already recorded for the same (chapter, topics) is kept as it is. Returns the id of each,
    by (chapter id, topics). Call inside a transaction."""
    ids: dict[tuple[int | None, tuple[str, ...] | None], int] = {}
    for chapter_id, topics, post_ids in variants:
        key = _variant_key(chapter_id, topics)
        db.execute(
            "INSERT OR IGNORE INTO delivery_variants (issue_id, key, chapter_id, topics, "
            "post_ids) VALUES (?, ?, ?, ?, ?)",
            [
                issue_id,
                key,
                chapter_id,
                None if topics is None else " ".join(topics),
                json.dumps(list(post_ids)),
            ],
        )
        row = db.execute(
            "SELECT id FROM delivery_variants WHERE issue_id = ? AND key = ?", [issue_id, key]
        ).fetchone()
        ids[(chapter_id, None if topics is None else tuple(topics))] = int(row[0])
    return ids


def variants_for_issue(
    db: Database, issue_id: int
) -> dict[int, tuple[int | None, tuple[str, ...] | None, tuple[int, ...]]]:
    """Variant id → (chapter id, chosen topic slugs or None, post ids) of an issue."""
    rows = db.execute(
        "SELECT id, chapter_id, topics, post_ids FROM delivery_variants WHERE issue_id = ?",
        [issue_id],
    ).fetchall()
    return {
        int(i): (
            int(c) if c is not None else None,
            None if t is None else tuple(t.split()),
            tuple(int(p) for p in json.loads(p_ids)),
        )
        for i, c, t, p_ids in rows
    }


def deliveries_for_issue(db: Database, issue_id: int) -> list[Delivery]:
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM deliveries WHERE issue_id = ? ORDER BY id", [issue_id]
    ).fetchall()
    return [_from_row(r) for r in rows]


def status_counts(db: Database, issue_id: int) -> dict[str, int]:
    counts = dict.fromkeys(DELIVERY_STATUSES, 0)
    rows = db.execute(
        "SELECT status, count(*) FROM deliveries WHERE issue_id = ? GROUP BY status", [issue_id]
    ).fetchall()
    counts.update({status: int(n) for status, n in rows})
    return counts


def delivery_listing(
    db: Database, issue_id: int, status: str | None = None
) -> list[dict[str, Any]]:
    """The deliveries of an issue with their subscriber's address and chapter, in the order
    they go out; only those of ``status`` if given."""
    where = "d.issue_id = ?"
    args: list[Any] = [issue_id]
    if status is not None:
        where += " AND d.status = ?"
        args.append(status)
    rows = db.execute(
        "SELECT d.id, s.email, s.name, c.slug, d.status, d.attempts, d.last_error, "
        "d.message_id, d.sent_at, d.updated_at FROM deliveries d "
        "JOIN subscribers s ON s.id = d.subscriber_id "
        f"LEFT JOIN chapters c ON c.id = d.chapter_id WHERE {where} ORDER BY d.id",
        args,
    ).fetchall()
    keys = (
        "id",
        "email",
        "name",
        "chapter",
        "status",
        "attempts",
        "last_error",
        "message_id",
        "sent_at",
        "updated_at",
    )
    found = [dict(zip(keys, row, strict=True)) for row in rows]
    for item in found:
        for stamp in ("sent_at", "updated_at"):
            item[stamp] = from_db_time(item[stamp]) if item[stamp] else None
    return found


def mark_unsure_sent(db: Database, issue_id: int, message_id: str, *, now: datetime) -> bool:
    """An unsure row (``sending``) of the issue marked sent by hand; False if there is none
    with that Message-ID."""
    stamp = to_db_time(now)
    cursor = db.execute(
        "UPDATE deliveries SET status = 'sent', sent_at = ?, updated_at = ?, last_error = '' "
        "WHERE issue_id = ? AND message_id = ? AND status = 'sending'",
        [stamp, stamp, issue_id, message_id],
    )
    return cursor.rowcount > 0


def mark_sending(db: Database, delivery_id: int, *, now: datetime) -> bool:
    """pending/sending → sending, one more attempt. False when the row is settled or gone."""
    cursor = db.execute(
        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = ? "
        "WHERE id = ? AND status IN ('pending', 'sending')",
        [to_db_time(now), delivery_id],
    )
    return cursor.rowcount > 0


def mark_result(
    db: Database,
    delivery_id: int,
    status: str,
    *,
    now: datetime,
    error: str = "",
    attempt: bool = False,
) -> None:
    """Record the outcome of a hand-off (or a decision not to make one); ``attempt`` counts
    one more attempt (one that ended before the hand-off's point of no return, which
    :func:`mark_sending` counts)."""
    if status not in DELIVERY_STATUSES:
        raise ValueError(f"unknown delivery status {status!r}")
    stamp = to_db_time(now)
    db.execute(
        "UPDATE deliveries SET status = ?, last_error = ?, updated_at = ?, "
        "attempts = attempts + ?, "
        "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
        [status, error, stamp, int(attempt), status, stamp, delivery_id],
    )


def deliveries_for_subscriber(db: Database, subscriber_id: int) -> list[dict[str, Any]]:
    """The delivery history of one subscriber, oldest issue first (for a data request)."""
    rows = db.execute(
        "SELECT i.number, i.period, d.status, d.message_id, d.attempts, d.last_error, "
        "d.created_at, d.sent_at FROM deliveries d JOIN issues i ON i.id = d.issue_id "
        "WHERE d.subscriber_id = ? ORDER BY i.number",
        [subscriber_id],
    ).fetchall()
    keys = (
        "issue",
        "period",
        "status",
        "message_id",
        "attempts",
        "last_error",
        "created_at",
        "sent_at",
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


# --- in pages and batches, for lists of any size ----------------------------------------------


def deliveries_page(
    db: Database, issue_id: int, status: str, *, after_id: int, limit: int
) -> list[Delivery]:
    """Up to ``limit`` rows of the issue in ``status`` with an id above ``after_id``, by id: a
    run walks a list of any size a page at a time (the (issue, status) index serves it)."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM deliveries WHERE issue_id = ? AND status = ? AND id > ? "
        "ORDER BY id LIMIT ?",
        [issue_id, status, after_id, limit],
    ).fetchall()
    return [_from_row(r) for r in rows]


def distinct_unsettled_variants(db: Database, issue_id: int) -> list[tuple[int | None, int | None]]:
    """The distinct (variant id, chapter id) of the issue's rows still pending or sending."""
    rows = db.execute(
        "SELECT DISTINCT variant_id, chapter_id FROM deliveries "
        "WHERE issue_id = ? AND status IN ('pending', 'sending')",
        [issue_id],
    ).fetchall()
    return [(None if v is None else int(v), None if c is None else int(c)) for v, c in rows]


def departed_reason(status: str) -> str:
    """Why a row was skipped whose member is no longer active (``status``: theirs now)."""
    return f"{status} before the message went out"


def skip_departed(db: Database, delivery_ids: Sequence[int], *, now: datetime) -> set[int]:
    """Of these rows, settle as ``skipped`` those still unsettled whose member is no longer
    active (they left, or were suspended, after their message was composed); returns their ids.
    Call inside the transaction that marks the others ``sending``."""
    stamp = to_db_time(now)
    skipped: set[int] = set()
    for first in range(0, len(delivery_ids), 500):  # within SQLite's limit of parameters
        chunk = list(delivery_ids[first : first + 500])
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            "SELECT d.id, s.status FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
            f"WHERE d.id IN ({marks}) AND d.status IN ('pending', 'sending') "
            "AND s.status != 'active'",
            chunk,
        ).fetchall()
        db.conn.executemany(
            "UPDATE deliveries SET status = 'skipped', last_error = ?, updated_at = ? WHERE id = ?",
            [(departed_reason(status), stamp, i) for i, status in rows],
        )
        skipped.update(int(i) for i, _ in rows)
    return skipped


def mark_sending_many(db: Database, delivery_ids: Sequence[int], *, now: datetime) -> set[int]:
    """:func:`mark_sending` for several rows (call inside a transaction); returns the ids that
    were marked (the others were settled or removed meanwhile)."""
    stamp = to_db_time(now)
    marked: set[int] = set()
    for delivery_id in delivery_ids:
        cursor = db.conn.execute(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at = ? "
            "WHERE id = ? AND status IN ('pending', 'sending')",
            [stamp, delivery_id],
        )
        if cursor.rowcount > 0:
            marked.add(delivery_id)
    return marked


def mark_results_many(
    db: Database,
    results: Sequence[tuple[int, str, str, bool]],
    *,
    now: datetime,
) -> None:
    """:func:`mark_result` for several (delivery id, status, error, attempt) at once (call inside
    a transaction)."""
    stamp = to_db_time(now)
    for _, status, _, _ in results:
        if status not in DELIVERY_STATUSES:
            raise ValueError(f"unknown delivery status {status!r}")
    db.conn.executemany(
        "UPDATE deliveries SET status = ?, last_error = ?, updated_at = ?, "
        "attempts = attempts + ?, "
        "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
        [
            (status, error, stamp, int(attempt), status, stamp, delivery_id)
            for delivery_id, status, error, attempt in results
        ],
    )
