"""Feeds: RSS 2.0 and Atom 1.0 (written as text by :mod:`policyfeed.site.feed_xml`), JSON Feed
1.1 (standard library), RFC 5005 archive links, and OPML 2.0.

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

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policyfeed.output import write_if_changed
from policyfeed.site.feed_model import (
    ATOM_FILE,
    ATOM_NS,
    EPOCH,
    FEED_FILES,
    FH_NS,
    GENERATOR,
    JSON_FEED_VERSION,
    JSON_FILE,
    OPML_FILE,
    RSS_FILE,
    UNTITLED,
    ArchiveLinks,
    Category,
    FeedEntry,
    FeedFile,
    FeedMeta,
    _aware,
    _plain,
    discovery_links,
    feed_updated,
)

__all__ = [
    "ATOM_FILE",
    "ATOM_NS",
    "EPOCH",
    "FEED_FILES",
    "FH_NS",
    "GENERATOR",
    "JSON_FEED_VERSION",
    "JSON_FILE",
    "OPML_FILE",
    "RSS_FILE",
    "UNTITLED",
    "ArchiveLinks",
    "Category",
    "FeedEntry",
    "FeedFile",
    "FeedMeta",
    "OpmlFeed",
    "discovery_links",
    "feed_updated",
    "json_feed_object",
    "render_atom",
    "render_feed_set",
    "render_json",
    "render_opml",
    "render_rss",
    "write_feed_set",
]


# --- RSS and Atom (policyfeed.site.feed_xml) -------------------------------------------------


def render_rss(
    meta: FeedMeta, entries: Sequence[FeedEntry], archive: ArchiveLinks | None = None
) -> bytes:
    """An RSS 2.0 document (with ``atom:link`` self, ``content:encoded`` and ``dc:creator``)."""
    from policyfeed.site.feed_xml import rss_document

    return rss_document(meta, entries, archive, RSS_FILE, feed_updated(entries, meta.last_change))


def render_atom(
    meta: FeedMeta, entries: Sequence[FeedEntry], archive: ArchiveLinks | None = None
) -> bytes:
    """An Atom 1.0 document (content ``type="html"`` plus a plain-text summary)."""
    from policyfeed.site.feed_xml import atom_document

    return atom_document(meta, entries, archive, ATOM_FILE, feed_updated(entries, meta.last_change))


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
    feed["items"] = [_json_item(entry) for entry in entries]
    return feed


def _json_item(entry: FeedEntry) -> dict[str, Any]:
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
    return item


#: Where an item of ``items`` starts in the indented document.
_ITEM_INDENT = " " * 4


def indented_json(value: Any, indent: str = "") -> str:
    """``json.dumps(value, ensure_ascii=False, indent=2)`` for the dicts, lists and strings of a
    feed, each line after the first starting with ``indent``: the same text, with strings
    encoded by json's C encoder (``indent`` makes json.dumps take its pure-Python one, which
    was a tenth of a cold build). Keys are strings."""
    if type(value) is str:
        return _ENCODE_STRING(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = indent + "  "
        body = (",\n" + inner).join(
            f"{_ENCODE_STRING(key)}: {indented_json(item, inner)}" for key, item in value.items()
        )
        return "{\n" + inner + body + "\n" + indent + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        inner = indent + "  "
        body = (",\n" + inner).join(indented_json(item, inner) for item in value)
        return "[\n" + inner + body + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


#: json's own string encoder (C where available), the one json.dumps uses with ensure_ascii off.
_ENCODE_STRING: Callable[[str], str] = json.encoder.encode_basestring


def _json_item_text(entry: FeedEntry, _scheme: str) -> str:
    """An item as it stands in the indented document, at its depth."""
    return _ITEM_INDENT + indented_json(_json_item(entry), _ITEM_INDENT)


# Like Go's encoding/json: the text never holds a raw <, > or &, so no browser or sniffer that
# takes the file for HTML finds markup in it. JSON parsers read the same strings.
def _html_safe_json(text: str) -> str:
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_json(
    meta: FeedMeta, entries: Sequence[FeedEntry], archive: ArchiveLinks | None = None
) -> bytes:
    """A JSON Feed 1.1 document, UTF-8, indented, with a final newline."""
    # What json.dumps of the whole json_feed_object gives, with each item (in the site's feed
    # and its topics' alike) encoded once.
    text = json.dumps(json_feed_object(meta, [], archive), ensure_ascii=False, indent=2)
    if entries:
        empty = '"items": []\n}'
        assert text.endswith(empty)
        items = ",\n".join(entry.rendered("json", "", _json_item_text) for entry in entries)
        text = text[: -len(empty)] + '"items": [\n' + items + "\n  ]\n}"
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
