"""Helpers shared by the feed, site and serve tests."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import sqlite_utils

from policyfeed.config import Settings
from policyfeed.content.posts import draft_from_record
from policyfeed.store import posts as post_store

NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)
FEED_NAMES = ("feed.xml", "atom.xml", "feed.json")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def with_limit(settings: Settings, limit: int, **changes: Any) -> Settings:
    return dataclasses.replace(settings, feed_limit=limit, **changes)


def save(
    db: sqlite_utils.Database,
    settings: Settings,
    slug: str,
    *,
    date: datetime | None = None,
    now: datetime = NOW,
    post_id: int | None = None,
    **fields: Any,
) -> int:
    """Save (or update) a post the way the app does: validated and cleaned on the way in."""
    record: dict[str, Any] = {"title": f"Post {slug}", "slug": slug, "status": "published"}
    record.update(fields)
    if date is not None:
        record["published_at"] = date
    draft = draft_from_record(
        record, base_url=settings.base_url, tz=settings.tz, source="test", where=slug
    )
    if post_id is None:
        post_id = post_store.find_post_id(db, slug=slug)
    with db.conn:
        return post_store.save_post(db, draft, now=now, domain=settings.domain, post_id=post_id)


def day(n: int, hour: int = 9) -> datetime:
    """A date in July 2012 (n may run past 31: it counts days from 1 July)."""
    return datetime(2012, 7, 1, hour, tzinfo=UTC) + timedelta(days=n - 1)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file of a built site (the build state aside), by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.relative_to(folder).as_posix().startswith(".policyfeed/")
    }


def mtimes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file()
    }


def parse_feed(data: bytes) -> Any:
    """Parse an RSS or Atom document with feedparser and insist it is well-formed."""
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def check_xml_feed(data: bytes, expected_count: int | None = None) -> list[str]:
    """The checks every RSS/Atom document passes; returns its entry ids in order."""
    parsed = parse_feed(data)
    ids = [entry.id for entry in parsed.entries]
    assert len(ids) == len(set(ids)), "duplicate ids"
    if expected_count is not None:
        assert len(ids) == expected_count
    for entry in parsed.entries:
        assert entry.link.startswith(("http://", "https://")), entry.link
        assert entry.get("title"), entry
        for field in ("published", "updated"):
            if field in entry:
                assert re.search(r"(Z|[+-]\d\d:?\d\d|GMT)$", entry[field]), entry[field]
        assert "published" in entry
    return ids


def check_json_feed(data: bytes, expected_count: int | None = None) -> list[str]:
    """JSON Feed 1.1 rules (https://jsonfeed.org/version/1.1); returns the item ids in order."""
    assert data.endswith(b"\n")
    feed = json.loads(data)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(feed["title"], str) and feed["title"]
    assert isinstance(feed["items"], list)
    for key in ("home_page_url", "feed_url", "next_url", "icon", "favicon"):
        if key in feed:
            assert feed[key].startswith(("http://", "https://")), key
    for author in feed.get("authors", []):
        assert set(author) <= {"name", "url", "avatar"} and author
    for hub in feed.get("hubs", []):
        assert set(hub) == {"type", "url"}
    ids = []
    for item in feed["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert ("content_html" in item) or ("content_text" in item)
        assert all(isinstance(item[k], str) for k in ("content_html", "title", "url") if k in item)
        assert item["url"].startswith(("http://", "https://"))
        for key in ("date_published", "date_modified"):
            if key in item:
                assert RFC3339.match(item[key]), item[key]
        if "tags" in item:
            assert all(isinstance(t, str) for t in item["tags"])
        ids.append(item["id"])
    assert len(ids) == len(set(ids)), "duplicate ids"
    if expected_count is not None:
        assert len(ids) == expected_count
    return ids


def check_feed_folder(folder: Path, expected_count: int | None = None) -> list[str]:
    """The three documents of a feed folder agree: same ids, same order; returns them."""
    rss = check_xml_feed((folder / "feed.xml").read_bytes(), expected_count)
    atom = check_xml_feed((folder / "atom.xml").read_bytes(), expected_count)
    items = check_json_feed((folder / "feed.json").read_bytes(), expected_count)
    assert rss == atom == items
    return rss
