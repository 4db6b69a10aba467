"""Queries for digest issues, their frozen post selection (the ledger), and chapter variants.

``issue_posts.post_id`` is UNIQUE: a post goes into at most one issue, whatever its date.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from policyfeed.errors import ConflictError
from policyfeed.model import ChapterVariant, Issue
from policyfeed.store import from_db_time, to_db_time

ISSUE_COLUMNS = (
    "id, number, period, subject, note, status, created_at, updated_at, sent_at, "
    "approved_at, review_sent_at, discarded_at, subject_edited"
)
#: What the web archive shows: issues whose delivery began (going out, or sent). An approved
#: issue is not there yet: the check may still refuse it, and nothing may announce it then.
ARCHIVED = "status IN ('sending', 'sent')"
#: Every issue but the discarded ones: a period has at most one of these.
KEPT = "status != 'discarded'"


def _time(text: str | None) -> datetime | None:
    return from_db_time(text) if text else None


def _issue_from_row(row: Sequence[Any]) -> Issue:
    return Issue(
        id=row[0],
        number=row[1],
        period=row[2],
        subject=row[3],
        note=row[4],
        status=row[5],
        created_at=from_db_time(row[6]),
        updated_at=from_db_time(row[7]),
        sent_at=_time(row[8]),
        approved_at=_time(row[9]),
        review_sent_at=_time(row[10]),
        discarded_at=_time(row[11]),
        subject_edited=bool(row[12]),
    )


def _one(db: Database, where: str, params: Sequence[Any]) -> Issue | None:
    row = db.execute(f"SELECT {ISSUE_COLUMNS} FROM issues WHERE {where}", list(params)).fetchone()
    return _issue_from_row(row) if row else None


def issue_by_number(db: Database, number: int) -> Issue | None:
    return _one(db, "number = ?", [number])


def issue_by_period(db: Database, period: str) -> Issue | None:
    """The period's issue (the one not discarded: there is at most one)."""
    return _one(db, f"period = ? AND {KEPT}", [period])


def discarded_issue_by_period(db: Database, period: str) -> Issue | None:
    """The latest issue of the period that was discarded."""
    return _one(db, "period = ? AND status = 'discarded' ORDER BY number DESC LIMIT 1", [period])


def all_issues(db: Database) -> list[Issue]:
    """Every issue, newest (highest number) first."""
    rows = db.execute(f"SELECT {ISSUE_COLUMNS} FROM issues ORDER BY number DESC").fetchall()
    return [_issue_from_row(r) for r in rows]


def issues_with_status(db: Database, status: str) -> list[Issue]:
    """The issues in ``status``, oldest (lowest number) first."""
    rows = db.execute(
        f"SELECT {ISSUE_COLUMNS} FROM issues WHERE status = ? ORDER BY number", [status]
    ).fetchall()
    return [_issue_from_row(r) for r in rows]


def next_issue_number(db: Database) -> int:
    return int(db.execute("SELECT coalesce(max(number), 0) + 1 FROM issues").fetchone()[0])


def post_counts(db: Database) -> dict[int, int]:
    """Number of posts of each issue, by issue id."""
    rows = db.execute("SELECT issue_id, count(*) FROM issue_posts GROUP BY issue_id").fetchall()
    return {int(issue_id): int(count) for issue_id, count in rows}


def issue_post_ids(db: Database, issue_id: int) -> list[int]:
    """The frozen selection of an issue, in its order."""
    rows = db.execute(
        "SELECT post_id FROM issue_posts WHERE issue_id = ? ORDER BY position", [issue_id]
    ).fetchall()
    return [int(r[0]) for r in rows]


def waiting_post_ids(db: Database, *, now: datetime, limit: int) -> list[int]:
    """Published posts dated up to ``now`` that are in no issue yet and not announced
    otherwise (``announced_posts``: a source's back catalogue, an import for a move), oldest
    first.

    Walks the (status, published_at) index from the oldest post and stops after ``limit``.
    """
    rows = db.execute(
        "SELECT p.id FROM posts p WHERE p.status = 'published' AND p.published_at <= ? "
        "AND NOT EXISTS (SELECT 1 FROM issue_posts ip WHERE ip.post_id = p.id) "
        "AND NOT EXISTS (SELECT 1 FROM announced_posts a WHERE a.post_id = p.id) "
        f"ORDER BY p.published_at, p.id LIMIT {int(limit)}",
        [to_db_time(now)],
    ).fetchall()
    return [int(r[0]) for r in rows]


