"""Importers: JSON / JSON Lines, CSV, a folder of Markdown files with front matter, RSS / Atom.

Every importer reads the whole input into records, which are validated into drafts (an error
names the file and the record or line) and saved in one transaction as they come: an import is
all-or-nothing.
Re-importing the same input updates the posts it created (matched by guid, then slug).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from sqlite_utils import Database

from policyfeed.config import require_public_base_url
from policyfeed.content.posts import draft_from_record, html_to_text, refuse_blanking, slugify
from policyfeed.errors import ConflictError, InputError
from policyfeed.model import PostDraft
from policyfeed.store import posts as post_store
from policyfeed.store import transaction
from policyfeed.store.announced import mark_announced

RECORD_KEYS = {
    "title", "slug", "summary", "body", "body_html", "body_markdown", "format", "author", "url",
    "topics", "tags", "status", "published_at", "date", "updated_at", "updated", "guid", "id",
    "language",
}  # fmt: skip


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    #: Posts found exactly as the import has them: not written at all.
    unchanged: int = 0
    announced: int = 0
    #: The names of the topics the import created, by name.
    new_topics: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "markdown"
    suffix = path.suffix.lower()
    by_suffix = {
        ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".md": "markdown",
        ".markdown": "markdown", ".xml": "feed", ".rss": "feed", ".atom": "feed",
    }  # fmt: skip
    if suffix in by_suffix:
        return by_suffix[suffix]
    head = path.read_bytes()[:512].lstrip()
    if head.startswith(b"<"):
        return "feed"
    if head.startswith(b"["):
        return "json"
    if head.startswith(b"{"):
        return "jsonl" if b"\n{" in path.read_bytes() else "json"
    raise InputError("cannot tell the format; pass --format", source=str(path))


def read_text(path: Path) -> str:
    """File contents as UTF-8 (a BOM is allowed); a bad byte is an error naming its line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            source=str(path),
            where=f"line {line}",
        ) from None


def _check_keys(record: Mapping[str, Any], source: str, where: str) -> None:
    unknown = sorted(set(record) - RECORD_KEYS)
    if unknown:
        raise InputError(
            f"unknown field(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(RECORD_KEYS))})",
            source=source,
            where=where,
        )


def _records_json(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON: {exc.msg}", source=str(path), where=f"line {exc.lineno}"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("posts"), list):
        data = data["posts"]
    if not isinstance(data, list):
        raise InputError('expected a list of posts (or {"posts": [...]})', source=str(path))
    for index, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise InputError("a post must be an object", source=str(path), where=f"record {index}")
        yield f"record {index}", record


def _jsonl_lines(path: Path) -> Iterator[tuple[str, str]]:
    """The records of a JSON Lines file, each with its line, not yet decoded."""
    # Only "\n" ends a record: str.splitlines() would also split inside strings at U+2028 etc.
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if line.strip():
            yield f"line {number}", line


def _decode_jsonl(line: str, source: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg}", source=source, where=where) from None
    if not isinstance(record, dict):
        raise InputError("a post must be an object", source=source, where=where)
    return record


def _records_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), strict=True)
    try:
        header = reader.fieldnames or []
        if "title" not in header:
            raise InputError(
                "the header row has no 'title' column", source=str(path), where="line 1"
            )
        unknown = sorted(set(header) - RECORD_KEYS)
        if unknown:
            raise InputError(
                f"unknown column(s) {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(RECORD_KEYS))})",
                source=str(path),
                where="line 1",
            )
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise InputError(
                f"column(s) {', '.join(map(repr, repeated))} appear more than once",
                source=str(path),
                where="line 1",
            )
        for row in reader:
            where = f"line {reader.line_num}"  # the row's last line (a quoted field may span)
            if None in row:
                raise InputError("more fields than the header has", source=str(path), where=where)
            if any(value is None for value in row.values()):
                raise InputError("fewer fields than the header has", source=str(path), where=where)
            yield where, {k: v for k, v in row.items() if v != ""}
    except csv.Error as exc:
        raise InputError(
            f"malformed CSV: {exc}", source=str(path), where=f"line {reader.reader.line_num}"
        ) from None


