"""The static site: feeds, archive pages, OPML and HTML pages, built into the output folder.

:func:`build_site` writes (``N`` is the archive page number, 1 = oldest)::

    index.html                              the newest posts, the topics
    feed.xml  atom.xml  feed.json           the newest ``feed_limit`` posts
    archive/N/  feed.xml atom.xml feed.json index.html      RFC 5005 archive pages
    topics/<slug>/  index.html feed.xml atom.xml feed.json  the newest posts of a topic
    topics/<slug>/archive/N/  feed.xml atom.xml feed.json index.html   the topic's archive
    posts/<slug>/index.html                 a page per post (its permalink when it has no url)
    posts/<old slug>/index.html             a redirect page at a renamed post's old slugs
    feeds.opml                              every feed, for feed readers to import
    issues/...                              the digest's web archive (policyfeed.site.issue_archive)

Nothing else: the state that lets the next build render only what changed (see
:mod:`policyfeed.site.state`) is kept in the database, not in the folder a web server publishes.
A folder that holds something this database did not build is refused unless forced (see
:mod:`policyfeed.site.ownership`). Files are written only when their bytes change. Posts dated
after ``now`` are left out; nothing depends on the clock otherwise.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from policyfeed.content.plaintext import excerpt as text_excerpt
from policyfeed.content.posts import absolute_links, prefix_ids
from policyfeed.content.text import clean_line
from policyfeed.content.urls import site_url
from policyfeed.model import Post, Topic, make_guid
from policyfeed.output import BatchWriter
from policyfeed.site.feeds import (
    FEED_FILES,
    ArchiveLinks,
    Category,
    FeedEntry,
    FeedMeta,
    OpmlFeed,
    discovery_links,
    feed_updated,
    render_feed_set,
    render_opml,
)
from policyfeed.site.issue_archive import build_issue_archive
from policyfeed.site.ownership import claim_output_folder
from policyfeed.site.parallel import Context, Jobs, default_workers
from policyfeed.site.redirects import redirect_page, redirect_path
from policyfeed.site.signup_box import signup_box
from policyfeed.site.state import (
    SITE_PART,
    BuildPlan,
    HistoryPlan,
    load_state,
    plan_build,
    save_state,
)
from policyfeed.store.posts import get_posts_by_ids
from policyfeed.store.site import (
    all_topics,
    journal_head,
    read_snapshot,
    redirects,
    site_last_change,
)
from policyfeed.templating import format_date, text_direction

if TYPE_CHECKING:
    from policyfeed.config import Settings

log = logging.getLogger(__name__)

#: Bump when the layout of the output changes, so that the next build is a full one.
LAYOUT_VERSION = "2"
SITE_TEMPLATES = (
    "site/base.html",
    "site/_post_list.html",
    "site/index.html",
    "site/topic.html",
    "site/post.html",
    "site/archive.html",
    "site/_subscribe_box.html",
    "site/_signup_fields.html",
)
SUMMARY_CHARS = 300
PAGE_FILES = (*(f.name for f in FEED_FILES), "index.html")


@dataclass
class BuildResult:
    """What a build did. ``written`` and ``removed`` are files in ``out_dir``."""

    out_dir: Path
    full: bool = False
    posts: int = 0
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    hub_notified: list[str] = field(default_factory=list)
    hub_error: str = ""

    def feed_urls_changed(self, settings: Settings) -> list[str]:
        """Public URLs of the subscription feeds (not archive pages) whose bytes changed."""
        names = {f.name for f in FEED_FILES}
        urls = []
        for path in self.written:
            rel = path.relative_to(self.out_dir).as_posix()
            if path.name in names and not is_archive_page(rel):
                urls.append(settings.absolute(rel))
        return sorted(urls)


def is_archive_page(rel: str) -> bool:
    """Whether a file of the output is in an RFC 5005 archive page (``archive/N/``, the site's
    or a topic's)."""
    parts = rel.split("/")
    return len(parts) >= 3 and parts[-3] == "archive" and parts[-2].isdigit()


def archive_folder(feed_folder: str, number: int) -> str:
    """The folder of archive page ``number`` of the feed in ``feed_folder`` ("" = the site's)."""
    return f"{feed_folder}archive/{number}/"


# --- what pages show ------------------------------------------------------------------------


def excerpt(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The start of a post's text for its summary: whole blocks, see :func:`plaintext.excerpt`."""
    return text_excerpt(text, limit)


def id_prefix(post: Post) -> str:
    """What the ids of a post's body start with wherever it is shown."""
    return f"{post.slug}-"


def post_entry(post: Post, settings: Settings) -> FeedEntry:
    """A post as a feed entry: its guid as id, its permalink, topics as categories."""
    if post.published_at is None or post.updated_at is None:
        raise ValueError(f"post {post.slug!r} has no publication date")
    link = post.permalink(settings.base_url)
    author = post.author or settings.author
    return FeedEntry(
        # Every published post has its tag: URI; one whose imported id was moved aside by
        # migration 14 gets the same one at its next save.
        id=post.guid or make_guid(settings.domain, post.published_at, post.slug),
        title=post.title,
        link=link,
        published=post.published_at,
        updated=max(post.updated_at, post.published_at),
        # As on the post's page; the site's own links made absolute against this base URL.
        content_html=prefix_ids(absolute_links(post.body_html, settings.base_url), id_prefix(post)),
        summary=post.summary or excerpt(post.body_text),
        authors=(author,) if author else (),
        categories=tuple(Category(t.slug, t.name) for t in post.topics),
    )


def site_meta(
    settings: Settings,
    folder: str = "",
    *,
    title: str = "",
    subtitle: str = "",
    last_change: datetime | None = None,
) -> FeedMeta:
    """The FeedMeta of the site's feed whose documents live in ``folder`` (relative, "" = root)."""
    url = settings.absolute(folder)
    return FeedMeta(
        title=title or settings.title,
        link=url,
        self_base=url,
        id=url,
        subtitle=subtitle if title else settings.description,
        language=settings.language,
        icon=site_url(settings, settings.icon),
        logo=site_url(settings, settings.logo),
        author=settings.author,
        author_email=settings.author_email,
        hub=settings.websub_hub,
        category_scheme=settings.absolute("topics/"),
        last_change=last_change,
    )


def topic_folder(topic: Topic) -> str:
    return f"topics/{topic.slug}/"


def topic_meta(
    settings: Settings, topic: Topic, last_change: datetime | None = None, folder: str = ""
) -> FeedMeta:
    """The FeedMeta of a topic's feed, or of its archive page in ``folder``."""
    return site_meta(
        settings,
        folder or topic_folder(topic),
        title=f"{settings.title}: {topic.name}",
        subtitle=f"Posts on {topic.name} from {settings.title}",
        last_change=last_change,
    )


def feed_links(settings: Settings, folder: str = "", title: str = "") -> list[dict[str, str]]:
    """Autodiscovery links for the feeds in ``folder``: type, title, label and absolute url."""
    return discovery_links(settings.absolute(folder), title or settings.title)


class _Pages:
    """Renders the HTML pages of one build; templates load as render.template_environment says
    (the site's templates_dir first, then the defaults)."""

    def __init__(self, settings: Settings, box: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.site_feeds = feed_links(settings)
        self.box = box
        self._boxes: dict[str, Any] = {}
        self.site = {
            "title": settings.title,
            "description": " ".join(settings.description.split()),
            "url": settings.base_url,
            "language": settings.language,
            "dir": text_direction(settings.language),
        }

    def render(self, name: str, *, depth: int, **context: Any) -> str:
        from policyfeed.templating import render_template

        root = "../" * depth
        if self.box:
            context["box_html"] = self.box_html(root)
        return render_template(
            self.settings, name, site=self.site, root=root, box=self.box, **context
        )

    def box_html(self, root: str) -> Any:
        """The subscribe box at ``root``: the same on every page there, so rendered once (it
        was half of a post page's rendering)."""
        from markupsafe import Markup

        from policyfeed.templating import render_template

        if root not in self._boxes:
            html = render_template(
                self.settings, "site/_subscribe_box.html", site=self.site, root=root, box=self.box
            )
            self._boxes[root] = Markup(html)
        return self._boxes[root]

    def post_view(
        self, post: Post, root: str, *, full: bool = False, listed: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """What a page shows of a post; ``full``: with its body, for its own page. ``listed``
        is its view for a list at the same ``root``, made already (the full one adds to it)."""
        from markupsafe import Markup

        assert post.published_at is not None
        view = dict(listed) if listed is not None else self._listed_view(post, root)
        if full:
            own_page = self.settings.absolute(f"posts/{post.slug}/")
            # Sanitised when it was saved; ids prefixed so they cannot collide with the page's.
            body = absolute_links(post.body_html, self.settings.base_url)
            view["body_html"] = Markup(prefix_ids(body, id_prefix(post)))
            view["permalink"] = post.permalink(self.settings.base_url)
            view["original"] = post.url if post.url and post.url != own_page else ""
        return view

    def _listed_view(self, post: Post, root: str) -> dict[str, Any]:
        assert post.published_at is not None
        view: dict[str, Any] = {
            "title": clean_line(post.title),
            "url": f"{root}posts/{post.slug}/",
            "date": format_date(post.published_at, self.settings.tz),
            "date_iso": post.published_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "author": clean_line(post.author),
            "summary": post.summary or excerpt(post.body_text),
            "topics": [
                {"name": clean_line(t.name), "url": f"{root}topics/{t.slug}/"} for t in post.topics
            ],
        }
        return view

    def listed_views(self, posts: Sequence[Post], root: str) -> list[dict[str, Any]]:
        return [self._listed_view(p, root) for p in posts]

    def post_page(self, post: Post, listed: dict[str, Any] | None = None) -> str:
        """A post's own page; ``listed``: its view in a list of a page two folders deep."""
        return self.render(
            "site/post.html",
            depth=2,
            feeds=self.site_feeds,
            post=self.post_view(post, "../../", full=True, listed=listed),
        )

    def index_page(self, posts: Sequence[Post], topics: Sequence[Topic], older: int) -> str:
        return self.render(
            "site/index.html",
            depth=0,
            feeds=self.site_feeds,
            posts=[self.post_view(p, "") for p in posts],
            topics=[{"name": clean_line(t.name), "url": f"topics/{t.slug}/"} for t in topics],
            older=f"archive/{older}/" if older else "",
        )

    def topic_feeds(self, topic: Topic) -> list[dict[str, str]]:
        """A topic's own feeds (its pages list the site's after them)."""
        title = f"{self.settings.title}: {clean_line(topic.name)}"
        return feed_links(self.settings, topic_folder(topic), title)

    def topic_page(
        self,
        topic: Topic,
        posts: Sequence[Post],
        older: int,
        views: list[dict[str, Any]] | None = None,
    ) -> str:
        own = self.topic_feeds(topic)
        return self.render(
            "site/topic.html",
            depth=2,
            feeds=own + self.site_feeds,
            # Two sets of the same three names: the footer says whose each set is.
            topic_feeds=own,
            site_feeds=self.site_feeds,
            topic={"name": clean_line(topic.name), "slug": topic.slug},
            posts=views if views is not None else self.listed_views(posts, "../../"),
            older=archive_folder("", older) if older else "",
        )

    def archive_page(
        self,
        number: int,
        posts: Sequence[Post],
        *,
        is_last: bool,
        views: list[dict[str, Any]] | None = None,
        topic: Topic | None = None,
    ) -> str:
        """An archive page of the site's feed, or of ``topic``'s (two folders deeper)."""
        depth = 2 if topic is None else 4
        # A topic's archive page names its two sets of feeds apart, as the topic's page does.
        feeds: dict[str, Any] = {"feeds": self.site_feeds}
        if topic is not None:
            own = self.topic_feeds(topic)
            feeds = {
                "feeds": own + self.site_feeds,
                "topic_feeds": own,
                "site_feeds": self.site_feeds,
            }
        return self.render(
            "site/archive.html",
            depth=depth,
            **feeds,
            number=number,
            topic=None if topic is None else {"name": clean_line(topic.name), "slug": topic.slug},
            posts=views if views is not None else self.listed_views(posts, "../" * depth),
            newer="../../" if is_last else f"../{number + 1}/",
            older=f"../{number - 1}/" if number > 1 else "",
        )


# --- rendering jobs (in worker processes or in-process, see policyfeed.site.parallel) --------


class _Render(Context):
    """What a rendering job of the site works with: the settings, a writer, the pages."""

    def __init__(
        self, settings: Settings, writer: BatchWriter, box: dict[str, Any] | None = None
    ) -> None:
        super().__init__(settings, writer)
        self.pages = _Pages(settings, box)

    def feeds(
        self,
        folder: str,
        meta: FeedMeta,
        entries: Sequence[FeedEntry],
        archive: ArchiveLinks | None,
        written: list[str],
    ) -> None:
        for file, data in render_feed_set(meta, entries, archive).items():
            self.write(folder + file.name, data, written)

    def post_pages(
        self,
        posts: Iterable[Post],
        written: list[str],
        listed: dict[int | None, dict[str, Any]] | None = None,
    ) -> None:
        """Each post's page; ``listed``: views made for a list two folders deep, by post id."""
        for post in posts:
            view = listed.get(post.id) if listed is not None else None
            self.write(f"posts/{post.slug}/index.html", self.pages.post_page(post, view), written)


def _archive_page_job(
    ctx: _Render,
    topic: Topic | None,
    number: int,
    is_last: bool,
    links: ArchiveLinks,
    posts: list[Post],
    own: set[int],
    last_change: datetime | None,
) -> list[str]:
    """One archive page of the site's feed or of ``topic``'s (its feeds and index), and the
    pages of its posts in ``own``."""
    written: list[str] = []
    folder = archive_folder("" if topic is None else topic_folder(topic), number)
    entries = [post_entry(p, ctx.settings) for p in posts]
    if topic is None:
        meta = site_meta(ctx.settings, folder, last_change=last_change)
    else:
        meta = topic_meta(ctx.settings, topic, last_change, folder)
    ctx.feeds(folder, meta, entries, links, written)
    if topic is not None:  # four folders deep: its list's views do not serve the posts' pages
        page = ctx.pages.archive_page(number, posts, is_last=is_last, topic=topic)
        ctx.write(folder + "index.html", page, written)
        ctx.post_pages((p for p in posts if p.id in own), written)
        return written
    # The list and the posts' own pages are two folders deep: one view each serves both.
    views = ctx.pages.listed_views(posts, "../../")
    page = ctx.pages.archive_page(number, posts, is_last=is_last, views=views)
    ctx.write(folder + "index.html", page, written)
    by_id = {p.id: view for p, view in zip(posts, views, strict=True)}
    ctx.post_pages((p for p in posts if p.id in own), written, by_id)
    return written


def _topic_job(
    ctx: _Render,
    topic: Topic,
    posts: list[Post],
    own: set[int],
    last_change: datetime | None,
    links: ArchiveLinks,
    pages: int,
) -> list[str]:
    """One topic's feeds and page (``pages``: how many archive pages it has), and the pages of
    its posts in ``own``."""
    written: list[str] = []
    folder = topic_folder(topic)
    entries = [post_entry(p, ctx.settings) for p in posts]
    ctx.feeds(folder, topic_meta(ctx.settings, topic, last_change), entries, links, written)
    views = ctx.pages.listed_views(posts, "../../")
    page = ctx.pages.topic_page(topic, posts, pages, views)
    ctx.write(folder + "index.html", page, written)
    by_id = {p.id: view for p, view in zip(posts, views, strict=True)}
    ctx.post_pages((p for p in posts if p.id in own), written, by_id)
    return written


def _post_pages_job(ctx: _Render, posts: list[Post]) -> list[str]:
    written: list[str] = []
    ctx.post_pages(posts, written)
    return written


# --- the build -----------------------------------------------------------------------------


def context_fingerprint(settings: Settings, box: dict[str, Any] | None = None) -> str:
    """Everything besides the posts that shapes the output (the settings, the templates, the
    subscribe box): when it changes, build in full."""
    from policyfeed.site.signup_box import box_fingerprint
    from policyfeed.templating import output_fingerprint

    return output_fingerprint(
        settings,
        layout=f"{LAYOUT_VERSION}\0{box_fingerprint(box)}",
        templates=SITE_TEMPLATES,
        override_folder="site",
    )


class _Builder:
    """One run of :func:`build_site`: carries the plan, the renderer and what was written."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        out_dir: Path,
        now: datetime,
        plan: BuildPlan,
        result: BuildResult,
        jobs: Jobs,
    ) -> None:
        self.db = db
        self.settings = settings
        self.out_dir = out_dir
        self.now = now
        self.plan = plan
        self.result = result
        self.jobs = jobs
        assert isinstance(jobs.local, _Render)
        self.render = jobs.local
        self.limit = settings.feed_limit
        self._entries: dict[int, FeedEntry] = {}
        self.rendered_slugs: set[str] = set()
        #: Dates a feed without entries (the site's last change, never after now).
        self.last_change = site_last_change(db, now)
        self._written: list[str] = []  # by this process, besides the jobs
        self._stale_redirects: set[str] = set()

    def run(self) -> None:
        names = {t.slug: t for t in all_topics(self.db)}
        self.archive_pages("", None, self.plan.site)
        topics = self.topics(names)
        posts = self.current(topics)
        self.post_pages(posts)
        self.remaining_post_pages()
        self.redirect_pages()
        self.opml(topics, posts)
        written = self.jobs.finish() + self._written
        self.result.written.extend(self.out_dir / rel for rel in written)
        self.prune()
        written_count, removed = len(self.result.written), len(self.result.removed)
        log.info("built %s: %d written, %d removed", self.out_dir, written_count, removed)

    # writing and removing
    def write(self, rel: str, data: bytes | str) -> None:
        self.render.write(rel, data, self._written)

    def write_feeds(
        self,
        folder: str,
        meta: FeedMeta,
        entries: Sequence[FeedEntry],
        archive: ArchiveLinks | None,
    ) -> None:
        self.render.feeds(folder, meta, entries, archive, self._written)

    def remove(self, rel: str) -> None:
        path = self.out_dir / rel
        if not path.exists():
            return
        self.render.changing(rel)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        self.result.removed.append(path)
        parent = path.parent
        while parent != self.out_dir:
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
            parent = parent.parent

    def remove_folder_pages(self, folder: str) -> None:
        for name in PAGE_FILES:
            self.remove(folder + name)

    def entry(self, post: Post) -> FeedEntry:
        assert post.id is not None
        if post.id not in self._entries:
            self._entries[post.id] = post_entry(post, self.settings)
        return self._entries[post.id]

    # the parts of the site
    def claim(self, posts: Iterable[Post]) -> set[int]:
        """The posts whose page is still to be rendered, now taken off the plan: the job that
        gets them renders their pages."""
        own = set()
        for post in posts:
            if post.id is not None and post.id in self.plan.post_ids:
                own.add(post.id)
                self.plan.post_ids.discard(post.id)
                self.rendered_slugs.add(post.slug)
        return own

    def post_pages(self, posts: Sequence[Post]) -> None:
        own = self.claim(posts)
        if own:
            self.jobs.submit(_post_pages_job, [p for p in posts if p.id in own])

    def links(self, folder: str, pages: int) -> ArchiveLinks:
        """The RFC 5005 links of the subscription feed in ``folder`` with ``pages`` pages."""
        return ArchiveLinks(
            current=self.settings.absolute(folder),
            prev_archive=self.settings.absolute(archive_folder(folder, pages)) if pages else "",
        )

    def archive_pages(self, folder: str, topic: Topic | None, plan: HistoryPlan) -> None:
        """The archive pages of the feed in ``folder`` (the site's, or ``topic``'s) that the
        plan renders or removes."""
        current = self.settings.absolute(folder)
        for page in plan.pages:
            posts = get_posts_by_ids(self.db, [key[1] for key in reversed(page.keys)])
            links = ArchiveLinks(
                current=current,
                prev_archive=self.settings.absolute(archive_folder(folder, page.number - 1))
                if page.number > 1
                else "",
                next_archive=""
                if page.is_last
                else self.settings.absolute(archive_folder(folder, page.number + 1)),
                is_archive=True,
            )
            own = self.claim(posts)
            self.jobs.submit(
                _archive_page_job,
                topic,
                page.number,
                page.is_last,
                links,
                posts,
                own,
                self.last_change,
            )
        for number in plan.removed_pages:
            self.remove_folder_pages(archive_folder(folder, number))

    def current(self, topics: Sequence[Topic]) -> list[Post]:
        state = self.plan.state.site
        posts = get_posts_by_ids(self.db, state.current)
        pages = len(state.pages)
        meta = site_meta(self.settings, last_change=self.last_change)
        self.write_feeds("", meta, [self.entry(p) for p in posts], self.links("", pages))
        self.write("index.html", self.render.pages.index_page(posts, topics, pages))
        return posts

    def topics(self, names: dict[str, Topic]) -> list[Topic]:
        """Render or remove the topics the plan names; returns every topic that has visible
        posts."""
        for plan in self.plan.topics:
            folder = f"topics/{plan.slug}/"
            if plan.gone:
                self.remove_folder_pages(folder)
                for number in range(1, plan.old_pages + 1):
                    self.remove_folder_pages(archive_folder(folder, number))
                continue
            assert plan.topic is not None and plan.history is not None
            history = plan.history
            self.archive_pages(folder, plan.topic, history)
            posts = get_posts_by_ids(self.db, history.history.current)
            pages = len(history.history.pages)
            self.jobs.submit(
                _topic_job,
                plan.topic,
                posts,
                self.claim(posts),
                self.last_change,
                self.links(folder, pages),
                pages,
            )
        shown = [names[slug] for slug in self.plan.state.topics if slug in names]
        return sorted(shown, key=lambda topic: (topic.name, topic.slug))

    def opml(self, topics: Sequence[Topic], posts: Sequence[Post]) -> None:
        feeds = [
            OpmlFeed(
                self.settings.title,
                self.settings.absolute("feed.xml"),
                self.settings.base_url,
                self.settings.description,
            ),
            OpmlFeed(
                f"{self.settings.title}: the digest",
                self.settings.absolute("issues/feed.xml"),
                self.settings.absolute("issues/"),
            ),
        ]
        for topic in topics:
            feeds.append(
                OpmlFeed(
                    f"{self.settings.title}: {topic.name}",
                    self.settings.absolute(f"topics/{topic.slug}/feed.xml"),
                    self.settings.absolute(f"topics/{topic.slug}/"),
                    group="Topics",
                )
            )
        updated = feed_updated([self.entry(p) for p in posts], self.last_change)
        self.write(
            "feeds.opml",
            render_opml(
                f"{self.settings.title}: feeds", feeds, updated=updated, owner=self.settings.author
            ),
        )

    def redirect_pages(self) -> None:
        """A redirect page at every old slug of a visible post (see site.redirects); those of
        the last build that are gone (the post renamed back, unpublished or removed) removed,
        unless a post's page is there now."""
        state = self.plan.state
        wanted = redirects(self.db, now=self.now)
        for old, new in wanted.items():
            self.write(redirect_path(old), redirect_page(self.settings, new))
        self._stale_redirects = set(state.redirects) - set(wanted)
        state.redirects = wanted

    def prune_archive(self, folder: str, pages: int) -> None:
        """Remove the archive pages in ``folder`` past the feed's ``pages``."""
        for path in sorted((self.out_dir / folder / "archive").glob("*/")):
            if path.is_dir() and (not path.name.isdigit() or not 1 <= int(path.name) <= pages):
                self.remove_folder_pages(f"{folder}archive/{path.name}/")

    def remaining_post_pages(self) -> None:
        ids = sorted(self.plan.post_ids)
        for start in range(0, len(ids), 500):
            self.post_pages(get_posts_by_ids(self.db, ids[start : start + 500]))

    def prune(self) -> None:
        """Remove pages of posts that are gone; after a full build, also whatever an earlier
        build left that the database no longer has."""
        kept = self.rendered_slugs | set(self.plan.state.redirects)
        for slug in sorted((self.plan.gone_slugs | self._stale_redirects) - kept):
            self.remove(f"posts/{slug}/index.html")
        if not self.plan.full:
            return
        histories = self.plan.state.topics
        for path in sorted((self.out_dir / "topics").glob("*/")):
            if not path.is_dir():
                continue
            history = histories.get(path.name)
            self.prune_archive(f"topics/{path.name}/", len(history.pages) if history else 0)
            if history is None:
                self.remove_folder_pages(f"topics/{path.name}/")
        self.prune_archive("", len(self.plan.state.site.pages))
        visible = kept  # a full build renders every visible post and every redirect
        for path in sorted((self.out_dir / "posts").glob("*/")):
            if path.is_dir() and path.name not in visible:
                self.remove(f"posts/{path.name}/index.html")


def build_site(
    db: Database,
    settings: Settings,
    out_dir: Path,
    now: datetime,
    *,
    full: bool = False,
    force: bool = False,
    notify_hub: bool = True,
    workers: int | None = None,
) -> BuildResult:
    """Build the site into ``out_dir`` from the posts visible at ``now``; see the module doc.

    Renders only what changed since the last build into ``out_dir`` (``full`` renders every
    page, e.g. after editing the folder by hand). A folder holding files this database did not
    build is refused (ConflictError) unless ``force``. When ``settings.websub_hub`` is set and
    ``notify_hub``, the hub is told about feeds that changed; a failure is reported in
    ``hub_error`` and retried by the next build.

    Pages are written without a flush each, then made durable by one sync of the output's
    filesystem before the build states are saved (a build killed before that leaves the old
    states, and the next build renders those pages again). A big build renders in ``workers``
    processes (default: one per core; 1: in-process).
    """
    out_dir = Path(out_dir)
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    claim_output_folder(db, out_dir, force=force)
    result = BuildResult(out_dir=out_dir)
    box = signup_box(db, settings)
    context = context_fingerprint(settings, box)
    writer = BatchWriter(out_dir)
    writer.clear_stale()
    local = _Render(settings, writer, box)
    with contextlib.ExitStack() as stack:
        with read_snapshot(db):
            head = journal_head(db)
            state = None if full else load_state(db, out_dir, context, head)
            plan = plan_build(db, state=state, now=now, limit=settings.feed_limit, context=context)
            result.full = plan.full
            result.posts = plan.state.count
            if workers is None:
                pages = len(plan.pages) + sum(
                    len(topic.history.pages) for topic in plan.topics if topic.history
                )
                workers = default_workers(len(plan.post_ids) + 4 * pages)
            jobs = stack.enter_context(
                Jobs(workers, lambda: _Render(settings, BatchWriter(out_dir), box), local)
            )
            if not plan.nothing_to_do:
                _Builder(db, settings, out_dir, now, plan, result, jobs).run()
        # The archive syncs once (for the site's pages too) before it saves its state.
        issues = build_issue_archive(
            db,
            settings,
            out_dir,
            full=full,
            now=now,
            site_changed=not plan.nothing_to_do,
            jobs=jobs,
        )
    save_state(db, out_dir, plan.state)
    writer.unmark(SITE_PART)  # the saved state describes the folder again
    writer.clear_stale()
    result.written.extend(issues.written)
    result.removed.extend(issues.removed)
    if settings.websub_hub and notify_hub:
        from policyfeed.site.websub import notify_changes

        result.hub_notified, result.hub_error = notify_changes(
            settings.websub_hub, db, out_dir, result.feed_urls_changed(settings)
        )
    return result
