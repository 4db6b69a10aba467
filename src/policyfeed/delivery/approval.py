"""The copy of a draft an editor gets to approve it (``digest.approval = "required"``).

It is the whole issue as members will get it, marked "[For approval]" and opened by a box that
says nothing has gone out yet, gives the commands to approve, change or discard it, lists each
chapter's version (linked to the browser preview when ``digest.preview_url`` says where it is
served) and by when to approve it. Its links are the sample member's, like a test copy's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from policyfeed.delivery.sendtest import CopiesReport, copy_template, send_copies
from policyfeed.digest.issues import issue_posts
from policyfeed.digest.review import review_context

if TYPE_CHECKING:
    from sqlite_utils import Database

    from policyfeed.config import Settings
    from policyfeed.delivery.transport import Transport
    from policyfeed.model import Issue

REVIEW_PREFIX = "[For approval] "


def send_for_approval(
    db: Database,
    settings: Settings,
    issue: Issue,
    *,
    now: datetime,
    lateness: timedelta,
    transport: Transport | None = None,
) -> CopiesReport:
    """Send the copy for approval of draft ``issue`` to ``site.editor_email``; records
    nothing (the caller notes that it went)."""
    from policyfeed.digest.render import render_issue

    posts = issue_posts(db, issue)
    review = review_context(db, settings, issue, posts, lateness=lateness)
    digest = render_issue(issue, posts, settings, review=review)
    template = copy_template(digest, issue, settings, now=now, prefix=REVIEW_PREFIX)
    return send_copies(
        template, issue, settings, [settings.editor_email], now=now, kind="review",
        transport=transport,
    )  # fmt: skip
