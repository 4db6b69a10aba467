"""Rebuild the demo database (posts.db) from the committed sources in this folder.

Reproducible: the same sources give the same rows (the clock is fixed to the newest post).
Sources: posts.json (the posts), chapters.json (two demo chapters) and subscribers.csv (a few
example.org addresses, which never receive mail: `make run` delivers into the outbox/ folder).
Usage: python demo/make_demo_db.py posts.db
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from policyfeed.audience.subscribers import import_subscribers, load_chapters
from policyfeed.config import load_settings
from policyfeed.content.importers import import_posts
from policyfeed.store import open_db, transaction

HERE = Path(__file__).resolve().parent
# The demo's "now" when its posts were written; keeps created_at/updated_at reproducible.
DEMO_NOW = datetime(2012, 7, 25, 18, 0, tzinfo=UTC)


def build(target: Path) -> None:
    settings = load_settings(HERE.parent / "policyfeed.toml", environ={}, cwd=HERE.parent)
    tmp = target.with_name(target.name + ".new")
    for path in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
        path.unlink(missing_ok=True)
    db = open_db(tmp)
    import_posts(
        db,
        HERE / "posts.json",
        fmt="json",
        base_url=settings.base_url,
        tz=settings.tz,
        domain=settings.domain,
        now=DEMO_NOW,
    )
    chapters = json.loads((HERE / "chapters.json").read_text(encoding="utf-8"))
    load_chapters(db, chapters, source="chapters.json")
    import_subscribers(db, HERE / "subscribers.csv", now=DEMO_NOW)
    finish(db)
    tmp.replace(target)


def finish(db: Database) -> None:
    """Leave the file as policyfeed itself would keep it, so that opening it writes nothing.

    WAL mode stays on (open_db would switch it on, changing the file), the migration times are
    the demo's clock (so a rebuild gives the same bytes), and the WAL is folded in and removed.
    """
    with transaction(db):
        db.execute("UPDATE _sqlite_migrations SET applied_at = ?", [str(DEMO_NOW)])
    db.conn.execute("VACUUM")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "posts.db"))
