"""Dates in feeds: an empty feed is dated by the site's last change (a 1970 date made a common
parser refuse the issue feeds before the first issue), no empty archive page is written, and no
date passes the build's ``now`` (a post updated "in 2099" dated the whole feed there)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import sqlite_utils
from lxml import etree

from policyfeed.config import Settings
from policyfeed.site.build import build_site
from site_support import NOW, check_feed_folder, day, save, with_limit

FEED_FOLDERS = ("", "issues/")


def feed_dates(out: Path) -> list[datetime]:
    """Every date in every feed and OPML document under ``out``."""
    dates: list[datetime] = []
    for path in sorted(out.rglob("*")):
        if path.name in ("feed.xml", "atom.xml", "feeds.opml"):
            parsed = feedparser.parse(path.read_bytes())
            assert not parsed.bozo, (path, parsed.get("bozo_exception"))
            root = etree.fromstring(path.read_bytes())
            for element in root.iter():
                tag = etree.QName(element).localname if isinstance(element.tag, str) else ""
                if tag in ("updated", "published", "lastBuildDate", "pubDate", "dateModified"):
                    text = (element.text or "").strip()
                    try:
                        dates.append(datetime.fromisoformat(text))
                    except ValueError:
                        dates.append(parsedate_to_datetime(text))
        elif path.name == "feed.json":
            for item in json.loads(path.read_bytes())["items"]:
                for key in ("date_published", "date_modified"):
                    dates.append(datetime.fromisoformat(item[key]))
    return dates


def test_an_empty_site_dates_its_feeds_when_the_database_was_made(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    now = datetime.now(UTC).replace(microsecond=0)  # the database was made just now
    build_site(db, settings, out, now)
    for folder in FEED_FOLDERS:
        check_feed_folder(out / folder, 0)
        text = (out / folder / "atom.xml").read_text() + (out / folder / "feed.xml").read_text()
        assert "1970" not in text, folder
    dates = feed_dates(out)
    assert dates and all(d <= now for d in dates)


def test_the_issue_feeds_before_the_first_issue_carry_the_site_last_change(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    save(db, settings, "first", date=day(20), updated_at=day(21))
    out = tmp_path / "out"
    build_site(db, settings, out, NOW)
    parsed = feedparser.parse((out / "issues" / "atom.xml").read_bytes())
    assert parsed.feed.updated == "2012-07-20T09:00:00+00:00"  # the newest publication
    rss = feedparser.parse((out / "issues" / "feed.xml").read_bytes())
    assert "1970" not in rss.feed.get("updated", "")
    # An incremental build after a change dates them again, as a full build would.
    save(db, settings, "second", date=day(22), updated_at=day(23))
    build_site(db, settings, out, NOW)
    again = feedparser.parse((out / "issues" / "atom.xml").read_bytes())
    assert again.feed.updated == "2012-07-22T09:00:00+00:00"


def test_no_empty_archive_page_when_the_archive_is_an_exact_multiple(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    settings = with_limit(settings, 2)
    for n in range(1, 7):  # 6 posts: 2 current, 2 full archive pages
        save(db, settings, f"post-{n}", date=day(n))
    out = tmp_path / "out"
    build_site(db, settings, out, NOW)
    assert sorted(p.name for p in (out / "archive").iterdir()) == ["1", "2"]
    for number in ("1", "2"):
        check_feed_folder(out / "archive" / number, 2)
    assert 'href="archive/2/"' in (out / "index.html").read_text()


def test_a_post_updated_in_the_future_never_dates_a_feed_past_now(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    save(db, settings, "normal", date=day(20))
    save(db, settings, "odd", date=day(21), updated_at="2099-01-01T00:00:00Z", topics=["IETF"])
    out = tmp_path / "out"
    build_site(db, settings, out, NOW)
    dates = feed_dates(out)
    assert dates and max(dates) <= NOW, max(dates)
    assert not any("2099" in p.read_text() for p in out.rglob("*.xml"))
    # The same database and the same now give the same bytes.
    again = tmp_path / "again"
    build_site(db, settings, again, NOW)
    assert (again / "atom.xml").read_bytes() == (out / "atom.xml").read_bytes()
