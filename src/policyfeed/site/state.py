"""What the last build left in the output folder, and what has changed since: the plan of a
build that renders only what changed.

Feed order is the key ``(published_at, id)``, oldest first. The newest ``limit`` visible posts
form the current feeds; all older ones are cut, from the oldest, into RFC 5005 archive pages of
``limit`` entries. The site's feed has such a history, and so has each topic's feed (its own
posts in the same order), planned by the same code (:func:`plan_history`). The newest page may
be full (the archive is an exact multiple of ``limit``; no empty page is ever written, since
some readers refuse a feed without entries). A page that has a newer page never changes again,
unless one of its own posts is edited, removed or backdated; the newest one changes once more,
when a newer page appears and it gains its ``next-archive`` link.

The database keeps a journal of every change to a post (``post_journal``, with the slug, status
and date the post had before). The state (kept in the database, per output folder: see
:mod:`policyfeed.store.build_state`) records the journal position and, for the site's feed and
each topic's, the layout of its archive pages and the members of its current feed. A build then
reads only the journal since that position, the posts it names, and the tail of each feed those
changes can touch, from the first page they can touch, so a new post costs the same on a
hundred posts or on a hundred thousand. A topic is touched by a change to a post that is in it
now, that was in its current feed, or whose old place lies within its archive pages (the
journal does not say which topics a post had; that range stands for them, at worst rendering a
page whose bytes do not change). Without a usable state (first build, other settings or
templates, another database, an output folder emptied since) the build is full; files whose
bytes did not change are still left untouched.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from policyfeed.model import Topic
from policyfeed.output import is_marked
from policyfeed.site.ownership import folder_key
from policyfeed.store import build_state
from policyfeed.store.site import (
    Key,
    all_topic_ids,
    journal_head,
    journal_post_at,
    journal_since,
    post_states,
    topic_keys_from,
    topics_of_posts,
    visibility_window,
    visible_keys_from,
)
from policyfeed.store.site import changed_visibility as _changed_visibility

STATE_VERSION = 3
STATE_NAME = "site"
#: The mark a build sets in the output before it changes the site (output.BatchWriter.mark).
SITE_PART = "site"
#: A file every build writes: when it is gone, so is the site the state describes.
SENTINEL = "index.html"

#: Reads the keys of a feed's posts from a key (inclusive; None: from the oldest) to the newest.
KeysFrom = Callable[[Key | None], list[Key]]


@dataclass(frozen=True)
class PageSignature:
    """An archive page as laid out: its first and last key and how many entries it holds."""

    first: Key | None
    last: Key | None
    count: int


@dataclass
class FeedHistory:
    """One feed as a build left it: how many posts it has in all, the signatures of its archive
    pages (oldest first) and the ids in its current document (newest first)."""

    count: int = 0
    pages: list[PageSignature] = field(default_factory=list)
    current: list[int] = field(default_factory=list)

    def spans(self, key: Key) -> bool:
        """Whether ``key`` lies from the first archived post to the last."""
        if not self.pages or self.pages[0].first is None or self.pages[-1].last is None:
            return False
        return self.pages[0].first <= key <= self.pages[-1].last

    def to_json(self) -> list[Any]:
        return [
            self.count,
            [
                [list(p.first) if p.first else None, list(p.last) if p.last else None, p.count]
                for p in self.pages
            ],
            self.current,
        ]

    @classmethod
    def from_json(cls, data: Any) -> FeedHistory:
        def key(value: Any) -> Key | None:
            return (str(value[0]), int(value[1])) if value else None

        count, pages, current = data
        return cls(
            count=int(count),
            pages=[PageSignature(key(a), key(b), int(n)) for a, b, n in pages],
            current=[int(i) for i in current],
        )


@dataclass
class SiteState:
    """What a finished build wrote into an output folder, saved for the next build."""

    context: str
    journal_seq: int
    journal_post: int | None
    window: tuple[str | None, str | None]
    site: FeedHistory
    topics: dict[str, FeedHistory] = field(default_factory=dict)
    #: The redirect pages written (old slug → the slug they point at).
    redirects: dict[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """How many posts the site shows."""
        return self.site.count

    def to_bytes(self) -> bytes:
        data = {
            "version": STATE_VERSION,
            "context": self.context,
            "journal": [self.journal_seq, self.journal_post],
            "window": list(self.window),
            "site": self.site.to_json(),
            "topics": {slug: self.topics[slug].to_json() for slug in sorted(self.topics)},
            "redirects": {slug: self.redirects[slug] for slug in sorted(self.redirects)},
        }
        return (json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> SiteState | None:
        """The saved state, or None when it is unreadable or from another version."""
        try:
            data: dict[str, Any] = json.loads(raw)
            if data.get("version") != STATE_VERSION:
                return None
            return cls(
                context=str(data["context"]),
                journal_seq=int(data["journal"][0]),
                journal_post=data["journal"][1],
                window=(data["window"][0], data["window"][1]),
                site=FeedHistory.from_json(data["site"]),
                topics={str(k): FeedHistory.from_json(v) for k, v in data["topics"].items()},
                redirects={str(k): str(v) for k, v in data["redirects"].items()},
            )
        except (ValueError, KeyError, TypeError, IndexError):
            return None


def load_state(db: Database, out_dir: Path, context: str, head: int) -> SiteState | None:
    """The last build's state if it can be trusted for an incremental build, else None."""
    raw = build_state.read(db, folder_key(out_dir), STATE_NAME)
    if raw is None or not (out_dir / SENTINEL).is_file():
        return None
    if is_marked(out_dir, SITE_PART):  # the last build was killed while changing the site
        return None
    state = SiteState.from_bytes(raw)
    if state is None or state.context != context or state.journal_seq > head:
        return None
    if state.journal_seq and journal_post_at(db, state.journal_seq) != state.journal_post:
        return None  # another database, or one rebuilt since
    return state


