"""A property test over hostile sites: arbitrary Unicode, control characters and markup in
titles, names, topics, URLs and bodies, saved the way the app saves them and built into a site.
Every feed parses with feedparser without ``bozo``, every id is an absolute URI, no date passes
the build's ``now``, and every HTML page parses.

The default profile keeps the example count small so that ``make test`` stays fast;
``POLICYFEED_HYPOTHESIS=many`` (or the ``slow`` test below) runs many more."""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import lxml.etree
import lxml.html
import pytest
import sqlite_utils
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from policyfeed.config import Settings
from policyfeed.errors import PolicyfeedError
from policyfeed.model import is_absolute_uri
from policyfeed.site.build import build_site
from policyfeed.store import open_db
from site_support import save

# Text of every kind: any code point but surrogates, with the troublesome ones made likely.
NASTY = st.sampled_from(
    [*"\x00\x01\x08\x0b\x1f\x7f\x85\x9f\u00a0\u200b\u200e\u202e\u2066\u2069\ufdd0\ufeff\uffff",
       "\U0001fffe", "\U0010ffff", "<b>", "</p>", "&nbsp;", "&amp;", "&#0;", "&#xFDD0;", "]]>",
       "<script>alert(1)</script>", "<![CDATA[", '"', "'", "\r\n", "𝒳", "🌍", "ﷺ", "Ω"]
)  # fmt: skip
TEXT = st.lists(st.one_of(st.text(max_size=8), NASTY), max_size=6).map("".join)
URLS = st.one_of(
    st.none(),
    st.sampled_from(
        ["https://bücher.example/a b/ü", "https://example.org/?q=<x>&y", "http://EXAMPLE.org:8080/",
         "https://example.org/100%", "https://example.org/#frag ment", "/relative/path"]
    ),
)  # fmt: skip
IDS = st.one_of(
    st.none(), st.sampled_from(["42", "not a uri <at> all", "urn:x:1", "https://e/?p=1"])
)
COUNTER = itertools.count()
PROFILE = {"max_examples": 200} if os.environ.get("POLICYFEED_HYPOTHESIS") == "many" else {}


def check_site(out: Path, now: datetime) -> None:
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        data.decode("utf-8")
        if path.name in ("feed.xml", "atom.xml", "feeds.opml"):
            if path.name != "feeds.opml":
                parsed = feedparser.parse(data)
                assert not parsed.bozo, (path, parsed.get("bozo_exception"))
                for entry in parsed.entries:
                    assert is_absolute_uri(entry.id), (path, entry.id)
            root = lxml.etree.fromstring(data)
            for element in root.iter():
                if not isinstance(element.tag, str):
                    continue
                name = lxml.etree.QName(element).localname
                if name in ("updated", "published", "lastBuildDate", "pubDate", "dateModified"):
                    text = (element.text or "").strip()
                    try:
                        moment = datetime.fromisoformat(text)
                    except ValueError:
                        moment = parsedate_to_datetime(text)
                    assert moment <= now, (path, name, text)
        elif path.name == "feed.json":
            feed = json.loads(data)
            for item in feed["items"]:
                assert is_absolute_uri(item["id"]), item["id"]
                for key in ("date_published", "date_modified"):
                    assert datetime.fromisoformat(item[key]) <= now, (path, key)
        elif path.suffix == ".html":
            page = lxml.html.document_fromstring(data)
            assert page.find("head/title") is not None, path
            assert page.find("body") is not None, path


def build_hostile(tmp_path: Path, settings: Settings, posts: list[dict[str, object]]) -> None:
    db: sqlite_utils.Database = open_db(tmp_path / f"site-{next(COUNTER)}.db")
    now = datetime.now(UTC).replace(microsecond=0)
    for n, fields in enumerate(posts):
        try:
            save(db, settings, f"post-{n}", date=now - timedelta(days=n + 1), now=now, **fields)
        except PolicyfeedError:
            continue  # refused with a clear error (a title with no text in it): fine
    out = tmp_path / f"out-{next(COUNTER)}"
    build_site(db, settings, out, now)
    check_site(out, now)
    db.conn.close()


POST = st.fixed_dictionaries(
    {"title": TEXT.map(lambda t: "T " + t), "summary": TEXT, "body": TEXT, "author": TEXT,
     "topics": st.lists(TEXT, max_size=3), "url": URLS, "guid": IDS,
     "updated_at": st.sampled_from([None, "2099-01-01T00:00:00Z", "2012-07-01"])}
)  # fmt: skip


@hsettings(
    max_examples=PROFILE.get("max_examples", 12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(posts=st.lists(POST, min_size=1, max_size=3))
def test_any_hostile_site_gives_valid_feeds_and_pages(
    tmp_path: Path, settings: Settings, posts: list[dict[str, object]]
) -> None:
    build_hostile(
        tmp_path, settings, [{k: v for k, v in p.items() if v is not None} for p in posts]
    )


@pytest.mark.slow
@hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(posts=st.lists(POST, min_size=1, max_size=4))
def test_many_hostile_sites(
    tmp_path: Path, settings: Settings, posts: list[dict[str, object]]
) -> None:
    build_hostile(
        tmp_path, settings, [{k: v for k, v in p.items() if v is not None} for p in posts]
    )
