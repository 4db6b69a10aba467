"""What the editors' browser preview shows (``/preview/`` under ``policyfeed serve``, see
:mod:`policyfeed.web.preview`): the next issue as it would be made now, the drafts and approved
issues, and each one's chapter variants as members would get them, with the sample member's
links (:mod:`policyfeed.digest.sample`). Nothing here writes: the next issue is planned, not
made (:func:`policyfeed.digest.issues.plan_issue`).

A variant is one of :func:`policyfeed.digest.issues.variant_shares` (the whole issue, named
``all``, and each chapter by its slug), as the copy for approval lists them
(:mod:`policyfeed.digest.review`), so the links in that copy name pages shown here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from policyfeed.digest.issues import (
    EDITABLE_STATUSES,
    get_issue_by_period,
    issue_posts,
    plan_issue,
    variant_shares,
)
from policyfeed.errors import DigestTooLargeError, NotFoundError
from policyfeed.model import Issue, Post
from policyfeed.store import issues as store

if TYPE_CHECKING:
    from sqlite_utils import Database

    from policyfeed.config import Settings
    from policyfeed.digest.issues import VariantShare
    from policyfeed.digest.render import RenderedDigest

#: The largest issue number SQLite stores: anything larger names no issue.
MAX_ISSUE_NUMBER = 2**63 - 1


@dataclass(frozen=True)
class PreviewedIssue:
    """An issue to preview: a draft or approved one, or the next one (``planned``: not made)."""

    issue: Issue
    posts: list[Post]
    planned: bool = False
    #: For the next issue: the issue its period already has (publish then waits for the next
    #: period), else None.
    period_taken_by: Issue | None = None


@dataclass(frozen=True)
class PreviewedVariant:
    """One chapter's variant (or the whole issue's) with its members and, when rendered, the
    sample member's message; ``error`` says why it cannot be sent as it is."""

    share: VariantShare
    digest: RenderedDigest | None = None
    error: str = ""

    @property
    def slug(self) -> str:
        return self.share.slug


def waiting_issues(db: Database) -> list[Issue]:
    """The drafts and approved issues (those an editor may still change), by number."""
    found = [
        issue for status in EDITABLE_STATUSES for issue in store.issues_with_status(db, status)
    ]
    return sorted(found, key=lambda issue: issue.number)


def next_issue(db: Database, settings: Settings, now: datetime) -> PreviewedIssue | None:
    """The issue ``publish`` or ``issue new`` would make now from the waiting posts; None when
    no post is waiting."""
    planned = plan_issue(db, settings, now=now)
    if planned is None:
        return None
    issue, posts = planned
    taken = get_issue_by_period(db, issue.period)
    return PreviewedIssue(issue, posts, planned=True, period_taken_by=taken)


def stored_issue(db: Database, number: int) -> PreviewedIssue:
    """Draft or approved issue ``number``; NotFoundError for any other number or status."""
    issue = store.issue_by_number(db, number) if 0 < number <= MAX_ISSUE_NUMBER else None
    if issue is None:
        raise NotFoundError(f"There is no issue {number}.")
    if issue.status not in EDITABLE_STATUSES:
        where = " Its web version is in the issue archive." if issue.status == "sent" else ""
        raise NotFoundError(
            f"Issue {number} is {issue.status}: the preview shows drafts and approved issues."
            + where
        )
    return PreviewedIssue(issue, issue_posts(db, issue))


def shares(db: Database, previewed: PreviewedIssue) -> list[VariantShare]:
    """The whole issue, then each chapter's share (some may hold no post)."""
    return variant_shares(db, previewed.posts)


def render_variant(
    settings: Settings, previewed: PreviewedIssue, share: VariantShare
) -> RenderedDigest:
    """The variant's message as the sample member gets it (DigestTooLargeError when it cannot
    be sent as it is)."""
    from policyfeed.digest.render import render_issue
    from policyfeed.digest.sample import with_sample_links

    digest = render_issue(previewed.issue, share.posts, settings, chapter=share.chapter)
    return with_sample_links(digest, settings)


def previewed_variants(
    db: Database, settings: Settings, previewed: PreviewedIssue
) -> list[PreviewedVariant]:
    """Every variant, those with posts rendered (for their subject and size)."""
    found = []
    for share in shares(db, previewed):
        if not share.posts:
            found.append(PreviewedVariant(share))
            continue
        try:
            found.append(PreviewedVariant(share, render_variant(settings, previewed, share)))
        except DigestTooLargeError as exc:
            found.append(PreviewedVariant(share, error=str(exc)))
    return found


def variant_by_slug(db: Database, previewed: PreviewedIssue, slug: str) -> VariantShare:
    """The share named ``slug`` (``all`` or a chapter's); NotFoundError when there is none or
    it holds no post."""
    for share in shares(db, previewed):
        if share.slug == slug:
            if not share.posts:
                raise NotFoundError(f"{share.name} gets no post of this issue.")
            return share
    raise NotFoundError(f"This issue has no variant {slug!r}.")