def save_state(db: Database, out_dir: Path, state: SiteState) -> bool:
    return build_state.write(db, folder_key(out_dir), STATE_NAME, state.to_bytes())


@dataclass(frozen=True)
class ArchivePage:
    """One archive page to render: its number (1 = oldest), its keys (oldest first), and
    whether it is the newest page (which has no next-archive link)."""

    number: int
    keys: list[Key]
    is_last: bool


@dataclass
class HistoryPlan:
    """What one feed needs: ``changed`` when its current document must be rendered again (then
    ``current`` holds its keys, newest first), the archive pages to render and the page numbers
    to remove; ``history`` is what the feed will be."""

    changed: bool
    pages: list[ArchivePage]
    removed_pages: list[int]
    current: list[Key]
    history: FeedHistory
    keys: list[Key] = field(default_factory=list)  # every key read (all of them when full)


@dataclass
class TopicPlan:
    """A topic's feed to render again, or (``topic`` None, or nothing left to show) to remove
    with the ``old_pages`` archive pages it had."""

    slug: str
    topic: Topic | None
    history: HistoryPlan | None
    old_pages: int = 0

    @property
    def gone(self) -> bool:
        return self.topic is None or self.history is None or not self.history.history.count


@dataclass
class BuildPlan:
    """What a build must render and remove, and the state it leaves."""

    full: bool
    post_ids: set[int]  # visible posts whose page must be rendered
    gone_slugs: set[str]  # post pages to remove
    site: HistoryPlan  # the site's feed and its archive pages
    topics: list[TopicPlan]  # the topics to render again or to remove, by slug
    state: SiteState

    @property
    def pages(self) -> list[ArchivePage]:
        return self.site.pages

    @property
    def nothing_to_do(self) -> bool:
        return not (
            self.full
            or self.post_ids
            or self.gone_slugs
            or self.site.changed
            or self.site.pages
            or self.site.removed_pages
            or self.topics
        )


