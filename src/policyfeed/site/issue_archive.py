"""The digest's web archive: each issue's web version, an index of issues, and feeds of issues.

The email's "view in browser" link points at ``issues/<number>/``. Every issue whose delivery
began is archived (publish builds it after the check passed and before the first message
leaves); a draft, which an editor may still change or discard, an approved issue, which the
check may still refuse, and a discarded issue are not. Posts unpublished since the issue
was made are left out of its web version. Pages depend only on the database: the same database
gives the same bytes, and unchanged files are not rewritten.

Builds are incremental (the state they keep is :mod:`policyfeed.site.issue_archive_state`): a
build reads only the journal rows since the last one (``post_journal``, ``issue_journal``) and
re-renders:

- the page of every issue that is new, changed, or holds a post that changed (a change of
  status alone shows nowhere, unless it puts the issue into the archive or takes it out);
- the pages next to an issue number that appeared or went (their "previous/next" links), and
  removes the page of an issue that is gone (or was discarded);
- the index (issue rows and the saved counts, no posts), when any issue changed;
- the feeds of the newest ``feed_limit`` issues, when one of those changed or they are others.

So a build with nothing new reads two journal heads and no posts, however long the archive.
Without a usable state (first build, other settings or templates, another database) the build
is full; a full build also removes pages of issues that no longer exist.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from policyfeed.content.urls import site_url
from policyfeed.digest.issues import issue_posts
from policyfeed.digest.render import (
    PostView,
    issue_context,
    post_summary,
    post_views,
    shorten,
    site_context,
)
from policyfeed.model import Issue, Post
from policyfeed.site.issue_archive_state import (
    ARCHIVE_PART,
    ArchiveState,
    archive_fingerprint,
    journal_positions,
    load_archive_state,
    save_archive_state,
)
from policyfeed.site.parallel import Context, Jobs, serial
from policyfeed.site.signup_box import box_fingerprint, signup_box
from policyfeed.store import issues as store
from policyfeed.store.site import journal_since, read_snapshot, site_last_change
from policyfeed.templating import render_template

if TYPE_CHECKING:
    from policyfeed.config import Settings
    from policyfeed.site.feeds import FeedEntry

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


def shown_posts(db: Database, issue: Issue) -> list[Post]:
    """The posts an issue's web version shows: its still-published ones, in the issue's order."""
    return [p for p in issue_posts(db, issue) if p.status == "published"]


class LazyPostView:
    """A post as the archive templates show it: the fields of :class:`render.PostView`.

    The cleaned body is the costly part and the feeds of issues show only titles, links and
    summaries, so the full view is made only when a template asks for another field.
    """

    def __init__(self, post: Post, settings: Settings, root: str | None = None) -> None:
        self._post = post
        self._settings = settings
        self._root = root  # a page's path to the site root: links to the site's own pages
        self._full: PostView | None = None

    @property
    def title(self) -> str:
        return self._post.title

    @property
    def url(self) -> str:
        """The post's permalink; on a page (``root`` given), relative when it is on this site,
        so that a copy of the site (``policyfeed serve``) keeps its readers on it."""
        base = self._settings.base_url
        permalink = self._post.permalink(base)
        if self._root is not None and permalink.startswith(base):
            return self._root + permalink.removeprefix(base)
        return permalink

    @property
    def summary(self) -> str:
        return post_summary(self._post)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._full is None:
            self._full = post_views([self._post], self._settings, with_text=False)[0]
        return getattr(self._full, name)


def lazy_views(
    posts: Iterable[Post], settings: Settings, root: str | None = None
) -> list[LazyPostView]:
    return [LazyPostView(post, settings, root) for post in posts]


# --- pages and feeds ------------------------------------------------------------------------


def feed_links(settings: Settings) -> list[dict[str, str]]:
    """The feeds of issues, for autodiscovery links and the page footers."""
    from policyfeed.site.feeds import discovery_links

    return discovery_links(settings.absolute(f"{ISSUES_DIR}/"), f"{settings.title}: the digest")


def _page_context(
    settings: Settings, box: dict[str, Any] | None, root: str, archive: str
) -> dict[str, Any]:
    """What every archive page shows; ``root`` and ``archive`` are the page's relative paths to
    the site's root and to the archive's index.

    Links between pages are relative, as on the site's own pages, so the archive also works
    from ``policyfeed serve``; feed URLs (and the canonical link) stay absolute."""
    site = {**site_context(settings), "url": root, "archive_url": archive}
    return {"site": site, "feeds": feed_links(settings), "box": box}


def issue_page(
    settings: Settings,
    item: ArchivedIssue,
    posts: list[PostView] | list[LazyPostView],
    previous: int | None,
    next_: int | None,
    box: dict[str, Any] | None = None,
) -> str:
    """The web version of one issue, linking to its neighbours (``box``: the subscribe box)."""
    return render_template(
        settings,
        "archive/issue.html",
        **_page_context(settings, box, "../../", "../"),
        issue=issue_context(item.issue, settings),
        posts=posts,
        previous=previous,
        next=next_,
    )


def index_page(
    settings: Settings,
    issues: list[Issue],
    counts: Mapping[int, int],
    box: dict[str, Any] | None = None,
) -> str:
    """The list of all issues, newest first; ``counts`` gives the posts shown, by issue id."""
    rows = [
        # web_url: the issue's page, beside this one (the page has no canonical link to keep).
        {**issue_context(issue, settings), "post_count": counts[issue.id or 0]}
        | {"web_url": f"{issue.number}/"}
        for issue in issues
    ]
    return render_template(
        settings, "archive/index.html", **_page_context(settings, box, "../", "./"), issues=rows
    )


def issue_feed_entry(
    settings: Settings, item: ArchivedIssue, posts: list[PostView] | list[LazyPostView]
) -> FeedEntry:
    """An issue as a feed entry; its id is a ``tag:`` URI that never changes."""
    from policyfeed.site.feeds import FeedEntry

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
        summary=shorten(context["note_plain"] or " · ".join(p.title for p in item.posts), 300),
        authors=(settings.author,) if settings.author else (),
    )


def issue_feeds(
    settings: Settings, entries: list[FeedEntry], last_change: datetime | None = None
) -> dict[str, bytes]:
    """RSS, Atom and JSON feeds of issues, by path in the output (``issues/feed.xml``, …)."""
    from policyfeed.site.feeds import FeedMeta, render_feed_set

    folder = settings.absolute(f"{ISSUES_DIR}/")
    meta = FeedMeta(
        title=f"{settings.title}: the digest",
        link=folder,
        self_base=folder,
        id=folder,
        subtitle=f"Every issue of the {settings.title} email digest",
        language=settings.language,
        icon=site_url(settings, settings.icon),
        logo=site_url(settings, settings.logo),
        author=settings.author,
        author_email=settings.author_email,
        hub=settings.websub_hub,
        last_change=last_change,
    )
    documents = render_feed_set(meta, entries)
    return {f"{ISSUES_DIR}/{file.name}": data for file, data in documents.items()}


# --- the build ------------------------------------------------------------------------------


@dataclass
class ArchiveResult:
    """What an archive build did. ``written`` and ``removed`` are files in ``out_dir``."""

    full: bool = False
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)


def _issue_page_job(
    ctx: Context,
    item: ArchivedIssue,
    older: int | None,
    newer: int | None,
    box: dict[str, Any] | None,
) -> list[str]:
    """The page of one issue (in a worker process or in-process, see site.parallel)."""
    written: list[str] = []
    views = lazy_views(item.posts, ctx.settings, root="../../")
    rel = f"{ISSUES_DIR}/{item.issue.number}/index.html"
    ctx.write(rel, issue_page(ctx.settings, item, views, older, newer, box), written)
    return written


class _Archive:
    """One archive build: renders pages and feeds, and keeps what the next build needs."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        out_dir: Path,
        state: ArchiveState,
        jobs: Jobs,
        now: datetime | None = None,
        site_changed: bool = True,
    ):
        self.db = db
        self.settings = settings
        self.out_dir = out_dir
        self.state = state
        self.jobs = jobs
        self.now = now
        self.site_changed = site_changed
        self.box = signup_box(db, settings)
        #: Dates the feeds while there is no issue (the site's last change).
        self.last_change = site_last_change(db, now) if now is not None else None
        self.result = ArchiveResult()
        self.feed_ids: set[int] = set()
        self._shown: dict[int, tuple[ArchivedIssue, list[LazyPostView]]] = {}
        self._written: list[str] = []  # by this process, besides the jobs

    def write(self, path: Path, text: str) -> None:
        self.jobs.local.write(path.relative_to(self.out_dir).as_posix(), text, self._written)

    def finish(self) -> None:
        written = self.jobs.finish() + self._written
        self.result.written[:0] = [self.out_dir / rel for rel in written]

    def shown(self, issue: Issue) -> tuple[ArchivedIssue, list[LazyPostView]]:
        """An issue with the posts it shows; those of issues in the feeds are kept for them."""
        assert issue.id is not None
        if issue.id in self._shown:
            return self._shown[issue.id]
        posts = shown_posts(self.db, issue)
        found = (ArchivedIssue(issue, posts), lazy_views(posts, self.settings))
        if issue.id in self.feed_ids:
            self._shown[issue.id] = found
        return found

    def page(self, issue: Issue, older: int | None, newer: int | None) -> None:
        assert issue.id is not None
        item, _ = self.shown(issue)
        self.state.counts[issue.id] = len(item.posts)
        self.jobs.submit(_issue_page_job, item, older, newer, self.box)

    def remove_page(self, number: int | str) -> None:
        path = self.out_dir / ISSUES_DIR / str(number) / "index.html"
        if not path.exists():
            return
        self.jobs.local.changing(path.relative_to(self.out_dir).as_posix())
        try:
            path.unlink()
        except FileNotFoundError:
            return
        self.result.removed.append(path)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only when empty

    def index(self, issues: list[Issue]) -> None:
        counts = self.state.counts
        for issue in issues:  # a count the state lacks (it should not): count again
            if issue.id is not None and issue.id not in counts:
                counts[issue.id] = len(self.shown(issue)[0].posts)
        live = {issue.id for issue in issues}
        self.state.counts = {k: v for k, v in counts.items() if k in live}
        self.write(
            self.out_dir / ISSUES_DIR / "index.html",
            index_page(self.settings, issues, self.state.counts, self.box),
        )

    def feeds(self, newest: list[Issue]) -> None:
        entries = []
        for issue in newest:
            item, views = self.shown(issue)
            entries.append(issue_feed_entry(self.settings, item, views))
        for rel, data in issue_feeds(self.settings, entries, self.last_change).items():
            self.jobs.local.write(rel, data, self._written)
        self.state.feed = [issue.id for issue in newest if issue.id is not None]

    def full(self) -> None:
        """Every page, the index and the feeds; then remove pages of issues that are gone."""
        self.result.full = True
        issues = store.archived_issues(self.db)  # newest first
        newest = issues[: self.settings.feed_limit]
        self.feed_ids = {issue.id for issue in newest if issue.id is not None}
        self.state.counts = {}
        for at, issue in enumerate(issues):
            newer = issues[at - 1].number if at > 0 else None
            older = issues[at + 1].number if at + 1 < len(issues) else None
            self.page(issue, older, newer)
        self.index(issues)
        self.feeds(newest)
        numbers = {str(issue.number) for issue in issues}
        for folder in sorted((self.out_dir / ISSUES_DIR).glob("*/")):
            if folder.is_dir() and folder.name.isdigit() and folder.name not in numbers:
                self.remove_page(folder.name)

    def incremental(self, since: ArchiveState) -> None:
        """Only what the journals name since ``since``; see the module doc."""
        db = self.db
        (posts_head, _), (issues_head, _) = self.state.posts, self.state.issues
        changed_posts = {row.post_id for row in journal_since(db, since.posts[0], posts_head)}
        # No archive page shows an issue's status or its times: a delivery step changes nothing.
        changes = [
            change
            for change in store.issue_changes_since(db, since.issues[0], issues_head)
            if not change.status_only
        ]
        dirty = store.issue_ids_of_posts(db, sorted(changed_posts))
        dirty.update(change.issue_id for change in changes)
        if not dirty:
            if self.site_changed and not since.feed:  # empty feeds carry the site's last change
                self.feeds([])
            return
        current = store.issues_by_ids(db, sorted(dirty))
        # Numbers where an issue appeared or went: the pages beside them link elsewhere now.
        moved: set[int] = set()
        for change in changes:
            issue = current.get(change.issue_id)
            number = issue.number if issue is not None else None
            if change.old_number != number:
                moved.update(n for n in (change.old_number, number) if n is not None)
        to_render = {issue.number: issue for issue in current.values()}
        numbers_now = set(to_render)
        for number in sorted(moved):
            for neighbour in store.neighbour_numbers(db, number):
                if neighbour is not None and neighbour not in to_render:
                    found = store.archived_issue_by_number(db, neighbour)
                    if found is not None:
                        to_render[neighbour] = found
            if number not in numbers_now and store.archived_issue_by_number(db, number) is None:
                self.remove_page(number)

        newest = store.newest_issues(db, self.settings.feed_limit)
        self.feed_ids = {issue.id for issue in newest if issue.id is not None}
        for number in sorted(to_render, reverse=True):
            self.page(to_render[number], *store.neighbour_numbers(db, number))
        self.index(store.archived_issues(db))
        if [i.id for i in newest] != since.feed or self.feed_ids & dirty:
            self.feeds(newest)


