"""Helpers shared by the digest tests (issues, render, archive, browser)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import lxml.html
import sqlite_utils

from policyfeed.config import Settings
from policyfeed.content.posts import draft_from_record, html_to_text
from policyfeed.digest.issues import create_issue, issue_posts
from policyfeed.digest.render import RenderedDigest, render_issue
from policyfeed.model import Issue, Post, Topic
from policyfeed.store import posts as post_store

NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)
DEMO_PERIOD = "2012-07-30T08:00"


def add_post(
    db: sqlite_utils.Database,
    settings: Settings,
    slug: str,
    *,
    date: datetime | None = None,
    status: str = "published",
    now: datetime = NOW,
    **fields: Any,
) -> int:
    """Save (or update) a post the way the app does: validated and cleaned."""
    record: dict[str, Any] = {"title": f"Post {slug}", "slug": slug, "status": status, **fields}
    if date is not None:
        record["published_at"] = date
    elif status == "published":
        record["published_at"] = NOW - timedelta(days=1)
    draft = draft_from_record(
        record, base_url=settings.base_url, tz=settings.tz, source="test", where=slug
    )
    post_id = post_store.find_post_id(db, slug=slug)
    with db.conn:
        return post_store.save_post(db, draft, now=now, domain=settings.domain, post_id=post_id)


def slugs(posts: list[Post]) -> list[str]:
    return [post.slug for post in posts]


def make_post(slug: str = "a-post", **fields: Any) -> Post:
    """A post as the store returns it, without a database."""
    values: dict[str, Any] = {
        "slug": slug,
        "title": f"Post {slug}",
        "summary": "A short summary.",
        "body_html": "<p>Body text.</p>",
        "status": "published",
        "published_at": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(days=1),
        "url": None,
        "topics": [Topic("ietf", "IETF")],
        **fields,
    }
    if "body_text" not in fields:
        values["body_text"] = html_to_text(values["body_html"])
    return Post(**values)


def make_issue(number: int = 1, **fields: Any) -> Issue:
    values: dict[str, Any] = {
        "number": number,
        "period": DEMO_PERIOD,
        "created_at": NOW,
        "updated_at": NOW,
        **fields,
    }
    return Issue(**values)


def demo_issue(
    db: sqlite_utils.Database, settings: Settings, *, approved: bool = False
) -> tuple[Issue, list[Post]]:
    """Issue 1 of the demo site, as ``publish`` would make it on Monday 30 July 2012 (a draft;
    ``approved``: approved and going out, so the web archive shows it)."""
    issue = approved_issue(db, settings, period=DEMO_PERIOD, now=NOW) if approved else None
    issue = issue or create_issue(db, settings, period=DEMO_PERIOD, now=NOW)
    assert issue is not None
    return issue, issue_posts(db, issue)


def approved_issue(db: sqlite_utils.Database, settings: Settings, **options: Any) -> Issue | None:
    """``create_issue(db, settings, **options)``, approved and its delivery begun at once (as
    publish does when no approval is required and the check passes): the web archive shows the
    issues whose delivery began, never a draft or an approved issue still waiting."""
    from policyfeed.store import issues as issue_store
    from policyfeed.store import transaction

    issue = create_issue(db, settings, **options)
    if issue is None:
        return None
    with transaction(db):
        assert issue_store.approve_issue(db, issue.id or 0, now=options["now"])
        issue_store.set_issue_status(db, issue.id or 0, "sending", now=options["now"])
    approved = issue_store.issue_by_number(db, issue.number)
    assert approved is not None
    return approved


def render_demo(db: sqlite_utils.Database, settings: Settings) -> RenderedDigest:
    issue, posts = demo_issue(db, settings)
    return render_issue(issue, posts, settings)


def parse(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html)
