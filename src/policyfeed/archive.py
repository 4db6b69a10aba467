"""The digest's web archive: each issue's web version, an index of issues, and feeds of issues.

The email's "view in browser" link points at ``issues/<number>/``. Every issue that exists is
archived (the page must be there before the email goes out). Posts unpublished since the issue
was made are left out of its web version. Pages depend only on the database: the same database
gives the same bytes, and unchanged files are not rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from policyfeed.issues import Issue, issue_posts, list_issues
from policyfeed.output import write_text_if_changed
from policyfeed.posts import Post
from policyfeed.render import (
    PostView,
    issue_context,
    post_views,
    render_template,
    shorten,
    site_context,
)

if TYPE_CHECKING:
    from policyfeed.config import Settings
    from policyfeed.feeds import FeedEntry

ISSUES_DIR = "issues"


@dataclass(frozen=True)
class ArchivedIssue:
    """An issue with the posts its web version shows."""

    issue: Issue
    posts: list[Post]

    @property
    def updated(self) -> datetime:
        """When its content last changed: its creation, or a later edit of one of its posts."""
        changes = [p.updated_at for p in self.posts if p.updated_at is not None]
        return max([self.issue.created_at, *changes])


def archived_issues(db: Database) -> list[ArchivedIssue]:
    """Every issue, newest first, with its still-published posts in the issue's order."""
    return [
        ArchivedIssue(issue, [p for p in issue_posts(db, issue) if p.status == "published"])
        for issue in list_issues(db)
    ]


def feed_links(settings: Settings) -> list[dict[str, str]]:
    """The feeds of issues, for autodiscovery links and the page footers."""
    from policyfeed.feeds import FEED_FILES

    return [
        {
            "type": media_type,
            "label": label,
            "title": f"{settings.title}: the digest ({label})",
            "url": settings.absolute(f"{ISSUES_DIR}/{name}"),
        }
        for name, media_type, label in FEED_FILES
    ]


def _page_context(settings: Settings) -> dict[str, Any]:
    return {"site": site_context(settings), "feeds": feed_links(settings)}


def issue_page(
    settings: Settings,
    item: ArchivedIssue,
    posts: list[PostView],
    previous: int | None,
    next_: int | None,
) -> str:
    """The web version of one issue, linking to its neighbours."""
    return render_template(
        settings,
        "archive/issue.html",
        **_page_context(settings),
        issue=issue_context(item.issue, settings),
        posts=posts,
        previous=previous,
        next=next_,
    )


def index_page(settings: Settings, items: list[ArchivedIssue]) -> str:
    """The list of all issues, newest first."""
    issues = [
        {**issue_context(item.issue, settings), "post_count": len(item.posts)} for item in items
    ]
    return render_template(settings, "archive/index.html", **_page_context(settings), issues=issues)


def issue_feed_entry(settings: Settings, item: ArchivedIssue, posts: list[PostView]) -> FeedEntry:
    """An issue as a feed entry; its id is a ``tag:`` URI that never changes."""
    from policyfeed.feeds import FeedEntry

    issue = item.issue
    context = issue_context(issue, settings)
    content = render_template(
        settings, "archive/entry.html", site=site_context(settings), issue=context, posts=posts
    )
    day = issue.created_at.astimezone(UTC).date().isoformat()
    return FeedEntry(
        id=f"tag:{settings.domain},{day}:issues/{issue.number}",
        title=issue.subject or f"{settings.title}, issue {issue.number}",
        link=context["web_url"],
        published=issue.created_at,
        updated=item.updated,
        content_html=content,
        summary=shorten(issue.note or " · ".join(p.title for p in item.posts), 300),
        authors=(settings.author,) if settings.author else (),
    )


def _absolute(settings: Settings, url: str) -> str:
    return url if not url or url.startswith(("http://", "https://")) else settings.absolute(url)


def write_issue_feeds(settings: Settings, entries: list[FeedEntry], out_dir: Path) -> list[Path]:
    """RSS, Atom and JSON feeds of issues (``issues/feed.xml``, ``atom.xml``, ``feed.json``)."""
    from policyfeed.feeds import FeedMeta, write_feed_set

    folder = settings.absolute(f"{ISSUES_DIR}/")
    meta = FeedMeta(
        title=f"{settings.title}: the digest",
        link=folder,
        self_base=folder,
        id=folder,
        subtitle=f"Every issue of the {settings.title} email digest",
        language=settings.language,
        icon=_absolute(settings, settings.icon),
        logo=_absolute(settings, settings.logo),
        author=settings.author,
        author_email=settings.author_email,
        hub=settings.websub_hub,
    )
    return write_feed_set(out_dir, ISSUES_DIR, meta, entries)


def write_issue_archive(db: Database, settings: Settings, out_dir: Path) -> list[Path]:
    """Write ``issues/<number>/index.html`` for every issue, ``issues/index.html`` and the feeds
    of the newest ``feed_limit`` issues under ``out_dir``. Returns the files that changed."""
    items = archived_issues(db)  # newest first
    changed: list[Path] = []
    entries: list[FeedEntry] = []
    for at, item in enumerate(items):
        posts = post_views(item.posts, settings, with_text=False)
        newer = items[at - 1].issue.number if at > 0 else None
        older = items[at + 1].issue.number if at + 1 < len(items) else None
        path = out_dir / ISSUES_DIR / str(item.issue.number) / "index.html"
        if write_text_if_changed(path, issue_page(settings, item, posts, older, newer)):
            changed.append(path)
        if at < settings.feed_limit:
            entries.append(issue_feed_entry(settings, item, posts))
    index = out_dir / ISSUES_DIR / "index.html"
    if write_text_if_changed(index, index_page(settings, items)):
        changed.append(index)
    changed.extend(write_issue_feeds(settings, entries, out_dir))
    return changed
