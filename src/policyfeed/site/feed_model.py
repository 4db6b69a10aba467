"""What a feed says, in any format: :class:`FeedMeta` about the feed, :class:`FeedEntry` per
item, :class:`ArchiveLinks` for its place in an RFC 5005 archive. Values are cleaned when these are
made (characters XML forbids removed, HTML sanitised and its URLs made absolute), so no script,
iframe or event handler reaches a feed, whoever builds the entry."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlsplit

from policyfeed.content.posts import sanitize_html
from policyfeed.content.text import clean_line, clean_text


class FeedFile(NamedTuple):
    """One feed format: its file name in a feed folder, media type and a label for people."""

    name: str
    media_type: str
    label: str


RSS_FILE = FeedFile("feed.xml", "application/rss+xml", "RSS")
ATOM_FILE = FeedFile("atom.xml", "application/atom+xml", "Atom")
JSON_FILE = FeedFile("feed.json", "application/feed+json", "JSON Feed")
#: The three documents of a feed folder, in the order pages advertise them.
FEED_FILES = (RSS_FILE, ATOM_FILE, JSON_FILE)
OPML_FILE = FeedFile("feeds.opml", "text/x-opml", "OPML")

GENERATOR = "policyfeed"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
FH_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
ATOM_NS = "http://www.w3.org/2005/Atom"
#: ``updated`` of a feed without entries when its FeedMeta gives no ``last_change``: a fixed
#: date, never the build time. (Builds always give one: readers refuse a feed dated 1970.)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNTITLED = "(untitled)"


def _clean(text: str) -> str:
    """What no feed may carry removed (XML-forbidden and C1 controls, noncharacters)."""
    return clean_text(text)


def _absolute_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL, not {value!r}")
    return value


def _plain(text: str) -> str:
    """One line of plain text (an Atom text construct, a name): control characters and
    bidirectional overrides removed, white space folded."""
    return clean_line(text)


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a datetime with a time zone")
    return moment.astimezone(UTC)


class Category(NamedTuple):
    """A category (topic) of an entry: ``term`` is its stable key, ``label`` what people read."""

    term: str
    label: str


@dataclass(frozen=True)
class FeedMeta:
    """What a feed says about itself.

    ``link`` is the HTML page the feed belongs to; ``self_base`` the absolute URL of the folder
    that holds this document (ending in ``/``): the self link is ``self_base`` plus the file name.
    ``id`` is the feed's permanent identity (Atom ``id``). ``hub`` is a WebSub hub URL or "".
    ``last_change`` dates the feed while it has no entries (the site's last change).
    """

    title: str
    link: str
    self_base: str
    id: str
    subtitle: str = ""
    language: str = ""
    icon: str = ""
    logo: str = ""
    author: str = ""
    author_email: str = ""
    hub: str = ""
    category_scheme: str = ""
    last_change: datetime | None = None

    def __post_init__(self) -> None:
        _absolute_url(self.link, "feed link")
        _absolute_url(self.self_base, "feed folder URL")
        if not self.self_base.endswith("/"):
            raise ValueError(f"feed folder URL must end in '/': {self.self_base!r}")
        for name in ("icon", "logo", "hub"):
            if getattr(self, name):
                _absolute_url(getattr(self, name), name)
        for name in ("title", "subtitle", "author", "author_email"):
            object.__setattr__(self, name, _plain(getattr(self, name)))
        if not self.title:
            object.__setattr__(self, "title", UNTITLED)

    def url(self, file: FeedFile) -> str:
        """The absolute URL of this document in the given format."""
        return self.self_base + file.name


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed. ``id`` never changes once published (a ``tag:`` URI or a permalink).

    ``summary`` is plain text; ``content_html`` is HTML, sanitised here with relative URLs
    resolved against ``link``. ``published`` and ``updated`` must carry a time zone.
    """

    id: str
    title: str
    link: str
    published: datetime
    updated: datetime
    content_html: str = ""
    summary: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[Category, ...] = field(default=())
    #: The entry as written in each format (by format and category scheme): an entry object
    #: used for several feeds (the builder's own, the digest's) is written once. Worker jobs
    #: make their own entries, so across jobs a post is still written once per job.
    _rendered: dict[tuple[str, str], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        entry_id = _clean(self.id).strip()
        if not entry_id:
            raise ValueError("a feed entry needs an id")
        object.__setattr__(self, "id", entry_id)
        object.__setattr__(self, "link", _absolute_url(self.link, "entry link"))
        object.__setattr__(self, "title", _plain(self.title) or UNTITLED)
        object.__setattr__(self, "summary", _plain(self.summary))
        object.__setattr__(self, "published", _aware(self.published, "published"))
        object.__setattr__(self, "updated", _aware(self.updated, "updated"))
        # Fragments resolve against the entry's link: a reader would take "#fn:1" to be in the
        # feed document.
        content = (
            sanitize_html(_clean(self.content_html), self.link, keep_fragments=False)
            if self.content_html
            else ""
        )
        if not content:
            content = f"<p>{html.escape(self.summary or self.title, quote=False)}</p>"
        object.__setattr__(self, "content_html", content)
        object.__setattr__(self, "authors", tuple(a for a in map(_plain, self.authors) if a))
        object.__setattr__(
            self,
            "categories",
            tuple(Category(_plain(c.term), _plain(c.label)) for c in self.categories if c.term),
        )

    @property
    def is_permalink(self) -> bool:
        """True when the id is also the entry's URL (RSS ``guid isPermaLink``)."""
        return self.id == self.link

    def rendered(self, kind: str, scheme: str, render: Callable[[FeedEntry, str], str]) -> str:
        """``render(self, scheme)``, made once for each ``kind`` and ``scheme``."""
        key = (kind, scheme)
        found = self._rendered.get(key)
        if found is None:
            found = self._rendered[key] = render(self, scheme)
        return found


@dataclass(frozen=True)
class ArchiveLinks:
    """Where a document sits in an RFC 5005 archived feed; every value is a folder URL.

    The subscription document links ``prev_archive`` (the newest archive page). An archive
    document has ``is_archive`` (``fh:archive``), links ``current`` (the subscription folder) and
    its neighbours: ``prev_archive`` is older, ``next_archive`` newer.
    """

    current: str = ""
    prev_archive: str = ""
    next_archive: str = ""
    is_archive: bool = False


def discovery_links(folder_url: str, title: str) -> list[dict[str, str]]:
    """What pages advertise of the feed in ``folder_url``: type, title, label and url of each
    document, for autodiscovery links and footers."""
    return [
        {
            "type": f.media_type,
            "title": f"{title} ({f.label})",
            "label": f.label,
            "url": folder_url + f.name,
        }
        for f in FEED_FILES
    ]


def feed_updated(entries: Sequence[FeedEntry], last_change: datetime | None = None) -> datetime:
    """A feed's ``updated``: the newest change among its entries, else ``last_change`` (else
    :data:`EPOCH`)."""
    return max((e.updated for e in entries), default=last_change or EPOCH)