def page_count(archived: int, limit: int) -> int:
    """How many archive pages ``archived`` posts fill (never an empty one)."""
    if archived <= 0:
        return 0
    return -(-archived // limit)


def plan_history(
    old: FeedHistory | None, moved: Sequence[Key], keys_from: KeysFrom, *, limit: int
) -> HistoryPlan:
    """The plan of one feed (the site's or a topic's): ``old`` is what the last build left (None:
    render it all), ``moved`` the keys where its posts entered, left, changed or moved."""
    full = old is None
    old_pages = old.pages if old is not None else []
    if full:
        first_kept, tail = 0, keys_from(None)
    elif moved:
        first_kept, tail = _tail_from(keys_from, old_pages, min(moved), limit=limit)
        # The page that ends up the newest is always rendered (it loses its next-archive link):
        # when the archive shrank back into the kept pages, start the tail at that page.
        total = page_count(max(0, first_kept * limit + len(tail) - limit), limit)
        if 0 < total <= first_kept:
            first_kept = total - 1
            tail = keys_from(old_pages[first_kept].first)
    else:
        assert old is not None
        return HistoryPlan(False, [], [], [], old)

    count = first_kept * limit + len(tail)
    archived = max(0, count - limit)
    pages_total = page_count(archived, limit)
    new_pages = list(old_pages[:first_kept])
    page_keys: list[list[Key]] = []
    for number in range(first_kept, pages_total):
        lo, hi = number * limit - first_kept * limit, min((number + 1) * limit, archived)
        keys = tail[lo : hi - first_kept * limit] if hi > number * limit else []
        page_keys.append(keys)
        new_pages.append(
            PageSignature(keys[0] if keys else None, keys[-1] if keys else None, len(keys))
        )
    current_keys = list(reversed(tail[archived - first_kept * limit :]))

    starts = [p.first for p in new_pages if p.first is not None]
    oldest_current = current_keys[-1] if current_keys else None
    hit = {
        bisect_right(starts, key) - 1
        for key in moved
        if starts and starts[0] <= key and (oldest_current is None or key < oldest_current)
    }
    to_render: list[ArchivePage] = []
    for offset, keys in enumerate(page_keys):
        number = first_kept + offset
        is_last = number == pages_total - 1
        was_last = number == len(old_pages) - 1
        previous = old_pages[number] if number < len(old_pages) else None
        if full or previous != new_pages[number] or is_last != was_last or number in hit:
            to_render.append(ArchivePage(number + 1, keys, is_last))
    return HistoryPlan(
        changed=True,
        pages=to_render,
        removed_pages=list(range(pages_total + 1, len(old_pages) + 1)),
        current=current_keys,
        history=FeedHistory(count, new_pages, [key[1] for key in current_keys]),
        keys=tail,
    )


def plan_build(
    db: Database,
    *,
    state: SiteState | None,
    now: datetime,
    limit: int,
    context: str,
) -> BuildPlan:
    """Compare the database with ``state`` (None: full build) and decide what to render."""
    head = journal_head(db)
    full = state is None
    dirty: set[int] = set()
    old_slugs: set[str] = set()
    # Keys where posts entered, left or changed in feed order, by post.
    moved: dict[int, list[Key]] = {}
    if state is not None:
        for row in journal_since(db, state.journal_seq, head):
            dirty.add(row.post_id)
            if row.old_slug:
                old_slugs.add(row.old_slug)
            if row.old_status == "published" and row.old_published_at:
                moved.setdefault(row.post_id, []).append((row.old_published_at, row.post_id))
        # Posts the clock showed or hid: their place in feed order changes with no journal row.
        clocked = _visibility_moved(db, state.window, now)
        dirty.update(clocked)
    else:
        clocked = []
    states = post_states(db, sorted(dirty))
    visible_dirty = {pid for pid, post in states.items() if post.visible(now)}
    for pid in visible_dirty.union(clocked):
        key = states[pid].key if pid in states else None
        if key is not None:
            moved.setdefault(pid, []).append(key)
    gone_slugs = (old_slugs | {p.slug for p in states.values() if not p.visible(now)}) - {
        states[pid].slug for pid in visible_dirty
    }

    site = plan_history(
        state.site if state is not None else None,
        [key for keys in moved.values() for key in keys],
        lambda start: visible_keys_from(db, now=now, start=start),
        limit=limit,
    )
    topics, topic_histories = _plan_topics(db, state, dirty, moved, now=now, limit=limit)
    new_state = SiteState(
        context=context,
        journal_seq=head,
        journal_post=journal_post_at(db, head) if head else None,
        window=visibility_window(db, now=now),
        site=site.history,
        topics=topic_histories,
        redirects=dict(state.redirects) if state is not None else {},
    )
    return BuildPlan(
        full=full,
        post_ids=set(key[1] for key in site.keys) if full else visible_dirty,
        gone_slugs=gone_slugs,
        site=site,
        topics=topics,
        state=new_state,
    )


def _plan_topics(
    db: Database,
    state: SiteState | None,
    dirty: set[int],
    moved: dict[int, list[Key]],
    *,
    now: datetime,
    limit: int,
) -> tuple[list[TopicPlan], dict[str, FeedHistory]]:
    """The topics the changes touch (every topic when ``state`` is None), and the histories of
    all topics after the build."""
    ids = all_topic_ids(db)
    old = state.topics if state is not None else {}
    touched: dict[str, set[Key]] = {}
    if state is None:
        touched = {slug: set() for slug in ids}
    elif dirty:
        for pid, slugs in topics_of_posts(db, sorted(dirty)).items():
            for slug in slugs:
                touched.setdefault(slug, set()).update(moved.get(pid, ()))
        for slug, history in old.items():
            current = set(history.current)
            for pid, keys in moved.items():
                if pid in current or any(history.spans(key) for key in keys):
                    touched.setdefault(slug, set()).update(keys)
    histories = {slug: history for slug, history in old.items() if slug not in touched}
    plans = []
    for slug in sorted(touched):
        if slug not in ids:
            if slug in old:
                plans.append(TopicPlan(slug, None, None, len(old[slug].pages)))
            continue
        topic_id, topic = ids[slug]
        plan = plan_history(
            old.get(slug), sorted(touched[slug]), _topic_keys(db, topic_id, now), limit=limit
        )
        if plan.history.count:
            histories[slug] = plan.history
        if plan.changed:
            previous = len(old[slug].pages) if slug in old else 0
            plans.append(TopicPlan(slug, topic, plan, previous))
    return plans, histories


def _topic_keys(db: Database, topic_id: int, now: datetime) -> KeysFrom:
    def keys_from(start: Key | None) -> list[Key]:
        return topic_keys_from(db, topic_id, now=now, start=start)

    return keys_from


def _visibility_moved(
    db: Database, window: tuple[str | None, str | None], now: datetime
) -> list[int]:
    """Posts whose visibility changed because ``now`` left the window of the last build."""
    from policyfeed.store import to_db_time

    stamp = to_db_time(now)
    newest, upcoming = window
    moved: list[int] = []
    if upcoming is not None and stamp >= upcoming:
        moved += _changed_visibility(db, after=_before(upcoming), until=stamp)
    if newest is not None and stamp < newest:
        moved += _changed_visibility(db, after=stamp, until=newest)
    return moved


def _before(stamp: str) -> str:
    """A stored time just before ``stamp`` (stored times have whole seconds)."""
    from datetime import timedelta

    from policyfeed.store import from_db_time, to_db_time

    return to_db_time(from_db_time(stamp) - timedelta(seconds=1))


def _tail_from(
    keys_from: KeysFrom, old_pages: list[PageSignature], first_change: Key, *, limit: int
) -> tuple[int, list[Key]]:
    """Keys from the last page that starts before ``first_change`` to the newest.

    Pages before that one hold only keys older than every change, so they keep their place.
    Returns the number of pages kept and the keys from there on.
    """
    starts = [p.first for p in old_pages if p.first is not None]
    kept = bisect_left(starts, first_change) - 1
    if kept <= 0:
        return 0, keys_from(None)
    tail = keys_from(starts[kept])
    count = kept * limit + len(tail)
    if max(0, count - limit) < kept * limit:  # the archive shrank below the kept pages
        return 0, keys_from(None)
    return kept, tail
