"""Reading without writing: a read-only stretch on an open connection (what a dry run does cannot
write by mistake), and a database opened read-only from the start (the editors' preview)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from sqlite_utils import Database

from policyfeed.store import StoreError


@contextlib.contextmanager
def read_only(db: Database) -> Iterator[None]:
    """Refuse every write on ``db`` inside the block (SQLite's ``query_only``)."""
    previous = int(db.execute("PRAGMA query_only").fetchone()[0])
    db.execute("PRAGMA query_only = ON")
    try:
        yield
    finally:
        db.execute(f"PRAGMA query_only = {previous}")


@contextlib.contextmanager
def opened_read_only(path: Path) -> Iterator[Database]:
    """``path`` opened read-only (never created, never migrated, no PRAGMA that writes), closed
    after the block; StoreError when it cannot be opened."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such database file")
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot be opened ({exc})") from None
    try:
        conn.execute("PRAGMA query_only = ON")
        yield Database(conn, execute_plugins=False)
    finally:
        conn.close()
