"""The RSS and Atom writers as they were with feedgen and lxml: the reference the text writers
of policyfeed.site.feed_xml are compared with (tests/test_feed_xml.py)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from policyfeed.site.feeds import (
    ATOM_FILE,
    ATOM_NS,
    FH_NS,
    GENERATOR,
    RSS_FILE,
    ArchiveLinks,
    FeedEntry,
    FeedFile,
    FeedMeta,
    feed_updated,
)


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
