"""What builds keep between runs, per output folder (``build_state``): the site's and the issue
archive's incremental state, WebSub pings still to send, and the mark that a folder is one this
database builds into. Values are opaque bytes; their owners in ``policyfeed.site`` read them."""

from __future__ import annotations

from sqlite_utils import Database

from policyfeed.store import transaction

#: The row that says this database builds into a folder (written before the first file).
CLAIM = "claimed"


def read(db: Database, folder: str, name: str) -> bytes | None:
    row = db.execute(
        "SELECT data FROM build_state WHERE folder = ? AND name = ?", [folder, name]
    ).fetchone()
    if row is None:
        return None
    data = row[0]
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def write(db: Database, folder: str, name: str, data: bytes) -> bool:
    """Keep ``data`` as the state ``name`` of ``folder``; writes only when it changed."""
    if read(db, folder, name) == data:
        return False
    with transaction(db):
        db.execute(
            "INSERT INTO build_state (folder, name, data) VALUES (?, ?, ?) "
            "ON CONFLICT (folder, name) DO UPDATE SET data = excluded.data",
            [folder, name, data],
        )
    return True


def remove(db: Database, folder: str, name: str) -> None:
    if read(db, folder, name) is None:
        return
    with transaction(db):
        db.execute("DELETE FROM build_state WHERE folder = ? AND name = ?", [folder, name])


def is_claimed(db: Database, folder: str) -> bool:
    """Whether this database has built (or started building) into ``folder``."""
    row = db.execute("SELECT 1 FROM build_state WHERE folder = ? LIMIT 1", [folder]).fetchone()
    return row is not None


def claim(db: Database, folder: str) -> None:
    write(db, folder, CLAIM, b"")