def build_issue_archive(
    db: Database,
    settings: Settings,
    out_dir: Path,
    *,
    full: bool = False,
    now: datetime | None = None,
    site_changed: bool = True,
    jobs: Jobs | None = None,
) -> ArchiveResult:
    """Bring ``issues/`` under ``out_dir`` up to date with the database: every issue's page
    (``issues/<number>/index.html``), ``issues/index.html`` and the feeds of the newest
    ``feed_limit`` issues. Renders only what changed since the last build (``full``: all).
    ``now`` is the site build's (it dates the feeds while there is no issue); ``site_changed``
    False says the site build found nothing changed (the empty feeds of issues keep their date).

    Pages are rendered by ``jobs`` (the site build's workers; default: in-process) and written
    without a flush each; one sync of the filesystem makes them (and whatever ``jobs`` wrote
    before) durable before the state is saved."""
    out_dir = Path(out_dir)
    with contextlib.ExitStack() as stack:
        if jobs is None:
            jobs = stack.enter_context(serial(settings, out_dir))
        return _build(db, settings, out_dir, full, now, site_changed, jobs)


def _build(
    db: Database,
    settings: Settings,
    out_dir: Path,
    full: bool,
    now: datetime | None,
    site_changed: bool,
    jobs: Jobs,
) -> ArchiveResult:
    context = archive_fingerprint(settings, box_fingerprint(signup_box(db, settings)))
    with read_snapshot(db):
        positions = journal_positions(db)
        since = None if full else load_archive_state(db, out_dir, context, positions)
        state = ArchiveState(
            context=context,
            posts=positions[0],
            issues=positions[1],
            counts=dict(since.counts) if since is not None else {},
            feed=list(since.feed) if since is not None else [],
        )
        archive = _Archive(db, settings, out_dir, state, jobs, now, site_changed)
        if since is None:
            archive.full()
        else:
            archive.incremental(since)
        archive.finish()
    jobs.sync()
    save_archive_state(db, out_dir, state)
    jobs.local.writer.unmark(ARCHIVE_PART)  # the saved state describes the folder again
    return archive.result


def write_issue_archive(
    db: Database, settings: Settings, out_dir: Path, *, full: bool = False
) -> list[Path]:
    """:func:`build_issue_archive`, returning the files it wrote."""
    return build_issue_archive(db, settings, out_dir, full=full).written
