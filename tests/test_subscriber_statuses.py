"""Subscriber statuses beyond active (pending sign-ups, paused members), the table rebuild that
allows them, consent records, and a member's request to be forgotten."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from policyfeed.audience.subscribers import (
    add_subscriber,
    address_hash,
    export_subscriber,
    forget_subscriber,
    import_subscribers,
)
from policyfeed.cli import App, cli
from policyfeed.config import Settings
from policyfeed.errors import ConflictError
from policyfeed.publish import publish
from policyfeed.store import open_db
from policyfeed.store import signups as signup_store
from policyfeed.store.migrations import MIGRATIONS, m009_subscriber_statuses

OLD = "2012-07-01T00:00:00Z"


def old_database(path: Path) -> sqlite_utils.Database:
    """A database as it was before the new statuses: subscribers (one removed), an issue with
    deliveries to them."""
    db = sqlite_utils.Database(path)
    db.conn.execute("PRAGMA foreign_keys = ON")
    MIGRATIONS.apply(db, stop_before="m009_subscriber_statuses")
    with db.conn:
        db.conn.execute(
            "INSERT INTO chapters (id, slug, name) VALUES (1, 'geneva', 'Geneva Chapter')"
        )
        db.conn.executemany(
            "INSERT INTO subscribers (id, email, name, chapter_id, status, created_at, "
            "updated_at, unsubscribed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (3, "ana@example.org", "Ana", 1, "active", OLD, OLD, None),
                (7, "bob@example.org", "", None, "unsubscribed", OLD, OLD, OLD),
                (9, "carla@example.org", "Carla", None, "bounced", OLD, OLD, None),
                (12, "dan@example.org", "", None, "active", OLD, OLD, None),
            ],
        )
        db.conn.execute("DELETE FROM subscribers WHERE id = 12")  # retired by m008's trigger
        db.conn.execute(
            "INSERT INTO issues (id, number, period, created_at, updated_at) "
            "VALUES (1, 1, '2012-07-02T08:00', ?, ?)",
            (OLD, OLD),
        )
        db.conn.executemany(
            "INSERT INTO deliveries (issue_id, subscriber_id, chapter_id, message_id, status, "
            "created_at, updated_at) VALUES (1, ?, ?, ?, 'sent', ?, ?)",
            [(3, 1, "m3@x", OLD, OLD), (7, None, "m7@x", OLD, OLD), (9, None, "m9@x", OLD, OLD)],
        )
    return db


def test_the_rebuild_keeps_every_subscriber_id_delivery_and_trigger(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = old_database(path)
    before_rows = old.execute("SELECT * FROM subscribers ORDER BY id").fetchall()
    cursor = old.execute("SELECT * FROM deliveries ORDER BY id")
    before_deliveries = cursor.fetchall()
    # Later migrations may add columns to deliveries: the rows keep every column they had.
    delivery_columns = ", ".join(column[0] for column in cursor.description)
    old.conn.close()

    db = open_db(path)

    rows = db.execute(
        "SELECT id, email, name, chapter_id, status, created_at, updated_at, unsubscribed_at "
        "FROM subscribers ORDER BY id"
    ).fetchall()
    assert rows == before_rows
    after = db.execute(f"SELECT {delivery_columns} FROM deliveries ORDER BY id").fetchall()
    assert after == before_deliveries
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    schema = {name: sql for name, sql in db.execute("SELECT name, sql FROM sqlite_master")}
    assert "REFERENCES subscribers(id)" in schema["deliveries"]
    assert "subscribers_rebuilt" not in " ".join(str(s) for s in schema.values())
    assert {"subscribers_status_chapter", "subscribers_retire_id"} <= set(schema)

    # The new statuses are allowed, anything else still is not; addresses stay unique in any
    # case; deliveries still cascade and ids are still retired.
    db.execute("UPDATE subscribers SET status = 'paused' WHERE id = 3")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE subscribers SET status = 'archived' WHERE id = 3")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO subscribers (email, created_at, updated_at) VALUES ('ANA@example.org', "
            "?, ?)",
            [OLD, OLD],
        )
    with pytest.raises(sqlite3.IntegrityError):  # foreign keys are enforced again
        db.execute(
            "INSERT INTO deliveries (issue_id, subscriber_id, message_id, created_at, updated_at)"
            " VALUES (1, 404, 'm404@x', ?, ?)",
            [OLD, OLD],
        )
    db.execute("DELETE FROM subscribers WHERE id = 9")
    assert db.execute("SELECT count(*) FROM deliveries WHERE subscriber_id = 9").fetchone() == (0,)
    retired = {r[0] for r in db.execute("SELECT id FROM retired_subscriber_ids")}
    assert retired == {9, 12}
    newcomer = add_subscriber(db, "erin@example.org", now=datetime.fromisoformat(OLD))
    assert newcomer.id == 13


def test_a_rebuild_whose_record_was_lost_is_not_done_twice(tmp_path: Path) -> None:
    """The process died after the rebuild committed, before sqlite-utils noted it: the next
    open finds the new schema and goes on."""
    path = tmp_path / "old.db"
    old = old_database(path)
    m009_subscriber_statuses(old)
    assert "m009_subscriber_statuses" not in {m.name for m in MIGRATIONS.applied(old)}
    old.conn.close()

    db = open_db(path)

    assert MIGRATIONS.pending(db) == []
    assert db.execute("SELECT count(*) FROM deliveries").fetchone() == (3,)


def test_the_rebuild_keeps_columns_that_later_migrations_added(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = old_database(path)
    with old.conn:
        old.conn.execute("ALTER TABLE subscribers ADD COLUMN bounce_count INTEGER DEFAULT 0")
        old.conn.execute("UPDATE subscribers SET bounce_count = 2 WHERE id = 9")
        old.conn.execute("CREATE INDEX subscribers_bounces ON subscribers (bounce_count)")
    old.conn.close()

    db = open_db(path)

    assert db.execute("SELECT bounce_count FROM subscribers WHERE id = 9").fetchone() == (2,)
    assert "subscribers_bounces" in {i.name for i in db["subscribers"].indexes}


# --- only active members get the digest -----------------------------------------------------


def test_pending_and_paused_members_get_no_digest(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    with demo_db.conn:
        demo_db.conn.execute(
            "UPDATE subscribers SET status = 'paused' WHERE email = 'ana.silva@example.org'"
        )
        demo_db.conn.execute(
            "UPDATE subscribers SET status = 'pending', confirmed_at = NULL "
            "WHERE email = 'chen.wei@example.org'"
        )

    result = publish(demo_db, settings, now=now)

    assert (result.status, result.recipients, result.sent) == ("sent", 3, 3)
    addressed = {
        p.read_bytes().split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0]
        for p in (settings.outbox_dir / "new").iterdir()
    }
    assert not any(b"ana.silva" in a or b"chen.wei" in a for a in addressed)
    assert len(addressed) == 3


# --- the command line -------------------------------------------------------------------------


@pytest.fixture
def cli_db(demo_db_path: Path, monkeypatch: pytest.MonkeyPatch, now: datetime) -> Path:
    monkeypatch.setattr(App, "now", lambda self: now)
    db = open_db(demo_db_path)
    with db.conn:
        db.conn.execute(
            "UPDATE subscribers SET status = 'paused' WHERE email = 'ana.silva@example.org'"
        )
        db.conn.execute(
            "UPDATE subscribers SET status = 'pending' WHERE email = 'chen.wei@example.org'"
        )
    db.conn.close()
    return demo_db_path


def cli_ok(db_path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", str(db_path), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", ["chen.wei@example.org"]),
        ("paused", ["ana.silva@example.org"]),
        (
            "active",
            ["policy-watch@example.org", "sam.taylor@example.org", "zoe.muller@example.org"],
        ),
        ("unsubscribed", []),
        ("bounced", []),
    ],
)
def test_list_selects_each_status(cli_db: Path, status: str, expected: list[str]) -> None:
    listed = json.loads(cli_ok(cli_db, "subscribers", "list", "--status", status, "--json"))
    assert [s["email"] for s in listed["subscribers"]] == expected
    assert all(s["status"] == status for s in listed["subscribers"])


def test_list_json_counts_every_status(cli_db: Path) -> None:
    listed = json.loads(cli_ok(cli_db, "subscribers", "list", "--json", "--status", "active"))
    assert listed["counts"] == {
        "pending": 1,
        "active": 3,
        "paused": 1,
        "unsubscribed": 0,
        "bounced": 0,
        "total": 5,
    }
    by_chapter = json.loads(cli_ok(cli_db, "subscribers", "list", "--json", "--chapter", ""))
    assert by_chapter["counts"]["total"] == len(by_chapter["subscribers"]) == 1


def test_list_refuses_an_unknown_status(cli_db: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(cli_db), "subscribers", "list", "--status", "x"])
    assert result.exit_code == 2
    assert "'pending', 'active', 'paused', 'unsubscribed', 'bounced'" in result.output


# --- consent and forgetting -------------------------------------------------------------------


def test_an_import_records_each_new_members_consent(
    db: sqlite_utils.Database, now: datetime, tmp_path: Path
) -> None:
    source = tmp_path / "members.csv"
    source.write_text("email,name\nana@example.org,Ana\n\nbob@example.org,\n", encoding="utf-8")
    import_subscribers(db, source, now=now)
    exported = export_subscriber(db, "bob@example.org")
    [consent] = exported["consents"]
    assert (consent["method"], consent["source"]) == ("import", "members.csv, line 4")
    assert consent["confirmed_at"] == consent["requested_at"] == "2012-07-30T12:00:00Z"


def test_forgetting_erases_everything_and_keeps_only_a_hash(
    db: sqlite_utils.Database, now: datetime
) -> None:
    add_subscriber(db, "Ana@Example.org", now=now, name="Ana Silva")
    forget_subscriber(db, "ana@example.org", now=now)
    dump = "\n".join(db.conn.iterdump())
    assert "Ana" not in dump and "ana@" not in dump.lower()
    assert signup_store.is_forgotten(db, address_hash("ANA@example.org"))
    assert address_hash("ana@example.org") in dump


def test_a_forgotten_address_is_left_out_of_an_import_and_refused_by_add(
    db: sqlite_utils.Database, now: datetime, tmp_path: Path
) -> None:
    add_subscriber(db, "ana@example.org", now=now)
    forget_subscriber(db, "ana@example.org", now=now)
    source = tmp_path / "old-list.csv"
    source.write_text("email\nANA@example.org\nbob@example.org\n", encoding="utf-8")

    result = import_subscribers(db, source, now=now + timedelta(days=1))

    assert (result.created, result.forgotten) == (1, 1)
    assert [r[0] for r in db.execute("SELECT email FROM subscribers")] == ["bob@example.org"]
    with pytest.raises(ConflictError, match="asked to be forgotten"):
        add_subscriber(db, "ana@example.org", now=now)
    back = add_subscriber(db, "ana@example.org", now=now, resubscribe=True)
    assert back.status == "active"
    assert not signup_store.is_forgotten(db, address_hash("ana@example.org"))


def test_forget_on_the_command_line(demo_db_path: Path, tmp_path: Path) -> None:
    out = cli_ok(demo_db_path, "subscribers", "forget", "zoe.muller@example.org", "--yes")
    assert out == (
        "Forgot zoe.muller@example.org: only a hash of the address is kept, to never mail it\n"
    )
    source = tmp_path / "again.csv"
    source.write_text("email\nzoe.muller@example.org\n", encoding="utf-8")
    out = cli_ok(demo_db_path, "subscribers", "import", str(source))
    assert out.endswith("; 1 had asked to be forgotten and was left out\n")
    result = CliRunner().invoke(
        cli, ["--db", str(demo_db_path), "subscribers", "forget", "nobody@example.org", "--yes"]
    )
    assert result.exit_code == 1
    assert "no subscriber 'nobody@example.org'" in result.output
