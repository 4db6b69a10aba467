"""RSS 2.0 and Atom 1.0 documents, written as text.

The documents are exactly what feedgen and lxml wrote before (``pretty_print``, UTF-8, the same
elements in the same order, the same escaping), without building an element tree for each of the
thousands of documents a big site has: that cost about a fifth of a cold build. Everything here
gets values :mod:`policyfeed.site.feeds` has cleaned already (no character XML forbids).

libxml2's escaping, which this follows: in text ``&``, ``<``, ``>`` and a carriage return; in
an attribute value also ``"``, a line feed and a tab. Elements that hold only elements are
indented by two spaces a level; an element with text (even empty text) is written on one line.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from policyfeed.site.feed_model import ATOM_NS, FH_NS, GENERATOR

if TYPE_CHECKING:
    from policyfeed.site.feed_model import ArchiveLinks, FeedEntry, FeedFile, FeedMeta

DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
RSS_DOCS = "http://www.rssboard.org/rss-specification"

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def text(value: str) -> str:
    """``value`` escaped as element text."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    if "\r" in value:
        value = value.replace("\r", "&#13;")
    return value


def attr(value: str) -> str:
    """``value`` escaped as an attribute value (inside double quotes)."""
    value = text(value)
    if '"' in value:
        value = value.replace('"', "&quot;")
    if "\n" in value:
        value = value.replace("\n", "&#10;")
    if "\t" in value:
        value = value.replace("\t", "&#9;")
    return value


def rfc822(moment: datetime) -> str:
    """A date as RSS writes it (English names, whatever the locale)."""
    day, month = _DAYS[moment.weekday()], _MONTHS[moment.month - 1]
    return f"{day}, {moment.strftime('%d')} {month} {moment.strftime('%Y %H:%M:%S %z')}"


def _escaped_html(value: str) -> str:
    return text(html.escape(value, quote=False))


def _link(tag: str, indent: str, href: str, rel: str = "", media_type: str = "") -> str:
    rel_attr = f' rel="{attr(rel)}"' if rel else ""
    type_attr = f' type="{attr(media_type)}"' if media_type else ""
    return f'{indent}<{tag} href="{attr(href)}"{rel_attr}{type_attr}/>\n'


def _extra_links(
    meta: FeedMeta, archive: ArchiveLinks | None, file: FeedFile
) -> list[tuple[str, str, str]]:
    """The hub and RFC 5005 links besides self and alternate: (rel, href, media type)."""
    links = [("hub", meta.hub, "")] if meta.hub else []
    if archive is None:
        return links
    if archive.is_archive and archive.current:
        links.append(("current", archive.current + file.name, file.media_type))
    if archive.prev_archive:
        links.append(("prev-archive", archive.prev_archive + file.name, file.media_type))
    if archive.next_archive:
        links.append(("next-archive", archive.next_archive + file.name, file.media_type))
    return links


# --- RSS ------------------------------------------------------------------------------------


def rss_item(entry: FeedEntry, category_scheme: str) -> str:
    """One ``<item>``, indented for its place in the channel."""
    summary = entry.summary or entry.title
    parts = [
        "    <item>\n",
        f"      <title>{text(entry.title)}</title>\n",
        f"      <link>{text(entry.link)}</link>\n",
        f"      <description>{_escaped_html(summary)}</description>\n",
        f"      <content:encoded>{text(entry.content_html)}</content:encoded>\n",
        f'      <guid isPermaLink="{"true" if entry.is_permalink else "false"}">'
        f"{text(entry.id)}</guid>\n",
    ]
    domain = f' domain="{attr(category_scheme)}"' if category_scheme else ""
    for category in entry.categories:
        parts.append(f"      <category{domain}>{text(category.label)}</category>\n")
    parts.append(f"      <pubDate>{rfc822(entry.published)}</pubDate>\n")
    for name in entry.authors:
        parts.append(f"      <dc:creator>{text(name)}</dc:creator>\n")
    parts.append("    </item>\n")
    return "".join(parts)


