"""The SQLite store: opening the database, PRAGMAs, migrations, and (in submodules) the queries.

This package is the only place that writes SQL. Times are stored as UTC text in one fixed format
(``2012-07-25T07:00:00Z``) so that text order is time order and indexes serve date ranges.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from policyfeed.errors import PolicyfeedError
from policyfeed.store.migrations import MIGRATIONS

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class StoreError(PolicyfeedError):
    """The database cannot be opened or is not a policyfeed database."""


def to_db_time(moment: datetime) -> str:
    """An aware datetime as the stored UTC text."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    utc = moment.astimezone(UTC)
    if utc.year >= 1000:  # isoformat is 3 times faster; it writes years below 1000 as 0999
        return utc.replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    return utc.strftime(TIME_FORMAT)


def from_db_time(text: str) -> datetime:
    if len(text) == 20 and text[10] == "T" and text[19] == "Z":  # the stored form: parse it fast
        return datetime.fromisoformat(text)
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """All the writes inside the block happen, or none of them.

    Use this, not ``with db.conn:``: sqlite-utils 4 commits each ``db.execute`` write that starts
    outside an explicit transaction, so ``with db.conn:`` alone rolls nothing back. The write lock
    is taken at once (BEGIN IMMEDIATE). Inside another transaction the block is a savepoint: its
    own writes are undone on error, and the outer transaction decides the rest.
    """
    conn = db.conn
    if conn.in_transaction:
        conn.execute("SAVEPOINT policyfeed_nested")
        try:
            yield db
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO SAVEPOINT policyfeed_nested")
                conn.execute("RELEASE SAVEPOINT policyfeed_nested")
            raise
        conn.execute("RELEASE SAVEPOINT policyfeed_nested")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def open_db(path: Path | str, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) the database, set its PRAGMAs and apply pending migrations."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise StoreError(f"{path}: is a folder, not a database file")
    try:
        db = sqlite_utils.Database(path, execute_plugins=False)
        conn = db.conn
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA foreign_keys = ON")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":  # e.g. a read-only folder: keep going in the default mode
            pass
        conn.execute("PRAGMA synchronous = NORMAL")
        if migrate:
            MIGRATIONS.apply(db)
    except sqlite_utils.db.sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot open as a SQLite database ({exc})") from None
    return db


def memory_db() -> sqlite_utils.Database:
    """A migrated in-memory database (tests and dry runs)."""
    db = sqlite_utils.Database(memory=True, execute_plugins=False)
    db.conn.execute("PRAGMA foreign_keys = ON")
    MIGRATIONS.apply(db)
    return db
