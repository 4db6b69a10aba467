"""A read-only stretch on an open connection: what a dry run does cannot write by mistake."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlite_utils import Database


@contextlib.contextmanager
def read_only(db: Database) -> Iterator[None]:
    """Refuse every write on ``db`` inside the block (SQLite's ``query_only``)."""
    previous = int(db.execute("PRAGMA query_only").fetchone()[0])
    db.execute("PRAGMA query_only = ON")
    try:
        yield
    finally:
        db.execute(f"PRAGMA query_only = {previous}")