def _front_matter_loader(file: Path) -> type:
    """A safe YAML loader whose bad timestamps are an :class:`InputError` naming the line.

    YAML reads ``2012-13-01`` or ``2012-01-01 25:00:00`` as a timestamp and builds the date
    itself, so an impossible one raises a bare ``ValueError`` before policyfeed sees the value.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        try:
            return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
        except ValueError as exc:
            raise InputError(
                f"unparsable date {node.value!r} ({exc})",
                source=str(file),
                where=f"line {node.start_mark.line + 1}",
            ) from None

    Loader.add_constructor("tag:yaml.org,2002:timestamp", timestamp)
    return Loader


def _records_markdown(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    import yaml

    files = sorted(path.glob("*.md")) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise InputError("no .md files in this folder", source=str(path))
    for file in files:
        text = read_text(file)
        meta: dict[str, Any] = {}
        body = text
        if text.startswith("---"):
            end = text.find("\n---", 3)
            if end == -1:
                raise InputError(
                    "front matter is not closed by a '---' line", source=str(file), where="line 1"
                )
            try:
                # A SafeLoader underneath: nothing but plain YAML types is built.
                loaded = yaml.load(text[3:end], Loader=_front_matter_loader(file)) or {}
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f"line {mark.line + 1}" if mark else "front matter"
                raise InputError(
                    f"malformed front matter: {exc}".splitlines()[0], source=str(file), where=where
                ) from None
            if not isinstance(loaded, dict):
                raise InputError(
                    "front matter must be key: value pairs", source=str(file), where="line 1"
                )
            meta = loaded
            body = text[end + 4 :].split("\n", 1)[1] if "\n" in text[end + 4 :] else ""
        if "body_markdown" in meta or "body" in meta:
            raise InputError(
                "the body is the text after the front matter, not a front matter key",
                source=str(file),
                where="front matter",
            )
        record = {**meta, "body_markdown": body}
        record.setdefault("slug", slugify(file.stem))
        yield "front matter", record | {"__source": str(file)}


def check_well_formed(data: bytes, source: str) -> Any:
    """Refuse a document that is not well-formed XML, naming the line and column.

    feedparser reads a truncated or broken feed as far as it can and returns what it found, so
    a feed cut in the middle of an item would import that item half empty. A strict parse
    (entities left unresolved, nothing fetched) decides first.
    """
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        # libxml2 may quote the text it stopped in on further lines: the first one says it all.
        first = (str(exc.msg or exc).splitlines() or ["unreadable"])[0]
        message = re.sub(r", line \d+, column \d+$", "", first)
        raise InputError(
            f"not well-formed XML: {message}; nothing imported",
            source=source,
            where=f"line {line}, column {column}",
        ) from None


def _records_feed(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from read_feed(path.read_bytes(), str(path)).records


@dataclass
class FeedDocument:
    """An RSS or Atom document read for import: its items as records (each with where it is),
    the feed's own link, and the next page's address (RFC 5005 ``rel="next"``), if any."""

    records: list[tuple[str, dict[str, Any]]]
    link: str = ""
    next_page: str = ""


def read_feed(data: bytes, source: str, *, content_type: str = "", url: str = "") -> FeedDocument:
    """The items of an RSS or Atom document as import records.

    The document is refused whole (InputError naming ``source`` and the line and column) unless
    it is well-formed XML with entries; ``posts import`` and ``sources sync`` both read feeds
    here. ``content_type`` is the HTTP header a fetched feed came with (its charset counts);
    ``url`` where it was fetched from (a relative next page is resolved against it).

    Relative links and images in an item are resolved against the item's own link, else the
    feed's link, as feed readers do (Atom's ``xml:base`` is applied first, by feedparser); the
    record's ``__base`` says which.
    """
    import feedparser

    data = _as_declared(data, content_type)
    root = check_well_formed(data, source)
    parsed = feedparser.parse(data)
    if parsed.bozo:  # what the strict parse let through but feedparser did not like
        exc = parsed.get("bozo_exception")
        where = None
        if hasattr(exc, "getLineNumber"):
            where = f"line {exc.getLineNumber()}, column {exc.getColumnNumber() + 1}"
        raise InputError(
            f"not a well-formed feed: {exc}; nothing imported", source=source, where=where
        )
    if not parsed.entries:
        reason = parsed.get("bozo_exception") or "no entries found"
        raise InputError(f"not an RSS or Atom feed with entries ({reason})", source=source)
    feed_link = _absolute_http(parsed.feed.get("link") or "", url)
    next_page = ""
    for link in parsed.feed.get("links", []):
        if link.get("rel") == "next":
            next_page = _absolute_http(link.get("href") or "", url)
    document = FeedDocument([], feed_link, next_page)
    for index, entry in enumerate(parsed.entries, start=1):
        title = entry.get("title", "")
        if entry.get("title_detail", {}).get("type") in ("text/html", "application/xhtml+xml"):
            title = html_to_text(title)
        record: dict[str, Any] = {"title": title}
        link = _absolute_http(entry.get("link") or "", feed_link)
        if link:
            record["url"] = link
            slug = _slug_from_link(link)
            if slug:
                record["slug"] = slug
        elif entry.get("link"):
            record["url"] = entry["link"]  # relative with nothing to resolve it: validation says
        if link or feed_link:
            record["__base"] = link or feed_link
        if entry.get("id"):
            record["guid"] = entry["id"]
        for key, target in (("published_parsed", "published_at"), ("updated_parsed", "updated_at")):
            # dict.get: feedparser's own get() maps a missing updated_parsed to published_parsed.
            parsed_time = dict.get(entry, key)
            raw = str(dict.get(entry, key[: -len("_parsed")]) or "").strip()
            if (not parsed_time and raw) or (parsed_time and _no_such_day(raw)):
                raise _unparsable_date(entry, index, key[: -len("_parsed")], title, root, source)
            if parsed_time:
                y, mo, d, h, mi, sec = parsed_time[:6]
                record[target] = datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
        if "published_at" not in record and "updated_at" in record:
            record["published_at"] = record["updated_at"]
        content = entry.get("content")
        record["body"] = content[0].get("value", "") if content else entry.get("summary", "")
        if content and entry.get("summary"):
            record["summary"] = entry["summary"]
        author = entry.get("author_detail", {}).get("name") or entry.get("author")
        if author:
            record["author"] = author
        record["topics"] = [t.get("term") for t in entry.get("tags", []) if t.get("term")]
        language = _entry_language(entry, parsed.feed)
        if language:
            record["language"] = language
        document.records.append((f"entry {index}", record))
    return document


_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _no_such_day(raw: str) -> bool:
    """Whether an ISO 8601 date names a day that does not exist (2012-02-30), which feedparser
    moves on to one that does (1 March) instead of refusing."""
    found = _ISO_DAY.match(raw)
    if not found:
        return False
    try:
        date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return True
    return False


# The elements feedparser reads an item's published and updated dates from (RSS, Atom 0.3 and
# 1.0, Dublin Core): one of them holds the value it could not read.
_DATE_ELEMENTS = {"pubDate", "published", "issued", "updated", "modified", "date"}


def _unparsable_date(
    entry: Any, index: int, key: str, title: str, root: Any, source: str
) -> InputError:
    """The error for an item whose date feedparser could not read (it would otherwise come in
    undated, as a draft): names the item, the element and line, and the value."""
    value = str(dict.get(entry, key)).strip()
    name = title.strip() or entry.get("id") or entry.get("link") or ""
    item = f"item {name!r}" if name else "the item"
    tag, where = key, f"entry {index}"
    element = _date_element(root, index, value)
    if element is not None:
        local = element.tag.rsplit("}", 1)[-1]
        tag = f"{element.prefix}:{local}" if element.prefix else local
        where += f", line {element.sourceline}"
    return InputError(
        f"{item} has a <{tag}> that is not a date: {value!r}; nothing imported",
        source=source,
        where=where,
    )


def _date_element(root: Any, index: int, value: str) -> Any:
    """The date element holding ``value`` in the ``index``-th item or entry, if it is found."""
    entries = list(root.iter("{*}item", "{*}entry"))  # any namespace, or none (RSS 2.0)
    if index > len(entries):
        return None
    for child in entries[index - 1]:
        if (
            isinstance(child.tag, str)
            and child.tag.rsplit("}", 1)[-1] in _DATE_ELEMENTS
            and (child.text or "").strip() == value
        ):
            return child
    return None


def _entry_language(entry: Any, feed: Any) -> str:
    """The language of a feed item: its content's, summary's or title's ``xml:lang`` (Atom),
    else the feed's ``<language>`` (RSS) or ``xml:lang``. A value that is no language tag is
    left out (a feed's odd metadata does not stop its import)."""
    from policyfeed.model import check_language

    content = entry.get("content") or [{}]
    for value in (
        content[0].get("language"),
        entry.get("summary_detail", {}).get("language"),
        entry.get("title_detail", {}).get("language"),
        feed.get("language"),
    ):
        if value:
            try:
                return check_language(str(value))
            except ValueError:
                continue
    return ""


def _absolute_http(link: str, base: str) -> str:
    """``link`` made absolute against ``base`` when that gives an http(s) URL, else ""."""
    link = link.strip()
    if not link:
        return ""
    absolute = urljoin(base, link) if base else link
    parts = urlsplit(absolute)
    return absolute if parts.scheme in ("http", "https") and parts.netloc else ""


_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*\bencoding\s*=", re.IGNORECASE)


def _as_declared(data: bytes, content_type: str) -> bytes:
    """A fetched document in the charset its HTTP header names, as UTF-8, when the document
    does not say its own (no byte order mark, no encoding in its XML declaration): RFC 7303
    lets the header decide, and the strict XML parser would otherwise read it as UTF-8."""
    match = re.search(r"charset\s*=\s*\"?([A-Za-z0-9._:-]+)", content_type)
    if not match or data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return data
    if _XML_DECLARATION.match(data.lstrip()[:200]):
        return data
    charset = match.group(1).lower()
    if charset in ("utf-8", "utf8", "us-ascii", "ascii"):
        return data
    try:
        return data.decode(charset).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return data  # the strict parse reports what is wrong with it


def _slug_from_link(link: str) -> str:
    """The slug in a post's address (``…/beijing-treaty.html``), or "" when it has none."""
    segment = urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]
    slug = slugify(segment.rsplit(".", 1)[0])
    # "index", "2012" or "25" name no post: the title makes a better slug.
    if slug == "index" or not any(c.isalpha() for c in slug):
        return ""
    return slug


