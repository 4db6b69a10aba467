"""Digest issues: which posts go into the next one, and an issue's life.

An issue is made as a ``draft``; it is ``approved`` (by an editor when ``digest.approval`` is
"required", by ``publish`` as it begins otherwise), then ``sending`` and ``sent``. Until delivery
begins an editor may change it or throw it away (``discarded``: its posts wait for a later issue,
its number is not used again); see :mod:`policyfeed.digest.editing`.

The selection is a ledger, not a date window: the next issue takes the published posts that are
in no earlier issue (``issue_posts``), so a post published late with an early date is still sent
once, and a post is never sent twice. Posts dated after ``now`` wait for a later issue.

An editor shapes an issue with ``exclude`` (left out of this issue; they stay waiting for the
next one), ``pin`` (these posts first, in the given order; the rest follow oldest first) and a
note shown at the top.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database

from policyfeed.content.posts import strip_forbidden
from policyfeed.errors import ConflictError, InputError, NotFoundError, UsageError
from policyfeed.model import Chapter, ChapterVariant, Issue, Post
from policyfeed.store import from_db_time, to_db_time
from policyfeed.store import issues as store
from policyfeed.store.posts import get_posts_by_ids

if TYPE_CHECKING:
    from policyfeed.config import Settings

ISSUE_STATUSES = ("draft", "approved", "sending", "sent", "discarded")
#: An issue an editor may still change: delivery has not begun.
EDITABLE_STATUSES = ("draft", "approved")
# A long-neglected backlog must not turn into one enormous message: the oldest waiting posts go
# first and the rest wait for the next issue (nothing is lost, nothing is sent twice).
MAX_POSTS_PER_ISSUE = 50


def posts_for_chapter(
    posts: Sequence[Post], chapter_topic_slugs: Iterable[str], post_language: str = ""
) -> list[Post]:
    """The posts of a chapter's variant, in the issue's order. No topic filter: every post;
    ``post_language``: only posts in it, and posts with no language."""
    from policyfeed.digest.variants import posts_on_topics

    return posts_on_topics(posts, chapter_topic_slugs, post_language)


def default_period(settings: Settings, now: datetime) -> str:
    """The period key the digest schedule gives for ``now``: its latest scheduled time at or
    before ``now`` in the site's time zone (``2012-07-30T08:00``), as ``publish`` uses it."""
    from policyfeed.schedule import current_period

    return current_period(settings.schedule, settings.tz, now).key


