"""Migrations: an empty database gets the whole schema; re-opening applies nothing new."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from policyfeed.store import StoreError, open_db
from policyfeed.store.migrations import MIGRATIONS

# The columns the foundation migrations create, in order. Later migrations may only append
# columns (ALTER TABLE … ADD COLUMN), so each table must start with exactly these.
EXPECTED_COLUMNS = {
    "posts": [
        ("id", "INTEGER"),
        ("guid", "TEXT"),
        ("slug", "TEXT"),
        ("title", "TEXT"),
        ("summary", "TEXT"),
        ("body_html", "TEXT"),
        ("body_text", "TEXT"),
        ("author", "TEXT"),
        ("url", "TEXT"),
        ("status", "TEXT"),
        ("published_at", "TEXT"),
        ("updated_at", "TEXT"),
        ("created_at", "TEXT"),
    ],
    "topics": [("id", "INTEGER"), ("slug", "TEXT"), ("name", "TEXT")],
    "post_topics": [("post_id", "INTEGER"), ("topic_id", "INTEGER")],
    "posts_fts": [("title", ""), ("summary", ""), ("body_text", "")],
    "issues": [
        ("id", "INTEGER"),
        ("number", "INTEGER"),
        ("period", "TEXT"),
        ("subject", "TEXT"),
        ("note", "TEXT"),
        ("status", "TEXT"),
        ("created_at", "TEXT"),
        ("updated_at", "TEXT"),
        ("sent_at", "TEXT"),
    ],
    "issue_posts": [("issue_id", "INTEGER"), ("post_id", "INTEGER"), ("position", "INTEGER")],
    "chapters": [("id", "INTEGER"), ("slug", "TEXT"), ("name", "TEXT"), ("intro", "TEXT")],
    "chapter_topics": [("chapter_id", "INTEGER"), ("topic_id", "INTEGER")],
    "subscribers": [
        ("id", "INTEGER"),
        ("email", "TEXT"),
        ("name", "TEXT"),
        ("chapter_id", "INTEGER"),
        ("status", "TEXT"),
        ("created_at", "TEXT"),
        ("updated_at", "TEXT"),
        ("unsubscribed_at", "TEXT"),
    ],
    "deliveries": [
        ("id", "INTEGER"),
        ("issue_id", "INTEGER"),
        ("subscriber_id", "INTEGER"),
        ("chapter_id", "INTEGER"),
        ("message_id", "TEXT"),
        ("status", "TEXT"),
        ("attempts", "INTEGER"),
        ("last_error", "TEXT"),
        ("created_at", "TEXT"),
        ("updated_at", "TEXT"),
        ("sent_at", "TEXT"),
    ],
}


def applied_names(db: sqlite_utils.Database) -> list[str]:
    return [m.name for m in MIGRATIONS.applied(db)]


def registered_names() -> list[str]:
    return [m.name for m in MIGRATIONS.pending(sqlite_utils.Database(memory=True))]


def test_migrating_an_empty_database_creates_every_table_with_its_columns(tmp_path: Path) -> None:
    db = open_db(tmp_path / "new.db")
    for table, expected in EXPECTED_COLUMNS.items():
        columns = [(c.name, c.type) for c in db[table].columns]
        assert columns[: len(expected)] == expected, table


def test_migrating_an_empty_database_records_every_migration_in_order(tmp_path: Path) -> None:
    db = open_db(tmp_path / "new.db")
    assert applied_names(db) == registered_names()
    assert applied_names(db)[:5] == [
        "m001_posts_and_topics",
        "m002_posts_fts",
        "m003_issues",
        "m004_chapters_and_subscribers",
        "m005_deliveries",
    ]
    assert MIGRATIONS.pending(db) == []


def test_reopening_applies_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    first = open_db(path)
    before = first.execute("SELECT id, name, applied_at FROM _sqlite_migrations").fetchall()
    first.conn.close()

    again = open_db(path)
    after = again.execute("SELECT id, name, applied_at FROM _sqlite_migrations").fetchall()
    assert after == before


def test_an_older_database_is_upgraded_on_open_and_keeps_its_posts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    MIGRATIONS.apply(old, stop_before="m003_issues")
    old.execute(
        "INSERT INTO posts (slug, title, updated_at, created_at) "
        "VALUES ('kept', 'Kept', '2012-07-01T00:00:00Z', '2012-07-01T00:00:00Z')"
    )
    old.conn.commit()
    assert "issues" not in old.table_names()
    old.conn.close()

    db = open_db(path)
    assert {"issues", "issue_posts", "subscribers", "deliveries"} <= set(db.table_names())
    assert applied_names(db) == registered_names()
    assert db.execute("SELECT slug FROM posts").fetchall() == [("kept",)]


def test_open_without_migrate_leaves_an_empty_file_empty(tmp_path: Path) -> None:
    db = open_db(tmp_path / "bare.db", migrate=False)
    assert db.table_names() == []


def test_the_status_index_and_full_text_table_exist(tmp_path: Path) -> None:
    db = open_db(tmp_path / "new.db")
    indexes = {index.name: index.columns for index in db["posts"].indexes}
    assert indexes["posts_status_published"] == ["status", "published_at"]
    triggers = {t.name for t in db["posts"].triggers}
    assert {"posts_ai", "posts_ad", "posts_au"} <= triggers


def test_a_file_that_is_not_sqlite_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 20)
    with pytest.raises(StoreError, match=r"notes\.db: cannot open as a SQLite database"):
        open_db(path)
    assert path.read_text().startswith("these are my notes")


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder, not a database file"):
        open_db(tmp_path)


def test_post_status_is_checked_by_the_schema(tmp_path: Path) -> None:
    db = open_db(tmp_path / "new.db")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO posts (slug, title, status, updated_at, created_at) "
            "VALUES ('x', 'X', 'archived', '2012-07-01T00:00:00Z', '2012-07-01T00:00:00Z')"
        )


def _old_database_with_issues(path: Path) -> None:
    """A database as it was before m015: a sent issue with its posts and deliveries, a draft."""
    old = sqlite_utils.Database(path)
    old.conn.execute("PRAGMA foreign_keys = ON")
    MIGRATIONS.apply(old, stop_before="m015_issue_approval")
    stamp = "2012-07-30T06:00:00Z"
    with old.conn:
        for post_id in (1, 2):
            old.execute(
                "INSERT INTO posts (id, slug, title, status, published_at, updated_at, "
                "created_at) VALUES (?, ?, 'T', 'published', ?, ?, ?)",
                [post_id, f"p{post_id}", stamp, stamp, stamp],
            )
        old.execute(
            "INSERT INTO subscribers (id, email, created_at, updated_at) "
            "VALUES (1, 'a@example.org', ?, ?)",
            [stamp, stamp],
        )
        for number, status in ((1, "sent"), (2, "draft")):
            old.execute(
                "INSERT INTO issues (id, number, period, subject, status, created_at, "
                "updated_at) VALUES (?, ?, ?, 'S', ?, ?, ?)",
                [number, number, f"week-{number}", status, stamp, stamp],
            )
            old.execute(
                "INSERT INTO issue_posts (issue_id, post_id, position) VALUES (?, ?, 1)",
                [number, number],
            )
        old.execute(
            "INSERT INTO deliveries (issue_id, subscriber_id, message_id, status, created_at, "
            "updated_at) VALUES (1, 1, 'm1@x', 'sent', ?, ?)",
            [stamp, stamp],
        )
    old.conn.close()


def test_m015_keeps_every_issue_its_posts_and_deliveries(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_database_with_issues(path)

    db = open_db(path)

    rows = db.execute(
        "SELECT number, status, approved_at, subject_edited FROM issues ORDER BY number"
    ).fetchall()
    assert rows == [(1, "sent", None, 0), (2, "draft", None, 0)]
    assert db.execute("SELECT issue_id, post_id FROM issue_posts ORDER BY 1").fetchall() == [
        (1, 1),
        (2, 2),
    ]
    assert db.execute("SELECT issue_id, status FROM deliveries").fetchall() == [(1, "sent")]
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert applied_names(db) == registered_names()


def test_m015_a_period_is_unique_among_the_issues_not_discarded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_database_with_issues(path)
    db = open_db(path)
    stamp = "2012-07-30T06:00:00Z"
    insert = (
        "INSERT INTO issues (number, period, status, created_at, updated_at) "
        "VALUES (?, 'week-2', ?, ?, ?)"
    )

    with pytest.raises(sqlite3.IntegrityError):
        db.execute(insert, [3, "draft", stamp, stamp])
    db.execute("UPDATE issues SET status = 'discarded' WHERE number = 2")
    db.execute(insert, [3, "draft", stamp, stamp])  # the period is free again
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(insert, [4, "approved", stamp, stamp])
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE issues SET status = 'archived' WHERE number = 3")


def test_m015_deleting_an_issue_still_cascades_to_its_posts_and_deliveries(tmp_path) -> None:
    path = tmp_path / "old.db"
    _old_database_with_issues(path)
    db = open_db(path)

    db.execute("DELETE FROM issues WHERE number = 1")

    assert db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
    assert db.execute("SELECT issue_id FROM issue_posts").fetchall() == [(2,)]


def test_m015_run_again_after_a_crash_before_it_was_recorded_changes_nothing(tmp_path) -> None:
    from policyfeed.store.migrations import m015_issue_approval

    path = tmp_path / "old.db"
    _old_database_with_issues(path)
    db = open_db(path)
    before = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()

    m015_issue_approval(db)

    assert db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before