#: The readers of whole records; JSON Lines is read as raw lines (:func:`_jsonl_lines`), which
#: the validating workers decode.
READERS = {
    "json": _records_json,
    "csv": _records_csv,
    "markdown": _records_markdown,
    "feed": _records_feed,
}


# Validating and cleaning is a third of an import's cost; above this many records it runs on the
# other cores while this process saves (each record is independent; errors are still reported
# in input order).
PARALLEL_MIN_RECORDS = 2000
VALIDATION_CHUNK = 250

# source, where, and the record: read, or a line of JSON Lines still to decode (decoding where
# the record is validated, on another core, spares the process that saves the posts a tenth of
# its work and the garbage collector the records held until their turn comes).
_Item = tuple[str, str, dict[str, Any] | str]
_Validated = tuple[str, PostDraft] | str  # (source, draft), or the error that stopped the run


def _validate_chunk(args: tuple[list[_Item], str, tzinfo, bool]) -> list[_Validated]:
    """Drafts for a run of records; stops at the first bad one, whose error it returns."""
    items, base_url, tz, check_keys = args
    results: list[_Validated] = []
    for source, where, item in items:
        try:
            if isinstance(item, str):
                record = _decode_jsonl(item, source, where)
                source = str(record.pop("__source", source))
            else:
                record = item
            # A feed item's relative links mean its own address, not this site's.
            base = record.pop("__base", None) or base_url
            if check_keys:
                _check_keys(record, source, where)
            draft = draft_from_record(
                record, base_url=base, tz=tz, source=source, where=where, site_url=base_url
            )
        except InputError as exc:
            results.append(str(exc))
            break
        results.append((source, draft))
    return results


