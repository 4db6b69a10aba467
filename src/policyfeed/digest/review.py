"""The box that opens an editor's copy for approval of a draft, and where the browser preview
shows an issue: what ``review`` holds in the digest templates (see
:mod:`policyfeed.delivery.approval`, which sends the copy)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from policyfeed.digest.issues import variant_shares
from policyfeed.templating import format_date

if TYPE_CHECKING:
    from sqlite_utils import Database

    from policyfeed.config import Settings
    from policyfeed.model import Issue, Post


def preview_link(settings: Settings, issue: Issue, variant: str | None = None) -> str:
    """Where the browser preview shows ``issue`` (or one variant's HTML); "" when no
    ``digest.preview_url`` is configured."""
    if not settings.preview_url:
        return ""
    base = f"{settings.preview_url}issues/{issue.number}/"
    return base if variant is None else f"{base}{variant}.html"


def approval_deadline(issue: Issue, lateness: timedelta) -> datetime:
    """After this, a draft still waiting is reported as overdue."""
    return issue.created_at + lateness


def review_context(
    db: Database, settings: Settings, issue: Issue, posts: list[Post], *, lateness: timedelta
) -> dict[str, Any]:
    """The review box of the copy for approval (``review`` in the digest templates)."""
    number = issue.number
    variants = [
        {
            "name": share.name,
            "posts": len(share.posts),
            "recipients": share.recipients,
            "url": preview_link(settings, issue, share.slug),
        }
        for share in variant_shares(db, posts)
        if share.posts and (share.recipients or share.chapter is None)
    ]
    deadline = approval_deadline(issue, lateness).astimezone(settings.tz)
    return {
        "approve": f"policyfeed issue approve {number}",
        "edit": f'policyfeed issue edit {number} --note "…" --exclude SLUG',
        "discard": f"policyfeed issue discard {number}",
        "recipients": sum(v["recipients"] for v in variants),
        "variants": variants,
        "preview_url": preview_link(settings, issue),
        "deadline": (
            f"{format_date(deadline, settings.tz, settings.language)}, {deadline:%H:%M} "
            f"({settings.timezone})"
        ),
    }
