"""The feeds in the output folder, read as feed readers read them.

Each RSS and Atom document must parse with feedparser without ``bozo`` (and as XML with lxml,
which gives the structure below); each JSON Feed with the ``json`` module and JSON Feed 1.1's
required members. In every document: ids present, absolute URIs and unique; no date after now
and no 1970 placeholder; the self link (``feed_url``) equal to the file's public URL; Atom text
constructs declared ``html`` when they hold markup-like text (else readers render it as HTML).

Across documents: every RFC 5005 archive page is reached from a subscription document through
``prev-archive`` (``next_url`` in JSON Feed), links back to it, and no entry appears twice in
one history; the site's feed and each topic's hold every post published by now; an entry keeps
the id it had at the last check (a new id makes readers show it again).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from policyfeed.check.report import ERROR, Report
from policyfeed.check.site import exists, resolve
from policyfeed.site.feeds import ATOM_NS, EPOCH, FH_NS, JSON_FEED_VERSION

if TYPE_CHECKING:
    from lxml import etree

AREA = "feeds"
FEED_NAMES = ("feed.xml", "atom.xml", "feed.json")
_ATOM = f"{{{ATOM_NS}}}"
_FH_ARCHIVE = f"{{{FH_NS}}}archive"
#: RFC 3986: a scheme, then only characters a URI may hold (percent escapes well formed).
_ABSOLUTE_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+"
)
# Text readers would take for markup: a tag or an entity reference (W3C: ContainsUndeclaredHTML).
_MARKUP = re.compile(r"<[A-Za-z/!?]|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")
_NEWEST_DATES = 5
_ARCHIVE_RELS = ("current", "prev-archive", "next-archive")

Facts = dict[str, Any]


def is_feed_name(rel: str) -> bool:
    return posixpath.basename(rel) in FEED_NAMES


# --- reading one document ---------------------------------------------------------------------


class _Reader:
    """Collects the facts of one document while it is read."""

    def __init__(self, rel: str, base_url: str, kind: str) -> None:
        self.rel = rel
        self.base_url = base_url
        self.url = base_url + rel
        self.findings: list[list[str]] = []
        self.facts: Facts = {
            "k": kind, "f": self.findings, "t": [], "a": False, "l": {}, "e": [], "d": []
        }  # fmt: skip
        self._dates: list[tuple[str, str]] = []
        self._ids: set[str] = set()

    def error(self, what: str, where: str = "") -> None:
        self.findings.append([ERROR, AREA, what, where])

    def target(self, url: str | None, where: str) -> None:
        """An internal URL the document names, which must be a file of the site."""
        if not url:
            return
        kind, path = resolve(url, self.rel, self.base_url)
        if kind == "file" and path is not None and path != self.rel:
            self.facts["t"].append([path, where])

    def self_link(self, href: str | None, name: str) -> None:
        if not href:
            self.error(f"no {name}: readers cannot tell where the feed lives")
        elif href != self.url:
            self.error(f"the {name} is {href}, not the file's public URL {self.url}")

    def entry(self, entry_id: str | None, link: str | None, where: str) -> str:
        """Record an entry; returns how the findings name it."""
        name = f"entry {entry_id}" if entry_id else where
        if not entry_id:
            self.error("an entry without an id: readers show it again whenever it changes", where)
        else:
            if not _ABSOLUTE_URI.fullmatch(entry_id):
                self.error(f"id {entry_id!r} is not an absolute URI", name)
            if entry_id in self._ids:
                self.error(f"id {entry_id} is used twice in the document")
            self._ids.add(entry_id)
        self.facts["e"].append([entry_id or "", link or ""])
        self.target(link, name)
        return name

    def date(self, value: str | None, where: str, *, rfc822: bool = False) -> None:
        if value is None:
            return
        text = value.strip()
        try:
            moment = parsedate_to_datetime(text) if rfc822 else _rfc3339(text)
        except (TypeError, ValueError):
            moment = None
        if moment is None or moment.tzinfo is None:
            style = "an RFC 822 date with a zone" if rfc822 else "an RFC 3339 date with a zone"
            self.error(f"date {text!r} is not {style}", where)
            return
        moment = moment.astimezone(UTC)
        if moment == EPOCH:
            self.error(
                "date 1970-01-01T00:00:00Z stands for no date, and some readers refuse the feed",
                where,
            )
        self._dates.append((moment.strftime("%Y-%m-%dT%H:%M:%SZ"), where))

    def done(self) -> Facts:
        self._dates.sort(reverse=True)
        self.facts["d"] = [list(d) for d in self._dates[:_NEWEST_DATES]]
        self.facts["n"] = len(self.facts["e"])
        return self.facts


def _rfc3339(text: str) -> datetime:
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", text):
        raise ValueError(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def analyse_feed(rel: str, data: bytes, base_url: str) -> Facts:
    """The facts of one feed document (``rel`` in the output folder, served at base_url + rel)."""
    if rel.endswith(".json"):
        return _json_feed(rel, data, base_url)
    return _xml_feed(rel, data, base_url)


def _xml_feed(rel: str, data: bytes, base_url: str) -> Facts:
    import feedparser
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        reader = _Reader(rel, base_url, "xml")
        reader.error(*_xml_error(exc))
        return reader.done()
    kind = "atom" if root.tag == f"{_ATOM}feed" else "rss" if root.tag == "rss" else "xml"
    reader = _Reader(rel, base_url, kind)
    parsed = feedparser.parse(data)
    if parsed.bozo:
        problem = parsed.get("bozo_exception")
        message = getattr(problem, "getMessage", lambda: str(problem))()
        line = getattr(problem, "getLineNumber", lambda: None)()
        reader.error(
            f"feedparser cannot read it cleanly: {message}", f"line {line}" if line else ""
        )
    if kind == "atom":
        _atom(reader, root)
    elif kind == "rss":
        _rss(reader, root)
    else:
        reader.error(f"neither RSS nor Atom (the root element is {root.tag})")
    held = len(reader.facts["e"])
    if kind != "xml" and not parsed.bozo and len(parsed.entries) != held:
        reader.error(
            f"feedparser reads {len(parsed.entries)} entries where the document has {held}"
        )
    return reader.done()


def _xml_error(exc: etree.XMLSyntaxError) -> tuple[str, str]:
    message = re.sub(r", line \d+, column \d+$", "", str(exc.msg))
    return f"not well-formed XML: {message}", f"line {exc.lineno}, column {exc.offset}"


def _text(element: etree._Element | None) -> str | None:
    return None if element is None else (element.text or "").strip()


def _atom(reader: _Reader, feed: etree._Element) -> None:
    feed_id = _text(feed.find(f"{_ATOM}id"))
    if not feed_id:
        reader.error("no feed id")
    elif not _ABSOLUTE_URI.fullmatch(feed_id):
        reader.error(f"feed id {feed_id!r} is not an absolute URI")
    _atom_links(reader, feed, "feed")
    reader.facts["a"] = feed.find(_FH_ARCHIVE) is not None
    reader.date(_text(feed.find(f"{_ATOM}updated")), "feed updated")
    for name in ("title", "subtitle", "rights"):
        _text_construct(reader, feed.find(f"{_ATOM}{name}"), f"feed {name}")
    for index, entry in enumerate(feed.iter(f"{_ATOM}entry"), 1):
        link = next(
            (
                link.get("href")
                for link in entry.iter(f"{_ATOM}link")
                if link.get("rel", "alternate") == "alternate"
            ),
            None,
        )
        name = reader.entry(_text(entry.find(f"{_ATOM}id")), link, f"entry {index}")
        for field in ("published", "updated"):
            reader.date(_text(entry.find(f"{_ATOM}{field}")), f"{name} {field}")
        for field in ("title", "summary"):
            _text_construct(reader, entry.find(f"{_ATOM}{field}"), f"{name} {field}")


def _atom_links(reader: _Reader, parent: etree._Element, where: str) -> None:
    self_href = None
    for link in parent.findall(f"{_ATOM}link"):
        rel, href = link.get("rel", "alternate"), link.get("href")
        if rel == "self":
            self_href = href
        elif rel in _ARCHIVE_RELS and href:
            reader.facts["l"][rel] = href
        elif rel == "alternate":
            reader.target(href, f"{where} link")
    reader.self_link(self_href, "rel=self link")


def _text_construct(reader: _Reader, element: etree._Element | None, where: str) -> None:
    if element is None or element.get("type", "text") != "text":
        return
    match = _MARKUP.search(element.text or "")
    if match:
        reader.error(
            f"type=text but holds markup-like text {match.group()!r}, which readers render as "
            "HTML (declare type=html and escape it)",
            where,
        )


def _rss(reader: _Reader, rss: etree._Element) -> None:
    channel = rss.find("channel")
    if channel is None:
        reader.error("no channel")
        return
    _atom_links(reader, channel, "channel")
    reader.target(_text(channel.find("link")), "channel link")
    reader.facts["a"] = channel.find(_FH_ARCHIVE) is not None
    for field in ("lastBuildDate", "pubDate"):
        reader.date(_text(channel.find(field)), f"channel {field}", rfc822=True)
    for index, item in enumerate(channel.iter("item"), 1):
        guid = item.find("guid")
        name = reader.entry(_text(guid), _text(item.find("link")), f"item {index}")
        reader.date(_text(item.find("pubDate")), f"{name} pubDate", rfc822=True)


def _json_feed(rel: str, data: bytes, base_url: str) -> Facts:
    reader = _Reader(rel, base_url, "json")
    try:
        feed = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        where = f"line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        reader.error(f"not valid JSON: {getattr(exc, 'msg', exc)}", where)
        return reader.done()
    if not isinstance(feed, dict):
        reader.error("not a JSON object")
        return reader.done()
    if feed.get("version") != JSON_FEED_VERSION:
        reader.error(f"version is {feed.get('version')!r}, not {JSON_FEED_VERSION}")
    if not isinstance(feed.get("title"), str) or not feed["title"].strip():
        reader.error("no title (JSON Feed 1.1 requires one)")
    reader.self_link(feed.get("feed_url"), "feed_url")
    reader.target(feed.get("home_page_url"), "home_page_url")
    if feed.get("next_url"):
        reader.facts["l"]["prev-archive"] = feed["next_url"]
    items = feed.get("items")
    if not isinstance(items, list):
        reader.error("no items array (JSON Feed 1.1 requires one)")
        return reader.done()
    for index, item in enumerate(items, 1):
        if not isinstance(item, dict):
            reader.error("an item that is not an object", f"item {index}")
            continue
        item_id = item.get("id")
        name = reader.entry(
            str(item_id) if item_id not in (None, "") else None, item.get("url"), f"item {index}"
        )
        if not isinstance(item_id, str) and item_id is not None:
            reader.error("id is not a string", name)
        if not item.get("content_html") and not item.get("content_text"):
            reader.error("neither content_html nor content_text (JSON Feed 1.1)", name)
        for field in ("date_published", "date_modified"):
            value = item.get(field)
            reader.date(value if isinstance(value, str) else None, f"{name} {field}")
    return reader.done()


def analyse_opml(rel: str, data: bytes, base_url: str) -> Facts:
    """An OPML subscription list: well-formed XML whose feeds and pages are files of the site."""
    from lxml import etree

    reader = _Reader(rel, base_url, "opml")
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        reader.error(*_xml_error(exc))
        return reader.done()
    if root.tag != "opml" or root.find("body") is None:
        reader.error("not an OPML document (no <opml> with a <body>)")
    for outline in root.iter("outline"):
        for attribute in ("xmlUrl", "htmlUrl"):
            reader.target(outline.get(attribute), f"outline {outline.get('text', '')!r}")
    return reader.done()


# --- the rules over all documents -----------------------------------------------------------


def report_feeds(
    report: Report,
    docs: Mapping[str, Facts],
    files: set[str],
    *,
    base_url: str,
    now: datetime,
    expected: Mapping[str, tuple[int, str]],
    previous_ids: Mapping[str, str],
) -> None:
    """The findings inside each document, then the ones across documents.

    ``expected`` maps a feed folder (``""``, ``topics/ietf/``) to the number of posts its history
    should hold and what they are; ``previous_ids`` maps entry links to their id at the last
    check.
    """
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for rel in sorted(docs):
        facts = docs[rel]
        for level, area, what, where in facts["f"]:
            report.add(level, area, rel, what, where)
        late = [(date, where) for date, where in facts["d"] if date > stamp]
        if late:
            more = f", and {len(late) - 1} more" if len(late) > 1 else ""
            date, where = late[0]
            report.error(AREA, rel, f"a date after now ({stamp})", f"{date} at {where}{more}")
        for path, where in facts["t"]:
            if not exists(path, files):
                report.error(AREA, rel, f"links to {path}, which the site does not have", where)
    _report_ids(report, docs, previous_ids)
    _report_chains(report, docs, base_url, expected)


def _report_ids(report: Report, docs: Mapping[str, Facts], previous: Mapping[str, str]) -> None:
    # One finding per document at most, worded alike so that the report merges them.
    seen: dict[str, tuple[str, str]] = {}
    for rel in sorted(docs):
        renamed: list[str] = []
        split: list[str] = []
        for entry_id, link in docs[rel]["e"]:
            if not link or not entry_id:
                continue
            old = previous.get(link)
            if old is not None and old != entry_id:
                renamed.append(f"{link} was {old}, now {entry_id}")
            first = seen.setdefault(link, (entry_id, rel))
            if first[0] != entry_id:
                split.append(f"{link} is {entry_id} here and {first[0]} in {first[1]}")
        if renamed:
            report.error(
                AREA,
                rel,
                "entries have a new id since the last check: readers will show them again",
                _first_of(renamed),
            )
        if split:
            report.error(AREA, rel, "an entry has another id in another feed", _first_of(split))


def _first_of(items: list[str]) -> str:
    return items[0] + (f" (and {len(items) - 1} more)" if len(items) > 1 else "")


def _report_chains(
    report: Report,
    docs: Mapping[str, Facts],
    base_url: str,
    expected: Mapping[str, tuple[int, str]],
) -> None:
    def rel_of(url: str | None, doc: str) -> str | None:
        if not url:
            return None
        kind, path = resolve(url, doc, base_url)
        return path if kind == "file" else None

    def is_archive(rel: str) -> bool:
        facts = docs[rel]
        if facts["k"] != "json":
            return bool(facts["a"])
        folder = posixpath.dirname(rel)
        siblings = [posixpath.join(folder, n) for n in ("atom.xml", "feed.xml")]
        return any(docs[s]["a"] for s in siblings if s in docs)

    reached: set[str] = set()
    for start in sorted(docs):
        if is_archive(start) or docs[start]["k"] == "xml":
            continue
        reached.add(start)
        chain = [start]
        newer = start
        current = rel_of(docs[start]["l"].get("prev-archive"), start)
        while current is not None:
            where = f"prev-archive of {newer}"
            if current in chain:
                report.error(AREA, start, f"the archive chain loops back to {current}", where)
                break
            if current not in docs:
                report.error(AREA, start, f"archive page {current} is missing", where)
                break
            facts = docs[current]
            reached.add(current)
            chain.append(current)
            if not is_archive(current):
                report.error(AREA, current, "archive page without fh:archive (RFC 5005)", where)
            if facts["k"] != "json":
                back = rel_of(facts["l"].get("current"), current)
                if back != start:
                    report.error(
                        AREA,
                        current,
                        f"archive page whose rel=current link is {facts['l'].get('current')}, "
                        f"not the feed {base_url + start}",
                    )
                if newer != start and rel_of(facts["l"].get("next-archive"), current) != newer:
                    report.error(
                        AREA, current, f"archive page whose next-archive link is not {newer}"
                    )
            newer = current
            current = rel_of(facts["l"].get("prev-archive"), current)
        _report_duplicates(report, docs, chain)
        _report_history(report, docs, chain, expected)
    for rel in sorted(set(docs) - reached):
        if is_archive(rel):
            report.error(AREA, rel, "archive page that no feed's prev-archive chain reaches")


def _report_duplicates(report: Report, docs: Mapping[str, Facts], chain: list[str]) -> None:
    where_seen: dict[str, str] = {}
    twice: list[str] = []
    for rel in chain:
        for entry_id, _link in docs[rel]["e"]:
            if not entry_id:
                continue
            first = where_seen.setdefault(entry_id, rel)
            if first != rel:
                twice.append(f"{entry_id} in {first} and {rel}")
    if twice:
        report.error(AREA, chain[0], "entries appear twice in the feed's history", _first_of(twice))


def _report_history(
    report: Report,
    docs: Mapping[str, Facts],
    chain: list[str],
    expected: Mapping[str, tuple[int, str]],
) -> None:
    start = chain[0]
    folder = posixpath.dirname(start)
    folder = f"{folder}/" if folder else ""
    if folder not in expected:
        return
    wanted, what = expected[folder]
    held = len({entry_id for rel in chain for entry_id, _ in docs[rel]["e"] if entry_id})
    if held >= wanted:
        return
    if len(chain) == 1 and "prev-archive" not in docs[start]["l"]:
        reason = "it has no RFC 5005 archive, so readers cannot reach the rest"
    else:
        reason = "the rest cannot be reached (is the build older than the database?)"
    report.error(
        AREA, start, f"the feed and its archive pages hold {held} of the {wanted} {what}: {reason}"
    )