def _validated(
    items: list[_Item], base_url: str, tz: tzinfo, check_keys: bool
) -> Iterator[_Validated]:
    # The process that saves the posts is the slowest step (the database's own work, the
    # full-text index above all): it keeps a core to itself and the validation, which then
    # finishes long before it, takes the others.
    workers = min((os.cpu_count() or 1) - 1, 3)
    forkable = "fork" in multiprocessing.get_all_start_methods()
    if len(items) < PARALLEL_MIN_RECORDS or workers < 1 or not forkable:
        yield from _validate_chunk((items, base_url, tz, check_keys))
        return
    # Small runs: the first drafts are ready to save after a few milliseconds.
    size = VALIDATION_CHUNK
    jobs = [(items[i : i + size], base_url, tz, check_keys) for i in range(0, len(items), size)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for results in pool.imap(_validate_chunk, jobs):
            yield from results


def iter_drafts(path: Path, fmt: str, *, base_url: str, tz: tzinfo) -> Iterator[PostDraft]:
    """Validated drafts in input order, as they are ready; raises at the first bad record.

    The whole input is read (and must parse) before the last draft is given; a caller that
    saves drafts as they come must do so in a transaction it rolls back on error.
    """
    for _source, _where, draft in located_drafts(path, fmt, base_url=base_url, tz=tz):
        yield draft


def located_drafts(
    path: Path, fmt: str, *, base_url: str, tz: tzinfo
) -> Iterator[tuple[str, str, PostDraft]]:
    """:func:`iter_drafts` with the file and the record or line each draft came from."""
    if not path.exists():
        raise InputError("no such file or folder", source=str(path))
    items: list[_Item] = []
    unreadable: InputError | None = None
    try:
        if fmt == "jsonl":
            items.extend((str(path), where, line) for where, line in _jsonl_lines(path))
        else:
            for where, record in READERS[fmt](path):
                items.append((str(record.pop("__source", path)), where, record))
    except InputError as exc:  # reported after any bad record that comes before it
        unreadable = exc
    seen: dict[str, str] = {}
    seen_guids: dict[str, str] = {}
    for (_, where, _), validated in zip(
        items, _validated(items, base_url, tz, fmt != "feed"), strict=False
    ):
        if isinstance(validated, str):
            raise InputError(validated)
        source, draft = validated
        if draft.slug in seen:
            raise InputError(
                f"duplicate slug {draft.slug!r} (also at {seen[draft.slug]})",
                source=source,
                where=where,
            )
        seen[draft.slug] = where
        if draft.guid:
            if draft.guid in seen_guids:
                raise InputError(
                    f"duplicate guid {draft.guid!r} (also at {seen_guids[draft.guid]})",
                    source=source,
                    where=where,
                )
            seen_guids[draft.guid] = where
        yield source, where, draft
    if unreadable is not None:
        raise unreadable


def import_posts(
    db: Database,
    path: Path,
    *,
    fmt: str | None,
    base_url: str,
    tz: tzinfo,
    domain: str,
    now: datetime,
    allow_blanking: bool = False,
    announced: bool = False,
    language: str = "",
) -> ImportResult:
    """Import every post in ``path`` or none of them; ``language``: of each post whose record
    names none.

    An update that would empty a published post's title, body, topics or author is refused
    (see :func:`posts.refuse_blanking`) unless ``allow_blanking``. ``announced`` marks every
    post of the import that is in no issue as already announced (a move from another system:
    its members had those posts already), so that no digest takes them.
    """
    fmt = fmt or detect_format(path)
    drafts = located_drafts(path, fmt, base_url=base_url, tz=tz)
    result = ImportResult()
    saved_ids: list[int] = []
    checked_base_url = False
    bulk = post_store.BulkSave()
    # All or nothing. Drafts are saved while later ones are still being validated (on the
    # other cores); a bad record anywhere rolls back everything saved before it.
    with transaction(db):
        last_topic = db.execute("SELECT coalesce(max(id), 0) FROM topics").fetchone()[0]
        for source, where, draft in drafts:
            if language and not draft.language:
                draft.language = language
            post_id = post_store.find_post_id(db, slug=draft.slug, guid=draft.guid, bulk=bulk)
            if draft.status == "published" and not checked_base_url:
                require_public_base_url(base_url, "import published posts")
                checked_base_url = True
            if post_id is not None and not allow_blanking:
                for current in post_store.get_posts_by_ids(db, [post_id]):
                    refuse_blanking(current, draft, source=source, where=where)
            try:
                saved = post_store.save_post(
                    db, draft, now=now, domain=domain, post_id=post_id, bulk=bulk, looked_up=True
                )
            except ConflictError as exc:
                raise InputError(str(exc), source=str(path), where=f"post {draft.slug!r}") from None
            if post_id is None:
                result.created += 1
            elif bulk.unchanged > result.unchanged:
                result.unchanged += 1
            else:
                result.updated += 1
            if announced:
                saved_ids.append(saved)
        result.new_topics = [
            str(row[0])
            for row in db.execute(
                "SELECT name FROM topics WHERE id > ? ORDER BY name", [last_topic]
            ).fetchall()
        ]
        if saved_ids:
            reason = f"imported with --announced from {path.name}"
            result.announced = mark_announced(db, saved_ids, now=now, reason=reason)
    return result
