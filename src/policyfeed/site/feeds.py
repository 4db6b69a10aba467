"""Feeds: RSS 2.0 and Atom 1.0 (feedgen), JSON Feed 1.1 (standard library), RFC 5005 archive
links, and OPML 2.0.

The layer is format-neutral, so anything can be published as a feed (posts, digest issues):

- describe the feed with :class:`FeedMeta` and its items with :class:`FeedEntry`, newest first;
- :func:`render_rss`, :func:`render_atom` and :func:`render_json` give the bytes of one document;
- :func:`write_feed_set` writes all three into one folder (``feed.xml``, ``atom.xml``,
  ``feed.json``, see :data:`FEED_FILES`) through ``write_if_changed``;
- :class:`ArchiveLinks` places a document in an RFC 5005 archived feed; :func:`render_opml`
  lists feeds for readers to import.

Output depends only on its inputs: no clock, no dict-order surprises. Entries are cleaned when
they are made (characters XML forbids removed, HTML sanitised and its URLs made absolute), so no
script, iframe or event handler reaches a feed, whoever builds the entry.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from policyfeed.content.posts import sanitize_html
from policyfeed.content.text import clean_line, clean_text
from policyfeed.output import write_if_changed


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


# --- RSS and Atom (feedgen) ----------------------------------------------------------------


class _DocumentExtras:
    """feedgen extension: what feedgen cannot say itself (RFC 5005 and hub links in RSS,
    ``fh:archive``). Configured through the attributes after registration."""

    def __init__(self) -> None:
        self.rss_links: list[tuple[str, str, str]] = []  # (rel, href, media type)
        self.archive = False

    def extend_ns(self) -> dict[str, str]:
        return {"fh": FH_NS} if self.archive else {}

    def extend_rss(self, rss: Any) -> Any:
        from lxml import etree

        channel = rss.find("channel")
        for rel, href, media_type in self.rss_links:
            link = etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=href, rel=rel)
            if media_type:
                link.attrib["type"] = media_type
        if self.archive:
            etree.SubElement(channel, f"{{{FH_NS}}}archive")
        return rss

    def extend_atom(self, feed: Any) -> Any:
        from lxml import etree

        if self.archive:
            etree.SubElement(feed, f"{{{FH_NS}}}archive")
        return feed


def _archive_links(archive: ArchiveLinks | None, file: FeedFile) -> list[tuple[str, str, str]]:
    if archive is None:
        return []
    links = []
    if archive.is_archive and archive.current:
        links.append(("current", archive.current + file.name, file.media_type))
    if archive.prev_archive:
        links.append(("prev-archive", archive.prev_archive + file.name, file.media_type))
    if archive.next_archive:
        links.append(("next-archive", archive.next_archive + file.name, file.media_type))
    return links


def _generator(
    meta: FeedMeta, entries: Sequence[FeedEntry], archive: ArchiveLinks | None, file: FeedFile
) -> Any:
    from feedgen.feed import FeedGenerator

    rss = file is RSS_FILE
    fg = FeedGenerator()
    fg.register_extension("policyfeed", _DocumentExtras, None, atom=True, rss=True)
    if rss:
        fg.load_extension("dc", atom=False, rss=True)
    extras: _DocumentExtras = fg.policyfeed
    extras.archive = bool(archive and archive.is_archive)

    fg.id(meta.id)
    fg.title(meta.title)
    # RSS reads <description> as HTML: escape the plain text. Atom's subtitle is plain text.
    # (feedgen keeps one value for both, so each format sets its own.)
    if rss:
        fg.description(html.escape(meta.subtitle or meta.title, quote=False))
    elif meta.subtitle:
        fg.subtitle(meta.subtitle)
    if meta.language:
        fg.language(meta.language)
    fg.generator(GENERATOR)
    author = {"name": meta.author or meta.title}
    if meta.author_email:
        author["email"] = meta.author_email
        if rss:
            fg.managingEditor(f"{meta.author_email} ({author['name']})")
    fg.author(author)
    if meta.icon:
        fg.icon(meta.icon)
    if meta.logo or meta.icon:
        fg.logo(meta.logo or meta.icon)  # also the RSS <image>
    updated = feed_updated(entries, meta.last_change)
    fg.updated(updated)  # also RSS lastBuildDate: the newest change, never the build time
    if entries and rss:
        fg.pubDate(max(e.published for e in entries))

    # The self link first and the site link last: feedgen uses the last link() as RSS <link>.
    fg.link(href=meta.url(file), rel="self", type=file.media_type)
    extra = ([("hub", meta.hub, "")] if meta.hub else []) + _archive_links(archive, file)
    if rss:
        extras.rss_links = extra
    else:
        for rel, href, media_type in extra:
            fg.link({"href": href, "rel": rel, **({"type": media_type} if media_type else {})})
    fg.link(href=meta.link, rel="alternate", type="text/html")

    for entry in entries:
        fe = fg.add_entry(order="append")
        fe.guid(entry.id, permalink=entry.is_permalink)
        fe.title(entry.title)
        fe.link(href=entry.link, rel="alternate", type="text/html")
        # Order matters to feedgen: the RSS description (escaped summary) first, then the
        # content (RSS content:encoded, Atom content type="html"), then the Atom summary.
        summary = entry.summary or entry.title
        fe.description(html.escape(summary, quote=False))
        fe.content(entry.content_html, type="html")
        if not rss:
            # type="html", the text escaped, as RSS does: readers render type="text" that
            # looks like markup (a title about <b>) as HTML anyway (W3C: ContainsUndeclaredHTML).
            fe.summary(html.escape(summary, quote=False), type="html")
        fe.published(entry.published)
        fe.updated(entry.updated)
        for name in entry.authors:
            if rss:
                fe.dc.dc_creator(name)
            else:
                fe.author({"name": name})
        if entry.categories:
            fe.category(
                [
                    {
                        "term": c.term,
                        "label": c.label,
                        **({"scheme": meta.category_scheme} if meta.category_scheme else {}),
                    }
                    for c in entry.categories
                ]
            )
    return fg


def render_rss(
    meta: FeedMeta, entries: Sequence[FeedEntry], archive: ArchiveLinks | None = None
) -> bytes:
    """An RSS 2.0 document (with ``atom:link`` self, ``content:encoded`` and ``dc:creator``)."""
    data: bytes = _generator(meta, entries, archive, RSS_FILE).rss_str(pretty=True)
    return data


def render_atom(
    meta: FeedMeta, entries: Sequence[FeedEntry], archive: ArchiveLinks | None = None
) -> bytes:
    """An Atom 1.0 document (content ``type="html"`` plus a plain-text summary)."""
    from lxml import etree

    feed, doc = _generator(meta, entries, archive, ATOM_FILE)._create_atom()
    # Text constructs as type="html" with the text escaped (see the entries' summaries).
    # (feedgen makes its elements without a namespace and declares Atom's as the default.)
    for element in (
        *feed.findall("title"),
        *feed.findall("subtitle"),
        *feed.findall("entry/title"),
    ):
        element.text = html.escape(element.text or "", quote=False)
        element.attrib["type"] = "html"
    data: bytes = etree.tostring(doc, pretty_print=True, encoding="UTF-8", xml_declaration=True)
    return data


# --- JSON Feed ----------------------------------------------------------------------------


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def json_feed_object(
    meta: FeedMeta, entries: Sequence[FeedEntry], archive: ArchiveLinks | None = None
) -> dict[str, Any]:
    """The JSON Feed 1.1 document as a dict (see :func:`render_json`)."""
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": meta.title,
        "home_page_url": meta.link,
        "feed_url": meta.url(JSON_FILE),
    }
    if meta.subtitle:
        feed["description"] = meta.subtitle
    if archive is not None and archive.prev_archive:
        feed["next_url"] = archive.prev_archive + JSON_FILE.name  # older items, JSON Feed style
    if meta.logo or meta.icon:
        feed["icon"] = meta.logo or meta.icon
    if meta.icon:
        feed["favicon"] = meta.icon
    feed["authors"] = [{"name": meta.author or meta.title}]
    if meta.language:
        feed["language"] = meta.language
    if meta.hub:
        feed["hubs"] = [{"type": "WebSub", "url": meta.hub}]
    items = []
    for entry in entries:
        item: dict[str, Any] = {
            "id": entry.id,
            "url": entry.link,
            "title": entry.title,
            "content_html": entry.content_html,
            "summary": entry.summary or entry.title,
            "date_published": _rfc3339(entry.published),
            "date_modified": _rfc3339(entry.updated),
        }
        if entry.authors:
            item["authors"] = [{"name": name} for name in entry.authors]
        if entry.categories:
            item["tags"] = [c.label for c in entry.categories]
        items.append(item)
    feed["items"] = items
    return feed


# Like Go's encoding/json: the text never holds a raw <, > or &, so no browser or sniffer that
# takes the file for HTML finds markup in it. JSON parsers read the same strings.
def _html_safe_json(text: str) -> str:
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_json(
    meta: FeedMeta, entries: Sequence[FeedEntry], archive: ArchiveLinks | None = None
) -> bytes:
    """A JSON Feed 1.1 document, UTF-8, indented, with a final newline."""
    text = json.dumps(json_feed_object(meta, entries, archive), ensure_ascii=False, indent=2)
    return (_html_safe_json(text) + "\n").encode("utf-8")


RENDERERS = {RSS_FILE: render_rss, ATOM_FILE: render_atom, JSON_FILE: render_json}


def render_feed_set(
    meta: FeedMeta, entries: Sequence[FeedEntry], archive: ArchiveLinks | None = None
) -> dict[FeedFile, bytes]:
    """The three documents of a feed (RSS, Atom, JSON Feed), by format."""
    return {file: render(meta, entries, archive) for file, render in RENDERERS.items()}


def write_feed_set(
    out_dir: Path,
    rel_dir: str,
    meta: FeedMeta,
    entries: Sequence[FeedEntry],
    archive: ArchiveLinks | None = None,
) -> list[Path]:
    """Write ``feed.xml``, ``atom.xml`` and ``feed.json`` into ``out_dir/rel_dir``.

    ``meta.self_base`` must be the public URL of that folder. Returns the files whose bytes
    changed (the others are left alone, so their mtimes stay honest).
    """
    folder = out_dir / rel_dir.strip("/") if rel_dir.strip("/") else out_dir
    changed = []
    for file, data in render_feed_set(meta, entries, archive).items():
        path = folder / file.name
        if write_if_changed(path, data):
            changed.append(path)
    return changed


# --- OPML ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpmlFeed:
    """One feed as an OPML outline; ``group`` puts it in a folder (outline) of that name."""

    title: str
    xml_url: str
    html_url: str
    description: str = ""
    group: str = ""


def render_opml(
    title: str, feeds: Sequence[OpmlFeed], *, updated: datetime, owner: str = ""
) -> bytes:
    """An OPML 2.0 subscription list of ``feeds``, in the order given."""
    from email.utils import format_datetime

    from lxml import etree

    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = _plain(title)
    etree.SubElement(head, "dateModified").text = format_datetime(_aware(updated, "updated"))
    if owner:
        etree.SubElement(head, "ownerName").text = _plain(owner)
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(root, "body")
    groups: dict[str, Any] = {}
    for feed in feeds:
        parent = body
        if feed.group:
            if feed.group not in groups:
                name = _plain(feed.group)
                groups[feed.group] = etree.SubElement(body, "outline", text=name, title=name)
            parent = groups[feed.group]
        text = _plain(feed.title) or UNTITLED
        outline = etree.SubElement(
            parent, "outline", type="rss", text=text, title=text, xmlUrl=feed.xml_url
        )
        outline.attrib["htmlUrl"] = feed.html_url
        if feed.description:
            outline.attrib["description"] = _plain(feed.description)
    data: bytes = etree.tostring(root, pretty_print=True, encoding="UTF-8", xml_declaration=True)
    return data
