"""An editor's hand on an issue before it goes out: approve it, change it, or throw it away.

Each of these works only while delivery has not begun (the issue is a draft or approved) and
checks that before writing, in the same transaction as the write; the CLI also holds the run
lock, so no ``publish`` is between reading an issue and sending it meanwhile.

- :func:`approve_issue`: draft → approved, after rendering every chapter's variant (a digest
  too large to send is refused now, not at the scheduled run) and checking its posts are all
  still published. The next ``publish`` delivers it; its lateness counts from the approval.
- :func:`edit_issue`: a new subject or note, posts left out or put first. An approved issue
  becomes a draft again: what was approved is not what would go out.
- :func:`discard_issue`: the issue is kept as a record (its number is never given to another)
  but its posts are freed for the next issue, and no archive page or ``publish`` shows it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlite_utils import Database

from policyfeed.content.posts import strip_forbidden
from policyfeed.digest.issues import (
    EDITABLE_STATUSES,
    clean_note,
    get_issue,
    issue_posts,
    posts_for_chapter,
)
from policyfeed.errors import ConflictError, InputError
from policyfeed.model import Issue, Post
from policyfeed.store import from_db_time, transaction
from policyfeed.store import issues as store
from policyfeed.store import subscribers as subscriber_store
from policyfeed.store.posts import get_posts_by_ids

if TYPE_CHECKING:
    from policyfeed.config import Settings

MAX_SUBJECT_CHARS = 200


@dataclass(frozen=True)
class Edited:
    """What an editor's command did to an issue."""

    issue: Issue
    posts: list[Post]
    changed: bool = True  # False: it was so already (approving an approved issue)
    was_approved: bool = False  # an edit sent an approved issue back to draft
    warnings: tuple[str, ...] = ()


def _refuse_unless_editable(issue: Issue, action: str) -> None:
    if issue.status in EDITABLE_STATUSES:
        return
    if issue.status == "discarded":
        raise ConflictError(f"cannot {action} issue {issue.number}: it was discarded")
    when = f" on {issue.sent_at:%Y-%m-%d}" if issue.sent_at else ""
    doing = "was sent" + when if issue.status == "sent" else "is going out"
    raise ConflictError(
        f"cannot {action} issue {issue.number}: it {doing} (delivery has begun; an issue is "
        "changed only before it goes out)"
    )


@contextlib.contextmanager
def _editing(db: Database, number: int, action: str) -> Iterator[Issue]:
    """The issue, read and checked inside the write transaction the block runs in."""
    with transaction(db):
        issue = get_issue(db, number)
        _refuse_unless_editable(issue, action)
        yield issue


def check_variants(db: Database, settings: Settings, issue: Issue, posts: list[Post]) -> list[str]:
    """Render the whole issue and every chapter's variant that gets posts: raises
    DigestTooLargeError as sending would; returns the renderer's warnings."""
    from policyfeed.digest.render import render_issue

    warnings = list(render_issue(issue, posts, settings).warnings)
    for chapter in subscriber_store.list_chapters(db):
        share = posts_for_chapter(posts, chapter.topics, chapter.post_language)
        if share:
            warnings.extend(render_issue(issue, share, settings, chapter=chapter).warnings)
    return list(dict.fromkeys(warnings))


def approve_issue(db: Database, settings: Settings, number: int, *, now: datetime) -> Edited:
    """Approve draft ``number`` for the next ``publish`` (see the module docstring)."""
    issue = get_issue(db, number)
    if issue.status == "approved":
        return Edited(issue, issue_posts(db, issue), changed=False)
    _refuse_unless_editable(issue, "approve")
    posts = issue_posts(db, issue)
    for post in posts:
        if post.status != "published":
            raise ConflictError(
                f"cannot approve issue {number}: post {post.slug!r} is not published any more; "
                f"leave it out (policyfeed issue edit {number} --exclude {post.slug}) or "
                "publish it again"
            )
    warnings = check_variants(db, settings, issue, posts)
    with _editing(db, number, "approve") as current:
        if current.updated_at != issue.updated_at:
            raise ConflictError(f"issue {number} changed while it was checked; approve it again")
        store.approve_issue(db, current.id or 0, now=now)
    return Edited(get_issue(db, number), posts, warnings=tuple(warnings))


