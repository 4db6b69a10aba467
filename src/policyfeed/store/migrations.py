"""Every schema change, in order. Applied on every open; never edit one that has shipped."""

from __future__ import annotations

import re
import sqlite3

from sqlite_utils import Database, Migrations

MIGRATIONS = Migrations("policyfeed")


@MIGRATIONS()
def m001_posts_and_topics(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE posts (
            id INTEGER PRIMARY KEY,
            guid TEXT UNIQUE,
            slug TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            body_html TEXT NOT NULL DEFAULT '',
            body_text TEXT NOT NULL DEFAULT '',
            author TEXT NOT NULL DEFAULT '',
            url TEXT,
            status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published')),
            published_at TEXT,
            updated_at TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """
    )
    # Serves "latest published posts" and "published since X" (newest first, bounded).
    db.execute("CREATE INDEX posts_status_published ON posts (status, published_at)")
    db.execute(
        """
        CREATE TABLE topics (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE post_topics (
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
            topic_id INTEGER NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
            PRIMARY KEY (post_id, topic_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX post_topics_topic ON post_topics (topic_id, post_id)")


@MIGRATIONS()
def m002_posts_fts(db: Database) -> None:
    db.table("posts").enable_fts(
        ["title", "summary", "body_text"], fts_version="FTS5", create_triggers=True
    )


@MIGRATIONS()
def m003_issues(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE issues (
            id INTEGER PRIMARY KEY,
            number INTEGER NOT NULL UNIQUE,
            period TEXT NOT NULL UNIQUE,
            subject TEXT NOT NULL DEFAULT '',
            note TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'sending', 'sent')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE issue_posts (
            issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
            post_id INTEGER NOT NULL UNIQUE REFERENCES posts(id) ON DELETE RESTRICT,
            position INTEGER NOT NULL,
            PRIMARY KEY (issue_id, position)
        )
        """
    )


@MIGRATIONS()
def m004_chapters_and_subscribers(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE chapters (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            intro TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute(
        """
        CREATE TABLE chapter_topics (
            chapter_id INTEGER NOT NULL REFERENCES chapters(id) ON DELETE CASCADE,
            topic_id INTEGER NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
            PRIMARY KEY (chapter_id, topic_id)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            name TEXT NOT NULL DEFAULT '',
            chapter_id INTEGER REFERENCES chapters(id) ON DELETE SET NULL,
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'unsubscribed', 'bounced')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            unsubscribed_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX subscribers_status_chapter ON subscribers (status, chapter_id)")


@MIGRATIONS()
def m005_deliveries(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            chapter_id INTEGER REFERENCES chapters(id) ON DELETE SET NULL,
            message_id TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT,
            UNIQUE (issue_id, subscriber_id)
        )
        """
    )
    db.execute("CREATE INDEX deliveries_issue_status ON deliveries (issue_id, status)")


@MIGRATIONS()
def m006_post_journal(db: Database) -> None:
    # Every change to a post or its topics, with the values it had before, so that `build` can
    # re-render only what changed since its last run (see policyfeed.site.build). Append-only.
    db.execute(
        """
        CREATE TABLE post_journal (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            post_id INTEGER NOT NULL,
            old_slug TEXT,
            old_status TEXT,
            old_published_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TRIGGER post_journal_insert AFTER INSERT ON posts BEGIN
            INSERT INTO post_journal (post_id) VALUES (new.id);
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER post_journal_update AFTER UPDATE ON posts BEGIN
            INSERT INTO post_journal (post_id, old_slug, old_status, old_published_at)
            VALUES (old.id, old.slug, old.status, old.published_at);
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER post_journal_delete AFTER DELETE ON posts BEGIN
            INSERT INTO post_journal (post_id, old_slug, old_status, old_published_at)
            VALUES (old.id, old.slug, old.status, old.published_at);
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER post_journal_topic_insert AFTER INSERT ON post_topics BEGIN
            INSERT INTO post_journal (post_id) VALUES (new.post_id);
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER post_journal_topic_delete AFTER DELETE ON post_topics BEGIN
            INSERT INTO post_journal (post_id) VALUES (old.post_id);
        END
        """
    )


@MIGRATIONS()
def m007_issue_journal(db: Database) -> None:
    # Every change to an issue or its selection, so that `build` can re-render only the web
    # versions of issues that changed (see policyfeed.site.issue_archive); post changes are already
    # in post_journal. ``old_number`` is the number the issue had before the change: NULL when it
    # did not exist yet. ``status_only`` is 1 for an update that left every other column as it
    # was (status, updated_at and sent_at move at each delivery step). Append-only.
    db.execute(
        """
        CREATE TABLE issue_journal (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            issue_id INTEGER NOT NULL,
            old_number INTEGER,
            status_only INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute(
        """
        CREATE TRIGGER issue_journal_insert AFTER INSERT ON issues BEGIN
            INSERT INTO issue_journal (issue_id) VALUES (new.id);
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER issue_journal_update AFTER UPDATE ON issues BEGIN
            INSERT INTO issue_journal (issue_id, old_number, status_only)
            VALUES (old.id, old.number,
                    new.id IS old.id AND new.number IS old.number AND new.period IS old.period
                    AND new.subject IS old.subject AND new.note IS old.note
                    AND new.created_at IS old.created_at);
            INSERT INTO issue_journal (issue_id)
                SELECT new.id WHERE new.id IS NOT old.id;
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER issue_journal_delete AFTER DELETE ON issues BEGIN
            INSERT INTO issue_journal (issue_id, old_number) VALUES (old.id, old.number);
        END
        """
    )
    for event, row in (("INSERT", "new"), ("DELETE", "old")):
        db.execute(
            f"""
            CREATE TRIGGER issue_journal_posts_{event.lower()} AFTER {event} ON issue_posts BEGIN
                INSERT INTO issue_journal (issue_id, old_number)
                VALUES ({row}.issue_id,
                        (SELECT number FROM issues WHERE id = {row}.issue_id));
            END
            """
        )
    db.execute(
        """
        CREATE TRIGGER issue_journal_posts_update AFTER UPDATE ON issue_posts BEGIN
            INSERT INTO issue_journal (issue_id, old_number)
            VALUES (old.issue_id, (SELECT number FROM issues WHERE id = old.issue_id));
            INSERT INTO issue_journal (issue_id, old_number)
                SELECT new.issue_id, (SELECT number FROM issues WHERE id = new.issue_id)
                WHERE new.issue_id IS NOT old.issue_id;
        END
        """
    )


@MIGRATIONS()
def m008_retired_subscriber_ids(db: Database) -> None:
    # subscribers.id is a plain INTEGER PRIMARY KEY, so SQLite would give the id of the newest
    # removed subscriber to the next one; the unsubscribe links in mail already sent name that
    # id. Removed ids are kept here and new subscribers are numbered after them.
    db.execute("CREATE TABLE retired_subscriber_ids (id INTEGER PRIMARY KEY)")
    db.execute(
        """
        CREATE TRIGGER subscribers_retire_id AFTER DELETE ON subscribers BEGIN
            INSERT OR IGNORE INTO retired_subscriber_ids (id) VALUES (old.id);
        END
        """
    )


_OLD_STATUS_CHECK = "CHECK (status IN ('active', 'unsubscribed', 'bounced'))"
_NEW_STATUS_CHECK = "CHECK (status IN ('pending', 'active', 'paused', 'unsubscribed', 'bounced'))"


@MIGRATIONS(transactional=False)
def m009_subscriber_statuses(db: Database) -> None:
    # Sign-ups wait as `pending` until confirmed; a member may pause. SQLite cannot change a
    # CHECK constraint in place, so the table is rebuilt (https://sqlite.org/lang_altertable.html,
    # "Making Other Kinds Of Table Schema Changes"): same columns in the same order, same ids,
    # then its indexes and triggers (m008's id retirement among them) as they were. Foreign keys
    # are off meanwhile: with them on, dropping the old table would cascade into deliveries.
    # PRAGMA foreign_keys cannot change inside a transaction, hence transactional=False and a
    # transaction of our own; if the process dies after COMMIT but before sqlite-utils records
    # the migration, the next open finds the new constraint and does nothing.
    conn = db.conn
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    if conn.in_transaction:
        conn.commit()
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        if conn.execute("PRAGMA foreign_keys").fetchone()[0]:
            raise RuntimeError("subscribers: foreign keys could not be turned off; not migrated")
        conn.execute("BEGIN IMMEDIATE")  # read the schema under the lock: another process may
        try:  # be migrating the same file
            _rebuild_subscribers(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA legacy_alter_table = OFF")
        conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")


def _rebuild_subscribers(conn: sqlite3.Connection) -> None:
    table_sql = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'subscribers'"
    ).fetchone()[0]
    if _NEW_STATUS_CHECK in table_sql:
        return
    if table_sql.count(_OLD_STATUS_CHECK) != 1:
        raise RuntimeError(f"subscribers: unexpected schema, not migrated: {table_sql}")
    new_sql, renamed = re.subn(
        r"^\s*CREATE\s+TABLE\s+(\"subscribers\"|\[subscribers\]|`subscribers`|subscribers)\b",
        "CREATE TABLE subscribers_rebuilt",
        table_sql.replace(_OLD_STATUS_CHECK, _NEW_STATUS_CHECK),
        count=1,
        flags=re.IGNORECASE,
    )
    if renamed != 1:
        raise RuntimeError(f"subscribers: unexpected schema, not migrated: {table_sql}")
    dependants = conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'subscribers' "
        "AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name"
    ).fetchall()
    conn.execute(new_sql)
    conn.execute("INSERT INTO subscribers_rebuilt SELECT * FROM subscribers")
    conn.execute("DROP TABLE subscribers")
    # Legacy renaming leaves every other table's REFERENCES subscribers(id) as it is (it names
    # the rebuilt table once renamed) and does not re-check other tables' triggers.
    conn.execute("PRAGMA legacy_alter_table = ON")
    conn.execute("ALTER TABLE subscribers_rebuilt RENAME TO subscribers")
    conn.execute("PRAGMA legacy_alter_table = OFF")
    for (sql,) in dependants:
        conn.execute(sql)
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"subscribers rebuild broke foreign keys: {broken[:5]}")


@MIGRATIONS()
def m010_sign_up_and_consent(db: Database) -> None:
    # When a member confirmed (followed the link of a sign-up, or was vouched for by an
    # operator or an import).
    db.execute("ALTER TABLE subscribers ADD COLUMN confirmed_at TEXT")
    # One row per sign-up, import or operator's addition: what the member asked for and agreed
    # to, when, and from where. A form's row waits unconfirmed until its link is followed.
    db.execute(
        """
        CREATE TABLE consents (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            method TEXT NOT NULL CHECK (method IN ('form', 'import', 'operator')),
            source TEXT NOT NULL DEFAULT '',
            consent_text TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL DEFAULT '',
            chapter_id INTEGER REFERENCES chapters(id) ON DELETE SET NULL,
            requested_at TEXT NOT NULL,
            ip TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT '',
            confirmed_at TEXT,
            confirm_ip TEXT NOT NULL DEFAULT '',
            confirm_user_agent TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX consents_subscriber ON consents (subscriber_id, requested_at)")
    # Addresses whose owner asked to be forgotten: only a hash, so that no import or sign-up
    # mails them again.
    db.execute(
        """
        CREATE TABLE forgotten_addresses (
            address_hash TEXT PRIMARY KEY,
            forgotten_at TEXT NOT NULL
        ) WITHOUT ROWID
        """
    )
    # The one-off messages of the sign-up (confirmation, welcome, preferences link): a ledger
    # like the deliveries', holding the finished message until it is handed over.
    db.execute(
        """
        CREATE TABLE notices (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('confirm', 'welcome', 'preferences')),
            message_id TEXT NOT NULL UNIQUE,
            message BLOB,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'expired')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            sent_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX notices_status ON notices (status, id)")
    db.execute("CREATE INDEX notices_subscriber ON notices (subscriber_id)")
    # Requests counted for the web forms' rate limits (keys are hashes of an IP address or a
    # mail address), kept for a day.
    db.execute(
        """
        CREATE TABLE throttle (
            bucket TEXT NOT NULL,
            key TEXT NOT NULL,
            at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX throttle_key ON throttle (bucket, key, at)")
    db.execute("CREATE INDEX throttle_at ON throttle (at)")


@MIGRATIONS()
def m011_bounces_and_complaints(db: Database) -> None:
    # What came back from the mail system about a delivery. ``source_key`` names the report it
    # came from (a digest of the bounce message, the provider's notification id, or the SMTP
    # hand-off), so reading the same report again records nothing. ``cleared_at`` is set when an
    # editor reactivates the member: those bounces no longer count.
    db.execute(
        """
        CREATE TABLE bounces (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            delivery_id INTEGER REFERENCES deliveries(id) ON DELETE SET NULL,
            kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft')),
            status TEXT NOT NULL DEFAULT '',
            diagnostic TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL CHECK (source IN ('smtp', 'mailbox', 'webhook')),
            source_key TEXT NOT NULL UNIQUE,
            received_at TEXT NOT NULL,
            cleared_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX bounces_subscriber ON bounces (subscriber_id, delivery_id)")
    db.execute("CREATE INDEX bounces_delivery ON bounces (delivery_id)")
    # Feedback reports (RFC 5965) and provider complaints: the member marked a digest as spam.
    db.execute(
        """
        CREATE TABLE complaints (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            delivery_id INTEGER REFERENCES deliveries(id) ON DELETE SET NULL,
            feedback_type TEXT NOT NULL DEFAULT 'abuse',
            reporter TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL CHECK (source IN ('mailbox', 'webhook')),
            source_key TEXT NOT NULL UNIQUE,
            received_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX complaints_subscriber ON complaints (subscriber_id)")
    db.execute("CREATE INDEX complaints_delivery ON complaints (delivery_id)")


@MIGRATIONS()
def m012_build_state(db: Database) -> None:
    # What the last build into each output folder left (policyfeed.site.state and friends),
    # kept here rather than in the folder, which a web server or a CDN sync would publish.
    # ``folder`` is the output folder's absolute path; ``name`` the kind of state.
    db.execute(
        """
        CREATE TABLE build_state (
            folder TEXT NOT NULL,
            name TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (folder, name)
        ) WITHOUT ROWID
        """
    )


@MIGRATIONS()
def m013_no_future_changes(db: Database) -> None:
    # Imports could store a post's last change in the future (an "updated" of 2099), which then
    # dated every feed holding the post there. Saves now keep it at or before the save; rows
    # written before get the time of this migration.
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    db.execute("UPDATE posts SET updated_at = ? WHERE updated_at > ?", [stamp, stamp])


@MIGRATIONS()
def m014_source_ids(db: Database) -> None:
    # An imported id that is no absolute URI ("42", "not a uri at all") was published as the
    # Atom id (W3C InvalidFullLink). It is kept as ``source_id`` (re-imports still match it)
    # and the post is published under its own tag: URI (given at its next save; until then
    # the feeds derive the same one).
    from policyfeed.model import is_absolute_uri

    db.execute("ALTER TABLE posts ADD COLUMN source_id TEXT")
    db.execute(
        "CREATE UNIQUE INDEX posts_source_id ON posts (source_id) WHERE source_id IS NOT NULL"
    )
    rows = db.execute("SELECT id, guid FROM posts WHERE guid IS NOT NULL").fetchall()
    for post_id, guid in rows:
        if not is_absolute_uri(guid):
            db.execute("UPDATE posts SET source_id = ?, guid = NULL WHERE id = ?", [guid, post_id])


# --- m015: an issue's approval ------------------------------------------------------------

_OLD_ISSUE_CHECK = "CHECK (status IN ('draft', 'sending', 'sent'))"
_NEW_ISSUE_CHECK = "CHECK (status IN ('draft', 'approved', 'sending', 'sent', 'discarded'))"
_OLD_PERIOD = "period TEXT NOT NULL UNIQUE"
#: The statuses whose issues the web archive showed from m015 on: approved for sending, or sent.
ARCHIVED_ISSUE_STATUSES = "('approved', 'sending', 'sent')"
#: From m021 on: only issues whose delivery began (an approved issue may still be refused).
DELIVERED_ISSUE_STATUSES = "('sending', 'sent')"


def _issue_journal_triggers(shown: str = ARCHIVED_ISSUE_STATUSES) -> list[str]:
    """m007's journal of issue changes, where ``old_number`` is the number the issue had *in
    the web archive* before the change (NULL: it was not there: it did not exist, or was a
    draft or discarded), and a change of status alone is ``status_only`` only when it neither
    puts the issue into the archive nor takes it out (``shown``: the statuses it shows)."""
    number_shown = f"(SELECT number FROM issues WHERE id = {{row}}.issue_id AND status IN {shown})"
    triggers = [
        """
        CREATE TRIGGER issue_journal_insert AFTER INSERT ON issues BEGIN
            INSERT INTO issue_journal (issue_id) VALUES (new.id);
        END
        """,
        f"""
        CREATE TRIGGER issue_journal_update AFTER UPDATE ON issues BEGIN
            INSERT INTO issue_journal (issue_id, old_number, status_only)
            VALUES (old.id, CASE WHEN old.status IN {shown} THEN old.number END,
                    new.id IS old.id AND new.number IS old.number AND new.period IS old.period
                    AND new.subject IS old.subject AND new.note IS old.note
                    AND new.created_at IS old.created_at
                    AND (old.status IN {shown}) = (new.status IN {shown}));
            INSERT INTO issue_journal (issue_id)
                SELECT new.id WHERE new.id IS NOT old.id;
        END
        """,
        f"""
        CREATE TRIGGER issue_journal_delete AFTER DELETE ON issues BEGIN
            INSERT INTO issue_journal (issue_id, old_number)
            VALUES (old.id, CASE WHEN old.status IN {shown} THEN old.number END);
        END
        """,
    ]
    for event, row in (("INSERT", "new"), ("DELETE", "old")):
        triggers.append(
            f"""
            CREATE TRIGGER issue_journal_posts_{event.lower()} AFTER {event} ON issue_posts BEGIN
                INSERT INTO issue_journal (issue_id, old_number)
                VALUES ({row}.issue_id, {number_shown.format(row=row)});
            END
            """
        )
    triggers.append(
        f"""
        CREATE TRIGGER issue_journal_posts_update AFTER UPDATE ON issue_posts BEGIN
            INSERT INTO issue_journal (issue_id, old_number)
            VALUES (old.issue_id, {number_shown.format(row="old")});
            INSERT INTO issue_journal (issue_id, old_number)
                SELECT new.issue_id, {number_shown.format(row="new")}
                WHERE new.issue_id IS NOT old.issue_id;
        END
        """
    )
    return triggers


@MIGRATIONS(transactional=False)
def m015_issue_approval(db: Database) -> None:
    # An issue is a draft until approved (digest.approval = "required": by an editor; "none":
    # by publish as it begins), then sending, then sent; a draft or an approved issue may be
    # discarded instead (its posts freed, its number never reused). The status CHECK gains
    # 'approved' and 'discarded', and a period is unique among the issues not discarded, so a
    # period whose draft was thrown away can have another. SQLite changes neither in place: the
    # table is rebuilt as m009 rebuilds subscribers (same columns and ids, foreign keys off,
    # a transaction of our own, nothing to do if a previous run committed it). New columns:
    # when it was approved (lateness counts from then), when the copy for approval went to the
    # editor (once per draft), when it was discarded, and whether an editor wrote its subject.
    # The issue journal's triggers are remade so that the web archive, which shows no draft and
    # no discarded issue, hears when an issue enters or leaves it.
    conn = db.conn
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'issues'"
    ).fetchone()
    table_sql = row[0]
    if _NEW_ISSUE_CHECK in table_sql:
        return
    if table_sql.count(_OLD_ISSUE_CHECK) != 1 or table_sql.count(_OLD_PERIOD) != 1:
        raise RuntimeError(f"issues: unexpected schema, not migrated: {table_sql}")
    new_sql, renamed = re.subn(
        r"^\s*CREATE\s+TABLE\s+(\"issues\"|\[issues\]|`issues`|issues)\b",
        "CREATE TABLE issues_rebuilt",
        table_sql.replace(_OLD_ISSUE_CHECK, _NEW_ISSUE_CHECK).replace(
            _OLD_PERIOD, "period TEXT NOT NULL"
        ),
        count=1,
        flags=re.IGNORECASE,
    )
    if renamed != 1:
        raise RuntimeError(f"issues: unexpected schema, not migrated: {table_sql}")
    foreign_keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    if conn.in_transaction:
        conn.commit()
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        if conn.execute("PRAGMA foreign_keys").fetchone()[0]:
            raise RuntimeError("issues: foreign keys could not be turned off; not migrated")
        conn.execute("BEGIN IMMEDIATE")
        try:
            journal = [
                name
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                    "AND name LIKE 'issue\\_journal\\_%' ESCAPE '\\'"
                )
            ]
            for name in journal:
                conn.execute(f'DROP TRIGGER "{name}"')
            dependants = conn.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'issues' "
                "AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name"
            ).fetchall()
            conn.execute(new_sql)
            conn.execute("INSERT INTO issues_rebuilt SELECT * FROM issues")
            conn.execute("DROP TABLE issues")
            conn.execute("PRAGMA legacy_alter_table = ON")
            conn.execute("ALTER TABLE issues_rebuilt RENAME TO issues")
            conn.execute("PRAGMA legacy_alter_table = OFF")
            for (sql,) in dependants:
                conn.execute(sql)
            for column in ("approved_at TEXT", "review_sent_at TEXT", "discarded_at TEXT"):
                conn.execute(f"ALTER TABLE issues ADD COLUMN {column}")
            conn.execute(
                "ALTER TABLE issues ADD COLUMN subject_edited INTEGER NOT NULL DEFAULT 0 "
                "CHECK (subject_edited IN (0, 1))"
            )
            conn.execute(
                "CREATE UNIQUE INDEX issues_period_kept ON issues (period) "
                "WHERE status != 'discarded'"
            )
            # Publish looks for the approved issues waiting to go out, oldest first.
            conn.execute("CREATE INDEX issues_status_number ON issues (status, number)")
            for sql in _issue_journal_triggers():
                conn.execute(sql)
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"issues rebuild broke foreign keys: {broken[:5]}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA legacy_alter_table = OFF")
        conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")


@MIGRATIONS()
def m016_sources_and_announced_posts(db: Database) -> None:
    # The [[sources]] of the config whose feeds `sources sync` copies posts from: what the last
    # fetch left (its validators for a conditional GET, when it worked, what went wrong).
    # ``config`` is a hash of the source's settings when last synced (a change refetches in
    # full); ``first_synced_at`` is NULL until a sync has worked once.
    db.execute(
        """
        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL DEFAULT '',
            config TEXT NOT NULL DEFAULT '',
            etag TEXT NOT NULL DEFAULT '',
            last_modified TEXT NOT NULL DEFAULT '',
            first_synced_at TEXT,
            last_attempt_at TEXT,
            last_success_at TEXT,
            last_error TEXT NOT NULL DEFAULT '',
            last_error_at TEXT,
            last_temporary INTEGER NOT NULL DEFAULT 0,
            feed_items INTEGER NOT NULL DEFAULT 0,
            last_created INTEGER NOT NULL DEFAULT 0,
            last_updated INTEGER NOT NULL DEFAULT 0,
            moved_to TEXT NOT NULL DEFAULT ''
        )
        """
    )
    # Which post each item of a source became, by the item's own guid (else its link), and a
    # hash of the item as last synced: an item unchanged upstream is not written again (an
    # editor's local change stays until the source changes the item). ``post_id`` becomes NULL
    # when an editor removes the post: the next sync does not bring it back.
    db.execute(
        """
        CREATE TABLE source_items (
            source TEXT NOT NULL REFERENCES sources(name) ON DELETE CASCADE,
            item_key TEXT NOT NULL,
            post_id INTEGER REFERENCES posts(id) ON DELETE SET NULL,
            item_hash TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (source, item_key)
        )
        """
    )
    db.execute("CREATE INDEX source_items_post ON source_items (post_id)")
    # Posts that count as already announced (the back catalogue found by a source's first sync,
    # an import with --announced): the digest never takes them, and nothing else changes for
    # them (they are in no issue, so nothing waits on them or is numbered after them).
    db.execute(
        """
        CREATE TABLE announced_posts (
            post_id INTEGER PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
            announced_at TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT ''
        )
        """
    )


@MIGRATIONS()
def m017_member_topics(db: Database) -> None:
    # The topics a member chose (their preferences page, or an operator's --topic). A member
    # with no row here gets what their chapter gets (its topic filter, or the whole issue).
    db.execute(
        """
        CREATE TABLE subscriber_topics (
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            topic_id INTEGER NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
            PRIMARY KEY (subscriber_id, topic_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX subscriber_topics_topic ON subscriber_topics (topic_id)")
    # What each delivery row of an issue gets, frozen with the rows when delivery begins: the
    # chapter, the member's chosen topics (NULL: the chapter's filter; else their slugs, space
    # separated, sorted) and the posts that made (a JSON array of post ids, in the issue's
    # order). A resumed delivery sends each row what it was frozen with, whatever the member or
    # the chapter changed meanwhile. ``key`` names the (chapter, topics) pair within the issue.
    db.execute(
        """
        CREATE TABLE delivery_variants (
            id INTEGER PRIMARY KEY,
            issue_id INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            chapter_id INTEGER REFERENCES chapters(id) ON DELETE SET NULL,
            topics TEXT,
            post_ids TEXT NOT NULL,
            UNIQUE (issue_id, key)
        )
        """
    )
    db.execute(
        "ALTER TABLE deliveries ADD COLUMN variant_id INTEGER "
        "REFERENCES delivery_variants(id) ON DELETE SET NULL"
    )


@MIGRATIONS()
def m018_languages(db: Database) -> None:
    # A chapter's language: its digest and its members' pages are in it ('' : the site's
    # site.language). ``post_language``: the chapter gets only posts in that language, and
    # posts with no language ('' : every post). A post's language is a tag like fr or pt-BR,
    # or '' when unknown.
    for table, column in (
        ("chapters", "language"),
        ("chapters", "post_language"),
        ("posts", "language"),
    ):
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}
        if column not in columns:  # safe to run again after a crash before it was recorded
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")


@MIGRATIONS()
def m019_site_relative_links(db: Database) -> None:
    # Links to the site's own pages are stored relative to its base URL (``./posts/x/``) and
    # made absolute when feeds, pages and mail are written, so a new base URL takes effect at
    # the next build. Bodies saved before were made absolute against the base URL of the
    # time, which no migration can know: a row here says they are still to be converted, and
    # the first open with the settings does it (policyfeed.content.relink). A database with no
    # posts yet has nothing to convert.
    db.execute("CREATE TABLE relink_pending (id INTEGER PRIMARY KEY CHECK (id = 1))")
    if db.execute("SELECT 1 FROM posts LIMIT 1").fetchone():
        db.execute("INSERT INTO relink_pending (id) VALUES (1)")


@MIGRATIONS()
def m020_old_slugs(db: Database) -> None:
    # Every slug a published post had before it was renamed: its page was public (and may be
    # linked from a sent digest), so the site keeps a redirect page there (policyfeed.site.
    # redirects). A slug that another post takes again is that post's page, not a redirect.
    db.execute(
        """
        CREATE TABLE post_slugs (
            slug TEXT PRIMARY KEY,
            post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX post_slugs_post ON post_slugs (post_id)")
    db.execute(
        """
        CREATE TRIGGER post_slugs_rename AFTER UPDATE OF slug ON posts
        WHEN old.slug IS NOT new.slug AND old.status = 'published' BEGIN
            INSERT OR REPLACE INTO post_slugs (slug, post_id) VALUES (old.slug, old.id);
        END
        """
    )
    # The renames made before, from the post journal (the latest owner of a slug wins).
    db.execute(
        """
        INSERT OR REPLACE INTO post_slugs (slug, post_id)
        SELECT j.old_slug, j.post_id FROM post_journal j JOIN posts p ON p.id = j.post_id
        WHERE j.old_slug IS NOT NULL AND j.old_status = 'published' AND j.old_slug != p.slug
        ORDER BY j.seq
        """
    )


@MIGRATIONS()
def m021_archive_from_delivery(db: Database) -> None:
    # The web archive shows an issue once its delivery began (sending, sent), no longer once it
    # is approved: an approved issue that the check refuses must not reach the feeds of issues.
    # The journal's triggers are remade so that an issue enters the archive when it starts
    # sending (the archive's layout version makes the next build a full one).
    names = [
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' "
            "AND name LIKE 'issue\\_journal\\_%' ESCAPE '\\'"
        ).fetchall()
    ]
    for name in names:
        db.execute(f'DROP TRIGGER "{name}"')
    for sql in _issue_journal_triggers(DELIVERED_ISSUE_STATUSES):
        db.execute(sql)