def post_states(db: Database, slugs: Iterable[str]) -> dict[str, tuple[int, str, str | None, int]]:
    """For each known slug: (post id, status, published_at text, number of its issue or 0)."""
    wanted = list(dict.fromkeys(slugs))
    result: dict[str, tuple[int, str, str | None, int]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = db.execute(
            "SELECT p.slug, p.id, p.status, p.published_at, coalesce(i.number, 0) FROM posts p "
            "LEFT JOIN issue_posts ip ON ip.post_id = p.id "
            "LEFT JOIN issues i ON i.id = ip.issue_id "
            f"WHERE p.slug IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        for slug, post_id, status, published_at, number in rows:
            result[slug] = (int(post_id), status, published_at, int(number))
    return result


def insert_issue(
    db: Database,
    *,
    number: int,
    period: str,
    subject: str,
    note: str,
    now: datetime,
    post_ids: Sequence[int],
) -> Issue:
    """Insert an issue and its frozen selection. Call inside a transaction."""
    stamp = to_db_time(now)
    try:
        cursor = db.execute(
            "INSERT INTO issues (number, period, subject, note, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'draft', ?, ?)",
            [number, period, subject, note, stamp, stamp],
        )
        issue_id = int(cursor.lastrowid or 0)
        db.conn.executemany(
            "INSERT INTO issue_posts (issue_id, post_id, position) VALUES (?, ?, ?)",
            [(issue_id, post_id, position) for position, post_id in enumerate(post_ids, 1)],
        )
    except sqlite3.IntegrityError as exc:
        raise ConflictError(
            f"cannot create issue {number} for period {period!r}: another issue took the "
            f"period or one of its posts at the same time ({exc})"
        ) from None
    issue = issue_by_number(db, number)
    assert issue is not None
    return issue


def set_issue_status(db: Database, issue_id: int, status: str, *, now: datetime) -> None:
    """Change the status; ``sent_at`` is set the first time the issue is marked sent."""
    stamp = to_db_time(now)
    db.execute(
        "UPDATE issues SET status = ?, updated_at = ?, "
        "sent_at = CASE WHEN ? = 'sent' THEN coalesce(sent_at, ?) ELSE sent_at END WHERE id = ?",
        [status, stamp, status, stamp, issue_id],
    )


# --- an editor's changes to an issue that has not begun going out ---------------------------


def approve_issue(db: Database, issue_id: int, *, now: datetime) -> bool:
    """Draft → approved; False when the issue was not a draft any more. Call in a transaction."""
    stamp = to_db_time(now)
    cursor = db.execute(
        "UPDATE issues SET status = 'approved', approved_at = ?, updated_at = ? "
        "WHERE id = ? AND status = 'draft'",
        [stamp, stamp, issue_id],
    )
    return cursor.rowcount == 1


def discard_issue(db: Database, issue_id: int, *, now: datetime) -> bool:
    """Draft or approved → discarded, its posts freed for later issues; False when delivery
    had begun (or it was discarded already). Call inside a transaction."""
    stamp = to_db_time(now)
    cursor = db.execute(
        "UPDATE issues SET status = 'discarded', discarded_at = ?, updated_at = ? "
        "WHERE id = ? AND status IN ('draft', 'approved') "
        "AND NOT EXISTS (SELECT 1 FROM deliveries WHERE issue_id = issues.id)",
        [stamp, stamp, issue_id],
    )
    if cursor.rowcount != 1:
        return False
    db.execute("DELETE FROM issue_posts WHERE issue_id = ?", [issue_id])
    return True


def update_draft(
    db: Database,
    issue_id: int,
    *,
    subject: str,
    subject_edited: bool,
    note: str,
    post_ids: Sequence[int],
    now: datetime,
) -> bool:
    """Rewrite a draft's subject, note and selection (in order); an approved issue becomes a
    draft again. False when delivery had begun. Call inside a transaction."""
    stamp = to_db_time(now)
    cursor = db.execute(
        "UPDATE issues SET subject = ?, subject_edited = ?, note = ?, status = 'draft', "
        "approved_at = NULL, updated_at = ? WHERE id = ? AND status IN ('draft', 'approved')",
        [subject, int(subject_edited), note, stamp, issue_id],
    )
    if cursor.rowcount != 1:
        return False
    current = issue_post_ids(db, issue_id)
    if current != list(post_ids):
        db.execute("DELETE FROM issue_posts WHERE issue_id = ?", [issue_id])
        db.conn.executemany(
            "INSERT INTO issue_posts (issue_id, post_id, position) VALUES (?, ?, ?)",
            [(issue_id, post_id, position) for position, post_id in enumerate(post_ids, 1)],
        )
    return True


def mark_review_sent(db: Database, issue_id: int, *, now: datetime) -> None:
    """Record that the copy for approval of this draft went to the editor."""
    db.execute("UPDATE issues SET review_sent_at = ? WHERE id = ?", [to_db_time(now), issue_id])


def chapter_by_slug(db: Database, slug: str) -> ChapterVariant | None:
    """A chapter with the slugs of its topic filter (empty: every topic)."""
    row = db.execute(
        "SELECT id, slug, name, intro, language, post_language FROM chapters WHERE slug = ?",
        [slug],
    ).fetchone()
    if row is None:
        return None
    topics = db.execute(
        "SELECT t.slug FROM chapter_topics ct JOIN topics t ON t.id = ct.topic_id "
        "WHERE ct.chapter_id = ? ORDER BY t.slug",
        [row[0]],
    ).fetchall()
    return ChapterVariant(
        id=int(row[0]),
        slug=row[1],
        name=row[2],
        intro=row[3],
        topic_slugs=tuple(t[0] for t in topics),
        language=row[4],
        post_language=row[5],
    )


# --- the web archive: what changed since the last build ------------------------------------


@dataclass(frozen=True)
class IssueChange:
    """One change to an issue or its selection, with the number the issue had before it
    (None: the issue did not exist yet); ``status_only``: only its status and times changed."""

    seq: int
    issue_id: int
    old_number: int | None
    status_only: bool = False


def issue_journal_head(db: Database) -> int:
    """The sequence number of the latest issue change (0 when nothing was ever recorded)."""
    row = db.execute("SELECT max(seq) FROM issue_journal").fetchone()
    return int(row[0] or 0)


def issue_journal_at(db: Database, seq: int) -> int | None:
    """The issue changed at ``seq``: tells whether a saved position is from this database."""
    row = db.execute("SELECT issue_id FROM issue_journal WHERE seq = ?", [seq]).fetchone()
    return int(row[0]) if row else None


def issue_changes_since(db: Database, seq: int, head: int) -> list[IssueChange]:
    """Issue changes after ``seq`` up to ``head``, oldest first."""
    rows = db.execute(
        "SELECT seq, issue_id, old_number, status_only FROM issue_journal "
        "WHERE seq > ? AND seq <= ? ORDER BY seq",
        [seq, head],
    ).fetchall()
    return [
        IssueChange(int(s), int(i), None if n is None else int(n), bool(only))
        for s, i, n, only in rows
    ]


def issue_ids_of_posts(db: Database, post_ids: Sequence[int]) -> set[int]:
    """The issues holding any of ``post_ids`` (through the UNIQUE index on post_id)."""
    found: set[int] = set()
    for start in range(0, len(post_ids), 500):
        chunk = list(post_ids[start : start + 500])
        rows = db.execute(
            "SELECT DISTINCT issue_id FROM issue_posts "
            f"WHERE post_id IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        found.update(int(row[0]) for row in rows)
    return found


# The archive shows only the issues going out or sent (ARCHIVED): the queries below
# see no draft and no discarded issue.


def archived_issues(db: Database) -> list[Issue]:
    """Every issue the archive shows, newest first."""
    rows = db.execute(
        f"SELECT {ISSUE_COLUMNS} FROM issues WHERE {ARCHIVED} ORDER BY number DESC"
    ).fetchall()
    return [_issue_from_row(r) for r in rows]


def archived_issue_by_number(db: Database, number: int) -> Issue | None:
    return _one(db, f"number = ? AND {ARCHIVED}", [number])


def issues_by_ids(db: Database, ids: Sequence[int]) -> dict[int, Issue]:
    """The issues among ``ids`` that the archive shows, by id."""
    found: dict[int, Issue] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        rows = db.execute(
            f"SELECT {ISSUE_COLUMNS} FROM issues "
            f"WHERE id IN ({','.join('?' * len(chunk))}) AND {ARCHIVED}",
            chunk,
        ).fetchall()
        for row in rows:
            found[int(row[0])] = _issue_from_row(row)
    return found


def newest_issues(db: Database, limit: int) -> list[Issue]:
    """The ``limit`` newest issues the archive shows (highest numbers first)."""
    rows = db.execute(
        f"SELECT {ISSUE_COLUMNS} FROM issues WHERE {ARCHIVED} ORDER BY number DESC LIMIT ?",
        [int(limit)],
    ).fetchall()
    return [_issue_from_row(r) for r in rows]


def neighbour_numbers(db: Database, number: int) -> tuple[int | None, int | None]:
    """The numbers of the archived issues just before and just after ``number``."""
    older = db.execute(
        f"SELECT max(number) FROM issues WHERE number < ? AND {ARCHIVED}", [number]
    ).fetchone()
    newer = db.execute(
        f"SELECT min(number) FROM issues WHERE number > ? AND {ARCHIVED}", [number]
    ).fetchone()
    return (
        None if older[0] is None else int(older[0]),
        None if newer[0] is None else int(newer[0]),
    )