def discard_issue(db: Database, number: int, *, now: datetime) -> Edited:
    """Throw draft (or approved issue) ``number`` away and free its posts."""
    issue = get_issue(db, number)
    if issue.status == "discarded":
        return Edited(issue, [], changed=False)
    posts = issue_posts(db, issue)
    with _editing(db, number, "discard") as current:
        if not store.discard_issue(db, current.id or 0, now=now):
            raise ConflictError(f"cannot discard issue {number}: its delivery has begun")
    return Edited(get_issue(db, number), posts, was_approved=issue.status == "approved")


def _one_line_subject(text: str) -> str:
    subject = " ".join(strip_forbidden(text).split())
    if len(subject) > MAX_SUBJECT_CHARS:
        raise InputError(
            f"the subject is {len(subject)} characters long, more than {MAX_SUBJECT_CHARS}",
            source="--subject",
        )
    return subject


def _new_selection(
    db: Database, issue: Issue, current: list[int], pin: Sequence[str], exclude: Sequence[str],
    *, now: datetime,
) -> list[int]:  # fmt: skip
    """The issue's posts after ``exclude`` and ``pin`` (pinned first, in the given order)."""
    pin, exclude = list(dict.fromkeys(pin)), list(dict.fromkeys(exclude))
    both = sorted(set(pin) & set(exclude))
    if both:
        raise InputError(f"post {both[0]!r} cannot be both pinned and excluded")
    states = store.post_states(db, [*pin, *exclude])
    ids: dict[str, int] = {}
    for option, slugs in (("--exclude", exclude), ("--pin", pin)):
        for slug in slugs:
            if slug not in states:
                raise InputError(f"{option} {slug}: no post with that slug")
            post_id, status, published_at, number = states[slug]
            ids[slug] = post_id
            if option == "--exclude" and post_id not in current:
                raise InputError(f"--exclude {slug}: that post is not in issue {issue.number}")
            if option == "--pin" and post_id not in current:
                if number:
                    raise ConflictError(f"cannot pin {slug!r}: it is in issue {number}")
                if status != "published" or published_at is None:
                    raise ConflictError(f"cannot pin {slug!r}: it is a draft (publish it first)")
                if from_db_time(published_at) > now:
                    raise ConflictError(
                        f"cannot pin {slug!r}: it is dated {published_at}, after now; it waits"
                    )
    pinned = [ids[slug] for slug in pin]
    left_out = {ids[slug] for slug in exclude} | set(pinned)
    return pinned + [post_id for post_id in current if post_id not in left_out]


def edit_issue(
    db: Database,
    settings: Settings,
    number: int,
    *,
    now: datetime,
    subject: str | None = None,
    note: str | None = None,
    pin: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Edited:
    """Change issue ``number`` before it goes out. ``subject`` "" gives back the subject made
    from the posts; ``note`` "" removes the note. Every variant is rendered before anything is
    written, so an edit cannot leave an issue too large to send."""
    from policyfeed.digest.render import render_subject

    issue = get_issue(db, number)
    _refuse_unless_editable(issue, "edit")
    current = store.issue_post_ids(db, issue.id or 0)
    selection = _new_selection(db, issue, current, pin, exclude, now=now)
    if not selection:
        raise ConflictError(
            f"issue {number} would hold no posts; discard it instead "
            f"(policyfeed issue discard {number})"
        )
    posts = get_posts_by_ids(db, selection)
    edited = issue.subject_edited
    new_subject = issue.subject
    if subject is not None:
        new_subject = _one_line_subject(subject)
        edited = bool(new_subject)
    draft = replace(
        issue, note=issue.note if note is None else clean_note(note), subject_edited=edited
    )
    if not edited:
        new_subject = render_subject(replace(draft, subject=""), posts, settings)
    draft = replace(draft, subject=new_subject)
    same = (draft.subject, draft.subject_edited, draft.note) == (
        issue.subject, issue.subject_edited, issue.note,
    )  # fmt: skip
    if same and selection == current:
        return Edited(issue, posts, changed=False)
    warnings = check_variants(db, settings, draft, posts)
    with _editing(db, number, "edit") as latest:
        if latest.updated_at != issue.updated_at:
            raise ConflictError(f"issue {number} changed while it was edited; edit it again")
        store.update_draft(
            db,
            issue.id or 0,
            subject=draft.subject,
            subject_edited=draft.subject_edited,
            note=draft.note,
            post_ids=selection,
            now=now,
        )
    return Edited(
        get_issue(db, number),
        posts,
        was_approved=issue.status == "approved",
        warnings=tuple(warnings),
    )