def rss_document(
    meta: FeedMeta,
    entries: Sequence[FeedEntry],
    archive: ArchiveLinks | None,
    file: FeedFile,
    updated: datetime,
) -> bytes:
    is_archive = bool(archive and archive.is_archive)
    fh = f' xmlns:fh="{FH_NS}"' if is_archive else ""
    parts = [
        DECLARATION,
        f'<rss{fh} xmlns:dc="{DC_NS}" xmlns:atom="{ATOM_NS}" xmlns:content="{CONTENT_NS}"'
        ' version="2.0">\n',
        "  <channel>\n",
        f"    <title>{text(meta.title)}</title>\n",
        f"    <link>{text(meta.link)}</link>\n",
        f"    <description>{_escaped_html(meta.subtitle or meta.title)}</description>\n",
        _link("atom:link", "    ", meta.url(file), "self", file.media_type),
        f"    <docs>{RSS_DOCS}</docs>\n",
        f"    <generator>{text(GENERATOR)}</generator>\n",
    ]
    logo = meta.logo or meta.icon
    if logo:
        parts.append(
            "    <image>\n"
            f"      <url>{text(logo)}</url>\n"
            f"      <title>{text(meta.title)}</title>\n"
            f"      <link>{text(meta.link)}</link>\n"
            "    </image>\n"
        )
    if meta.language:
        parts.append(f"    <language>{text(meta.language)}</language>\n")
    parts.append(f"    <lastBuildDate>{rfc822(updated)}</lastBuildDate>\n")
    if meta.author_email:
        editor = f"{meta.author_email} ({meta.author or meta.title})"
        parts.append(f"    <managingEditor>{text(editor)}</managingEditor>\n")
    if entries:
        published = max(e.published for e in entries)
        parts.append(f"    <pubDate>{rfc822(published)}</pubDate>\n")
    for rel, href, media_type in _extra_links(meta, archive, file):
        parts.append(_link("atom:link", "    ", href, rel, media_type))
    if is_archive:
        parts.append("    <fh:archive/>\n")
    scheme = meta.category_scheme
    parts.extend(entry.rendered("rss", scheme, rss_item) for entry in entries)
    parts.append("  </channel>\n</rss>\n")
    return "".join(parts).encode("utf-8")


# --- Atom -----------------------------------------------------------------------------------


def atom_entry(entry: FeedEntry, category_scheme: str) -> str:
    """One ``<entry>``, indented for its place in the feed."""
    summary = entry.summary or entry.title
    parts = [
        "  <entry>\n",
        f"    <id>{text(entry.id)}</id>\n",
        f'    <title type="html">{_escaped_html(entry.title)}</title>\n',
        f"    <updated>{entry.updated.isoformat()}</updated>\n",
    ]
    for name in entry.authors:
        parts.append(f"    <author>\n      <name>{text(name)}</name>\n    </author>\n")
    parts.append(f'    <content type="html">{text(entry.content_html)}</content>\n')
    # Only the href: feedgen wrote an entry's links so (it read rel and type off the new element).
    parts.append(f'    <link href="{attr(entry.link)}"/>\n')
    parts.append(f'    <summary type="html">{_escaped_html(summary)}</summary>\n')
    scheme = f' scheme="{attr(category_scheme)}"' if category_scheme else ""
    for category in entry.categories:
        label = f' label="{attr(category.label)}"' if category.label else ""
        parts.append(f'    <category term="{attr(category.term)}"{scheme}{label}/>\n')
    parts.append(f"    <published>{entry.published.isoformat()}</published>\n")
    parts.append("  </entry>\n")
    return "".join(parts)


def atom_document(
    meta: FeedMeta,
    entries: Sequence[FeedEntry],
    archive: ArchiveLinks | None,
    file: FeedFile,
    updated: datetime,
) -> bytes:
    is_archive = bool(archive and archive.is_archive)
    fh = f' xmlns:fh="{FH_NS}"' if is_archive else ""
    lang = f' xml:lang="{attr(meta.language)}"' if meta.language else ""
    author = f"    <name>{text(meta.author or meta.title)}</name>\n"
    if meta.author_email:
        author += f"    <email>{text(meta.author_email)}</email>\n"
    parts = [
        DECLARATION,
        f'<feed{fh} xmlns="{ATOM_NS}"{lang}>\n',
        f"  <id>{text(meta.id)}</id>\n",
        f'  <title type="html">{_escaped_html(meta.title)}</title>\n',
        f"  <updated>{updated.isoformat()}</updated>\n",
        f"  <author>\n{author}  </author>\n",
        _link("link", "  ", meta.url(file), "self", file.media_type),
    ]
    for rel, href, media_type in _extra_links(meta, archive, file):
        parts.append(_link("link", "  ", href, rel, media_type))
    parts.append(_link("link", "  ", meta.link, "alternate", "text/html"))
    parts.append(f"  <generator>{text(GENERATOR)}</generator>\n")
    if meta.icon:
        parts.append(f"  <icon>{text(meta.icon)}</icon>\n")
    if meta.logo or meta.icon:
        parts.append(f"  <logo>{text(meta.logo or meta.icon)}</logo>\n")
    if meta.subtitle:
        parts.append(f'  <subtitle type="html">{_escaped_html(meta.subtitle)}</subtitle>\n')
    if is_archive:
        parts.append("  <fh:archive/>\n")
    scheme = meta.category_scheme
    parts.extend(entry.rendered("atom", scheme, atom_entry) for entry in entries)
    parts.append("</feed>\n")
    return "".join(parts).encode("utf-8")