# A special issue (one not on the schedule, e.g. "wcit-special") is named like a post slug. Words
# that read as a relative day are refused, so "yesterday" or "next-week" is never taken for a name.
SPECIAL_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_RELATIVE_WORDS = frozenset(
    ["yesterday", "today", "tomorrow", "tonight", "now", "next", "last", "this", "previous", "ago"]
)
_WEEKDAYS = frozenset(
    {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
    | {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
)


def period_key(settings: Settings, text: str) -> str:
    """The period an editor gives ``issue new``: a time of the schedule, spelled as
    ``publish --period`` takes it (past or future: an issue may be made ahead of its time), or
    the name of a special issue (lower-case letters, digits and hyphens, e.g. ``wcit-special``),
    which only ``publish --period NAME`` mails."""
    from policyfeed.schedule import PERIOD_SPELLING, looks_like_a_time, read_period

    if looks_like_a_time(text):
        return read_period(text, settings.schedule, settings.tz).key
    name = text.strip()
    words = name.split("-")
    if (
        not SPECIAL_NAME.match(name)
        or not any(c.isalpha() for c in name)
        or _RELATIVE_WORDS.intersection(words)
        or name in _WEEKDAYS
    ):
        raise UsageError(
            f"{text!r} is neither a period nor a special issue's name; give {PERIOD_SPELLING}, "
            "or name a special issue with lower-case letters, digits and hyphens, e.g. "
            "wcit-special (not a relative day like 'yesterday')",
            source="--period",
        )
    return name


def _check_slugs(
    db: Database, *, now: datetime, exclude: Sequence[str], pin: Sequence[str]
) -> dict[str, int]:
    """The post id of every slug named, after checking each can be excluded or pinned."""
    both = sorted(set(exclude) & set(pin))
    if both:
        raise InputError(f"post {both[0]!r} cannot be both pinned and excluded")
    states = store.post_states(db, [*exclude, *pin])
    for option, slugs in (("--exclude", exclude), ("--pin", pin)):
        for slug in slugs:
            if slug not in states:
                raise NotFoundError(f"{option} {slug}: no post with that slug")
    for slug in pin:
        _, status, published_at, number = states[slug]
        if number:
            raise ConflictError(f"cannot pin {slug!r}: it went out in issue {number}")
        if status != "published" or published_at is None:
            raise ConflictError(f"cannot pin {slug!r}: it is a draft (publish it first)")
        if from_db_time(published_at) > now:
            raise ConflictError(
                f"cannot pin {slug!r}: it is dated {published_at}, after now; it waits"
            )
    return {slug: state[0] for slug, state in states.items()}


def select_posts_for_issue(
    db: Database,
    now: datetime,
    exclude: Sequence[str] = (),
    pin: Sequence[str] = (),
    *,
    limit: int = MAX_POSTS_PER_ISSUE,
) -> list[Post]:
    """The posts the next issue would take: pinned ones first (in the given order), then the
    waiting ones oldest first, at most ``limit`` of those; excluded slugs left out.

    Raises NotFoundError for an unknown slug and ConflictError for a pinned post that cannot go
    into this issue (a draft, dated in the future, or already in an issue).
    """
    exclude = list(dict.fromkeys(exclude))
    pin = list(dict.fromkeys(pin))
    ids = _check_slugs(db, now=now, exclude=exclude, pin=pin)
    skip = set(ids.values())
    waiting = store.waiting_post_ids(db, now=now, limit=limit + len(skip))
    rest = [post_id for post_id in waiting if post_id not in skip][:limit]
    return get_posts_by_ids(db, [ids[slug] for slug in pin] + rest)


@contextlib.contextmanager
def _immediate_transaction(db: Database) -> Iterator[None]:
    """One write transaction, taken at once so a concurrent run cannot pick the same posts."""
    if db.conn.in_transaction:  # the caller's transaction: it commits
        yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.commit()


def clean_note(note: str) -> str:
    """The editor's note as stored: Markdown, so white space inside it is kept (indented lists,
    code); only line ends, trailing blanks, a common indent and blank lines around it go."""
    lines = [line.rstrip() for line in strip_forbidden(note).splitlines()]
    return textwrap.dedent("\n".join(lines)).strip("\n")


def plan_issue(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    period: str | None = None,
    note: str = "",
    exclude: Sequence[str] = (),
    pin: Sequence[str] = (),
    limit: int = MAX_POSTS_PER_ISSUE,
) -> tuple[Issue, list[Post]] | None:
    """The next issue as it would be created now, without recording anything (dry run, preview).

    None when no post is waiting.
    """
    posts = select_posts_for_issue(db, now, exclude, pin, limit=limit)
    if not posts:
        return None
    from policyfeed.digest.render import render_subject

    issue = Issue(
        number=store.next_issue_number(db),
        period=period or default_period(settings, now),
        created_at=now,
        updated_at=now,
        note=clean_note(note),
    )
    return replace(issue, subject=render_subject(issue, posts, settings)), posts


def prepare_issue(
    db: Database,
    settings: Settings,
    *,
    period: str,
    now: datetime,
    note: str = "",
    exclude: Sequence[str] = (),
    pin: Sequence[str] = (),
    limit: int = MAX_POSTS_PER_ISSUE,
) -> tuple[Issue, list[Post]] | None:
    """The issue :func:`create_issue` would create now, after the same checks, recording
    nothing: what a dry run may promise.

    None when no post is waiting. Raises ConflictError when the period already has an issue.
    """
    existing = store.issue_by_period(db, period)
    if existing is not None:
        raise ConflictError(
            f"period {period!r} already has issue {existing.number} ({existing.status}); "
            "one issue per period: posts added since wait for the next period's issue "
            "(`policyfeed issue preview` shows what is waiting), or make a special issue now "
            "with `policyfeed issue new --period NAME`"
        )
    return plan_issue(
        db, settings, now=now, period=period, note=note, exclude=exclude, pin=pin, limit=limit
    )


def create_issue(
    db: Database,
    settings: Settings,
    *,
    period: str,
    now: datetime,
    note: str = "",
    exclude: Sequence[str] = (),
    pin: Sequence[str] = (),
    limit: int = MAX_POSTS_PER_ISSUE,
) -> Issue | None:
    """Create the next issue for ``period`` from the waiting posts and freeze its selection.

    Returns None (and records nothing) when no post is waiting. Raises ConflictError when the
    period already has an issue, and ConfigError while site.base_url is a loopback or
    placeholder address (the issue's links and web page would be on it).
    """
    from policyfeed.config import require_public_base_url

    require_public_base_url(settings.base_url, "make an issue")
    with _immediate_transaction(db):
        planned = prepare_issue(
            db, settings, now=now, period=period, note=note, exclude=exclude, pin=pin, limit=limit
        )
        if planned is None:
            return None
        issue, posts = planned
        return store.insert_issue(
            db,
            number=issue.number,
            period=period,
            subject=issue.subject,
            note=issue.note,
            now=now,
            post_ids=[post.id for post in posts if post.id is not None],
        )


def get_issue(db: Database, number: int) -> Issue:
    issue = store.issue_by_number(db, number)
    if issue is None:
        raise NotFoundError(f"no issue number {number}")
    return issue


def get_issue_by_period(db: Database, period: str) -> Issue | None:
    """The period's issue; a discarded one does not count (see :func:`discarded_issue`)."""
    return store.issue_by_period(db, period)


def discarded_issue(db: Database, period: str) -> Issue | None:
    """The latest issue of ``period`` that an editor discarded."""
    return store.discarded_issue_by_period(db, period)


def approved_issues(db: Database) -> list[Issue]:
    """The issues approved and waiting to go out, oldest first."""
    return store.issues_with_status(db, "approved")


def drafts(db: Database) -> list[Issue]:
    """The drafts, oldest first."""
    return store.issues_with_status(db, "draft")


def list_issues(db: Database) -> list[Issue]:
    """Every issue, newest first."""
    return store.all_issues(db)


def issue_post_counts(db: Database) -> dict[int, int]:
    """Number of posts per issue number."""
    counts = store.post_counts(db)
    return {issue.number: counts.get(issue.id or 0, 0) for issue in store.all_issues(db)}


def issue_posts(db: Database, issue: Issue) -> list[Post]:
    """The frozen selection of an issue, in its order (as it was sent, whatever their status)."""
    if issue.id is None:
        raise ValueError("a planned issue has no stored posts")
    return get_posts_by_ids(db, store.issue_post_ids(db, issue.id))


def mark_issue_status(db: Database, issue: Issue, status: str, now: datetime) -> Issue:
    """Set an issue's status (see :data:`ISSUE_STATUSES`); returns the updated issue.

    Committed at once, unless called inside the caller's own transaction.
    """
    if status not in ISSUE_STATUSES:
        raise InputError(f"issue status must be one of {', '.join(ISSUE_STATUSES)}, not {status!r}")
    if issue.id is None:
        raise ValueError("a planned issue has no status to change")
    to_db_time(now)  # refuses a naive datetime before anything is written
    with _immediate_transaction(db):
        store.set_issue_status(db, issue.id, status, now=now)
    return get_issue(db, issue.number)


def get_chapter(db: Database, slug: str) -> ChapterVariant:
    chapter = store.chapter_by_slug(db, slug)
    if chapter is None:
        raise NotFoundError(f"no chapter with slug {slug!r}")
    return chapter


@dataclass(frozen=True)
class VariantShare:
    """One variant of an issue: the whole issue (chapter None: members of no chapter) or a
    chapter's share, with the active members it goes to."""

    chapter: Chapter | None
    posts: list[Post]
    recipients: int

    @property
    def slug(self) -> str:
        """``all`` for the whole issue (no chapter slug can be: slugs are checked)."""
        return self.chapter.slug if self.chapter is not None else "all"

    @property
    def name(self) -> str:
        return self.chapter.name if self.chapter is not None else "The whole issue (no chapter)"


def variant_shares(db: Database, posts: Sequence[Post]) -> list[VariantShare]:
    """The whole issue, then each chapter's share by slug (as ``publish`` sends them)."""
    from collections import Counter

    from policyfeed.store import subscribers as subscriber_store

    chapters = subscriber_store.list_chapters(db)
    known = {chapter.id for chapter in chapters}
    counts = Counter(
        chapter_id if chapter_id in known else None
        for _, chapter_id in subscriber_store.active_subscriber_ids(db)
    )
    shares = [VariantShare(None, list(posts), counts[None])]
    for chapter in chapters:
        shares.append(
            VariantShare(
                chapter,
                posts_for_chapter(posts, chapter.topics, chapter.post_language),
                counts[chapter.id],
            )
        )
    return shares


def approve_for_sending(db: Database, issue: Issue, now: datetime) -> Issue:
    """Draft → approved, as ``publish`` begins sending it when no approval is required."""
    with _immediate_transaction(db):
        if not store.approve_issue(db, issue.id or 0, now=now):
            raise ConflictError(f"issue {issue.number} is no draft any more ({issue.status})")
    return get_issue(db, issue.number)


def mark_review_sent(db: Database, issue: Issue, now: datetime) -> Issue:
    """Record that the copy for approval of draft ``issue`` went to the editor."""
    with _immediate_transaction(db):
        store.mark_review_sent(db, issue.id or 0, now=now)
    return get_issue(db, issue.number)
