"""Whether the database can be used: what the web app's ``/healthz`` answers."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from policyfeed.store import StoreError


def check_database(path: Path) -> None:
    """Open ``path`` read-only (never creating it) and read the subscribers table; StoreError
    saying why when that fails."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such database file")
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot be opened ({exc})") from None
    try:
        conn.execute("SELECT 1 FROM subscribers LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: not a usable policyfeed database ({exc})") from None
    finally:
        conn.close()
