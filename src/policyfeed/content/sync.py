"""``sources sync``: copy the posts of other blogs' feeds (the ``[[sources]]`` of the config).

Each source is fetched (:mod:`policyfeed.content.fetch`: conditional GET, limits), read by the
same strict path as ``posts import`` (:func:`policyfeed.content.importers.read_feed`: a
malformed or truncated feed is refused whole), and saved in one transaction per source, with the
source's new validators: a source is synced whole or not at all, and a failing one never stops
the others.

- An item is matched by the source's guid for it, else its link (``source_items``); an item
  seen for the first time may also be a post imported before (same guid, else same url).
- New items become published posts; items changed upstream update their post (unless the
  update would empty what the post shows, see :func:`policyfeed.content.posts.refuse_blanking`);
  items unchanged upstream are not written at all (an editor's local change stays); items gone
  from the feed are left alone (a feed shows only its latest posts).
- A synced post keeps its original address as its url (its "Read it online" is the CMS's page)
  and the source's guid as its permanent id when that is an absolute URI (else it gets this
  site's ``tag:`` id, as any post does).
- The first sync of a source marks what it finds as already announced (the digest never takes
  the back catalogue), unless ``announce_existing``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from policyfeed import __version__
from policyfeed.config import Settings, Source, require_public_base_url
from policyfeed.content.fetch import Fetched, FetchError, fetch
from policyfeed.content.importers import FeedDocument, read_feed
from policyfeed.content.posts import draft_from_record, refuse_blanking, slugify
from policyfeed.errors import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_TEMPFAIL,
    ConflictError,
    InputError,
    UsageError,
)
from policyfeed.model import Post, PostDraft
from policyfeed.store import posts as post_store
from policyfeed.store import sources as store
from policyfeed.store import transaction
from policyfeed.store.announced import mark_announced

log = logging.getLogger(__name__)

Fetcher = Callable[..., Fetched]
#: Pages of a feed one sync reads at most (when more was published than one page shows).
MAX_PAGES = 5


@dataclass
class SourceReport:
    """What syncing one source did. ``status``: ``synced``, ``not_modified`` or ``failed``."""

    name: str
    status: str
    url: str = ""
    items: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    announced: int = 0
    error: str = ""
    temporary: bool = False
    moved_to: str = ""
    #: The names of the topics this sync created (its items' categories), by name.
    new_topics: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for a terminal or a log."""
        if self.status == "failed":
            kind = "temporary failure" if self.temporary else "error"
            return f"{self.name}: {kind}: {self.error}"
        if self.status == "not_modified":
            text = f"{self.name}: not modified since the last sync"
        else:
            items = f"{self.items} item{'' if self.items == 1 else 's'}"
            text = (
                f"{self.name}: {items}: {self.created} new, {self.updated} updated, "
                f"{self.unchanged} unchanged"
            )
            if self.announced:
                text += f" ({self.announced} marked as already announced: first sync)"
            if self.new_topics:
                count = len(self.new_topics)
                text += f"; {count} new topic{'' if count == 1 else 's'}: "
                text += ", ".join(self.new_topics)
        if self.moved_to:
            text += f"; it moved permanently to {self.moved_to}: update its url"
        return text

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SyncResult:
    reports: list[SourceReport] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceReport]:
        return [r for r in self.reports if r.status == "failed"]

    @property
    def created(self) -> int:
        return sum(r.created for r in self.reports)

    @property
    def exit_code(self) -> int:
        """0 when every source synced; 75 when only temporary failures happened (a scheduler
        retries); 1 when a source is broken (a person must look)."""
        failed = self.failed
        if not failed:
            return EXIT_OK
        return EXIT_TEMPFAIL if all(r.temporary for r in failed) else EXIT_ERROR


def user_agent(settings: Settings) -> str:
    return f"policyfeed/{__version__} (+{settings.base_url})"


def select_sources(settings: Settings, names: Sequence[str]) -> list[Source]:
    """The configured sources named (all of them for none); an unknown name is a usage error."""
    configured = {source.name: source for source in settings.sources}
    if not names:
        return list(settings.sources)
    for name in names:
        if name not in configured:
            known = ", ".join(configured) or "none: add [[sources]] to the config"
            raise UsageError(f"no source named {name!r} (configured: {known})")
    return [configured[name] for name in dict.fromkeys(names)]


def sync_sources(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    names: Sequence[str] = (),
    announce_existing: bool = False,
    allow_blanking: bool = False,
    fetcher: Fetcher = fetch,
) -> SyncResult:
    """Sync the configured sources (or those ``names``); see the module doc. Refused while
    site.base_url is a loopback or placeholder address (the posts would get ids on it)."""
    chosen = select_sources(settings, names)
    if chosen:
        require_public_base_url(settings.base_url, "sync posts from a feed")
    result = SyncResult()
    for source in chosen:
        report = _sync_one(
            db,
            settings,
            source,
            now=now,
            announce_existing=announce_existing,
            allow_blanking=allow_blanking,
            fetcher=fetcher,
        )
        log.info("%s", report.line())
        result.reports.append(report)
    return result


def source_fingerprint(source: Source) -> str:
    """A hash of a source's settings: when they change, the next sync refetches in full (a
    304 would hide the items from a new topic mapping or author)."""
    text = json.dumps(source.__dict__, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sync_one(
    db: Database,
    settings: Settings,
    source: Source,
    *,
    now: datetime,
    announce_existing: bool,
    allow_blanking: bool,
    fetcher: Fetcher,
) -> SourceReport:
    state = store.source_state(db, source.name)
    config = source_fingerprint(source)
    same = state is not None and state.config == config
    try:
        fetched = fetcher(
            source.url,
            etag=state.etag if same and state else "",
            last_modified=state.last_modified if same and state else "",
            timeout=source.timeout,
            max_bytes=source.max_bytes,
            user_agent=user_agent(settings),
        )
    except FetchError as exc:
        return _failed(db, source, now, f"{source.url}: {exc}", temporary=exc.temporary)
    first = state is None or state.first_synced_at is None
    report = SourceReport(source.name, "synced", url=fetched.url, moved_to=fetched.moved_to)
    try:
        pages = (
            [] if fetched.not_modified else _pages(db, settings, source, fetched, first, fetcher)
        )
    except FetchError as exc:
        return _failed(db, source, now, _refused(exc), temporary=exc.temporary)
    except InputError as exc:
        return _failed(db, source, now, _refused(exc), temporary=False)
    try:
        with transaction(db):
            if fetched.not_modified:
                report.status = "not_modified"
            else:
                drafts = _drafts(source, pages, settings)
                report.items = len(drafts)
                created = _save(
                    db, settings, source, drafts, report, now=now, allow_blanking=allow_blanking
                )
                if first and not announce_existing:
                    reason = f"first sync of source {source.name!r}"
                    report.announced = mark_announced(db, created, now=now, reason=reason)
            store.record_success(
                db,
                source.name,
                now=now,
                url=fetched.url,
                config=config,
                etag=fetched.etag,
                last_modified=fetched.last_modified,
                feed_items=None if fetched.not_modified else report.items,
                created=report.created,
                updated=report.updated,
                moved_to=fetched.moved_to,
            )
    except (InputError, ConflictError) as exc:
        return _failed(db, source, now, _refused(exc), temporary=False)
    return report


def _refused(exc: Exception) -> str:
    """The error that stopped a source, saying that none of it was saved."""
    text = str(exc)
    return text if text.endswith("nothing imported") else f"{text}; nothing of it synced"


def _pages(
    db: Database,
    settings: Settings,
    source: Source,
    fetched: Fetched,
    first: bool,
    fetcher: Fetcher,
) -> list[tuple[str, FeedDocument]]:
    """The feed's first page, and the pages after it (RFC 5005 ``rel="next"``) while every item
    of a page is new: more was published since the last sync than one page shows. Not on a
    first sync (what it finds is the back catalogue), and at most :data:`MAX_PAGES` pages."""
    page = read_feed(fetched.data, fetched.url, content_type=fetched.content_type, url=fetched.url)
    pages = [(fetched.url, page)]
    seen = {fetched.url}
    while not first and page.next_page and page.next_page not in seen and len(pages) < MAX_PAGES:
        if any(_known(db, source, record) for _, record in page.records):
            break
        try:
            more = fetch_page(source, settings, page.next_page, fetcher)
        except FetchError as exc:
            raise FetchError(f"{page.next_page}: {exc}", temporary=exc.temporary) from None
        seen.add(page.next_page)
        page = read_feed(more.data, more.url, content_type=more.content_type, url=more.url)
        pages.append((more.url, page))
    return pages


def _known(db: Database, source: Source, record: dict[str, Any]) -> bool:
    key = str(record.get("guid") or "").strip() or str(record.get("url") or "").strip()
    return bool(key) and store.item_post(db, source.name, key) is not None


def _failed(
    db: Database, source: Source, now: datetime, error: str, *, temporary: bool
) -> SourceReport:
    with transaction(db):
        store.record_failure(db, source.name, now=now, error=error, temporary=temporary)
    return SourceReport(source.name, "failed", url=source.url, error=error, temporary=temporary)


@dataclass
class _Item:
    where: str
    key: str
    source_guid: str
    draft: PostDraft
    digest: str


def _topics(categories: Sequence[str], source: Source) -> list[str]:
    """The item's categories through the source's topic mapping, then its add_topics."""
    mapping = {slugify(name) or name: topic for name, topic in source.topics}
    topics: list[str] = []
    for category in categories:
        key = slugify(category) or category
        if key in mapping:
            if mapping[key]:
                topics.append(mapping[key])
        elif source.unmapped_topics == "keep":
            topics.append(category)
    return topics + list(source.add_topics)


def _drafts(
    source: Source, pages: Sequence[tuple[str, FeedDocument]], settings: Settings
) -> list[_Item]:
    """Every item of the pages, validated and mapped; the first bad one refuses the feed. An
    item a later page shows again (the feed moved on between two fetches) is taken once."""
    items: list[_Item] = []
    for number, (url, page) in enumerate(pages):
        keys: dict[str, str] = {}
        taken = {item.key for item in items}
        for where, record in page.records:
            base = record.pop("__base", None) or url
            source_guid = str(record.pop("guid", "") or "").strip()
            link = str(record.get("url") or "").strip()
            key = source_guid or link
            if not key:
                raise InputError(
                    "an item with neither a guid nor a link cannot be told apart from the "
                    "others on the next sync",
                    source=url,
                    where=where,
                )
            if key in keys:
                raise InputError(
                    f"the guid {key!r} is also the guid of {keys[key]}", source=url, where=where
                )
            keys[key] = where
            if number and key in taken:
                continue
            record["topics"] = _topics(record.get("topics") or [], source)
            if not record.get("author") and source.author:
                record["author"] = source.author
            if source_guid:
                # A URI is the post's id (readers that follow both feeds see one post); any
                # other guid is kept aside by the store, and the post gets this site's tag: id.
                record["guid"] = source_guid
            draft = draft_from_record(
                record,
                base_url=base,
                tz=settings.tz,
                source=url,
                where=where,
                site_url=settings.base_url,
            )
            items.append(_Item(where, key, source_guid, draft, _digest(draft)))
    return items


def fetch_page(source: Source, settings: Settings, url: str, fetcher: Fetcher = fetch) -> Fetched:
    """A further page of a source's feed (never conditional: its validators are not kept)."""
    return fetcher(
        url, timeout=source.timeout, max_bytes=source.max_bytes, user_agent=user_agent(settings)
    )


def _digest(draft: PostDraft) -> str:
    values = {
        "title": draft.title,
        "slug": draft.slug,
        "summary": draft.summary,
        "body": draft.body_html,
        "author": draft.author,
        "url": draft.url,
        "published": draft.published_at.isoformat() if draft.published_at else None,
        "updated": draft.updated_at.isoformat() if draft.updated_at else None,
        "guid": draft.guid,
        "topics": [t.name for t in draft.topics],
    }
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def _differs(current: Post, draft: PostDraft) -> bool:
    """Whether saving ``draft`` would change what post ``current`` shows."""
    return (
        (current.title, current.summary, current.body_html, current.author, current.url)
        != (draft.title, draft.summary, draft.body_html, draft.author, draft.url)
        or sorted(t.name for t in current.topics) != sorted(t.name for t in draft.topics)
        or (draft.published_at is not None and draft.published_at != current.published_at)
    )


def _free_slug(db: Database, slug: str, taken: set[str]) -> str:
    """``slug``, or ``slug-2``, ``slug-3``… when another post has it already."""
    candidate, number = slug, 1
    while candidate in taken or store.slug_taken(db, candidate):
        number += 1
        suffix = f"-{number}"
        candidate = slug[: 100 - len(suffix)].rstrip("-") + suffix
    return candidate


def _save(
    db: Database,
    settings: Settings,
    source: Source,
    items: list[_Item],
    report: SourceReport,
    *,
    now: datetime,
    allow_blanking: bool,
) -> list[int]:
    """Save the items (inside the caller's transaction); returns the ids of the posts created."""
    created: list[int] = []
    new_slugs: set[str] = set()
    last_topic = db.execute("SELECT coalesce(max(id), 0) FROM topics").fetchone()[0]
    for item in items:
        known = store.item_post(db, source.name, item.key)
        if known is not None and (known[1] == item.digest or known[0] is None):
            # Unchanged upstream, or its post was removed here: removed posts stay removed.
            report.unchanged += 1
            continue
        post_id = known[0] if known else None
        if post_id is None:
            post_id = store.post_by_guid_or_url(db, guid=item.source_guid, url=item.draft.url or "")
        if post_id is None:
            slug = _free_slug(db, item.draft.slug, new_slugs)
            new_slugs.add(slug)
            draft = replace(item.draft, slug=slug, status="published")
            post_id = post_store.save_post(db, draft, now=now, domain=settings.domain)
            created.append(post_id)
            report.created += 1
        else:
            current = post_store.get_posts_by_ids(db, [post_id])[0]
            # The post keeps its slug (its page's address) and its status (an editor may have
            # taken it down); the rest follows the source.
            draft = replace(item.draft, slug=current.slug, status=None)
            if not _differs(current, draft):  # e.g. imported before, as it is
                report.unchanged += 1
                store.record_item(db, source.name, item.key, post_id, item.digest)
                continue
            if not allow_blanking:
                refuse_blanking(
                    current, draft, source=item.draft.url or source.url, where=item.where
                )
            post_store.save_post(db, draft, now=now, domain=settings.domain, post_id=post_id)
            report.updated += 1
        store.record_item(db, source.name, item.key, post_id, item.digest)
    report.new_topics = [
        str(row[0])
        for row in db.execute(
            "SELECT name FROM topics WHERE id > ? ORDER BY name", [last_topic]
        ).fetchall()
    ]
    return created
