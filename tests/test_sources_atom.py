"""``sources sync`` of an Atom feed shaped like WordPress's ``/feed/atom/`` (xml:base, CDATA,
relative images, categories as terms, comments as rel="replies", rel="next" paging), from a real
HTTP server on 127.0.0.1: the same posts as from the RSS feed, 200 then 304, an entry edited
upstream, a feed that shrinks, and the pages after the first when more is new than one shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feed_samples import sample_items, wordpress_atom_feed
from feed_server import FeedServer
from policyfeed.cli import cli
from policyfeed.store import open_db
from policyfeed.store import posts as store

ATOM = "application/atom+xml; charset=UTF-8"
CONFIG = """\
[site]
title = "Public Policy"
base_url = "https://policy.example.org/"
timezone = "Europe/Zurich"

[[sources]]
name = "chapter"
url = "{url}"
topics = {{ "Uncategorized" = "", "ITU / WCIT" = "WCIT" }}
"""


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture
def site(tmp_path: Path, feeds: FeedServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policyfeed.toml").write_text(
        CONFIG.format(url=feeds.url("/wp/feed/atom/")), encoding="utf-8"
    )
    assert run("init").exit_code == 0
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def sync() -> Result:
    return run("sources", "sync")


def test_the_first_sync_reads_entries_as_wordpress_writes_them(
    site: Path, feeds: FeedServer
) -> None:
    wp = feeds.url("/wp/")
    feeds.set("/wp/feed/atom/", wordpress_atom_feed(wp, sample_items(3)), content_type=ATOM)
    result = sync()
    assert result.exit_code == 0, result.output
    assert result.output == (
        "chapter: 3 items: 3 new, 0 updated, 0 unchanged (3 marked as already announced: "
        "first sync); 3 new topics: IETF, Intellectual property, WCIT\n"
    )
    post = store.get_post(open_db(site / "posts.db"), "ietf-84-in-vancouver")
    link = f"{wp}2012/07/03/ietf-84-in-vancouver/"
    assert post.url == link
    assert post.guid == f"{wp}?p=102"
    assert post.title == "IETF 84 in Vancouver"  # CDATA, type="html"
    assert post.summary == "About IETF 84 in Vancouver […]"
    assert post.author == "Ann Editor"
    # The image is relative to the content's xml:base (the entry's page), not to this site.
    assert f'src="{link}wp-content/uploads/2012/07/ietf-84-in-vancouver.jpg"' in post.body_html
    assert "<p>What happened at IETF 84 in Vancouver.</p>" in post.body_html
    assert [t.name for t in post.topics] == ["IETF"]  # "Uncategorized" dropped by the mapping
    # The comments feeds the entries link (rel="replies") are never fetched.
    assert feeds.paths() == ["/wp/feed/atom/"]


def test_200_then_304_then_an_entry_edited_upstream_and_a_feed_that_shrinks(
    site: Path, feeds: FeedServer
) -> None:
    wp = feeds.url("/wp/")
    items = sample_items(3)
    feeds.set("/wp/feed/atom/", wordpress_atom_feed(wp, items), content_type=ATOM, etag='"a1"')
    assert sync().exit_code == 0
    feeds.requests.clear()
    result = sync()
    assert result.output == "chapter: not modified since the last sync\n"
    assert feeds.requests[0].headers["if-none-match"] == '"a1"'

    items[1].title = "IETF 84 in Vancouver: the report"
    later = {items[1].slug: items[1].published + timedelta(days=2)}
    feeds.set(
        "/wp/feed/atom/",
        wordpress_atom_feed(wp, items, edited=later),
        content_type=ATOM,
        etag='"a2"',
    )
    result = sync()
    assert result.exit_code == 0, result.output
    assert result.output == "chapter: 3 items: 0 new, 1 updated, 2 unchanged\n"
    db = open_db(site / "posts.db")
    assert store.get_post(db, "ietf-84-in-vancouver").title == "IETF 84 in Vancouver: the report"

    feeds.set("/wp/feed/atom/", wordpress_atom_feed(wp, items[2:]), content_type=ATOM, etag='"a3"')
    result = sync()
    assert result.output == "chapter: 1 item: 0 new, 0 updated, 1 unchanged\n"
    assert len(store.list_posts(db, status="published")) == 3  # the vanished ones stay


def test_more_new_entries_than_one_page_are_read_from_the_next_pages(
    site: Path, feeds: FeedServer
) -> None:
    wp = feeds.url("/wp/")
    feeds.set("/wp/feed/atom/", wordpress_atom_feed(wp, sample_items(2)), content_type=ATOM)
    assert sync().exit_code == 0
    newest = sorted(sample_items(8), key=lambda i: i.published, reverse=True)
    pages = [newest[0:3], newest[3:6], newest[6:8]]
    for number, page in enumerate(pages, start=1):
        path = "/wp/feed/atom/" + (f"?paged={number}" if number > 1 else "")
        following = f"{wp}feed/atom/?paged={number + 1}" if number < len(pages) else ""
        feeds.set(path, wordpress_atom_feed(wp, page, next_page=following), content_type=ATOM)
    feeds.requests.clear()
    result = sync()
    assert result.exit_code == 0, result.output
    # Six new entries: the first two pages are all new, the third holds known ones: it ends.
    assert result.output == (
        "chapter: 8 items: 6 new, 0 updated, 2 unchanged; 4 new topics: Access, Intellectual "
        "property, Internet governance, Trade\n"
    )
    assert feeds.paths() == ["/wp/feed/atom/", "/wp/feed/atom/?paged=2", "/wp/feed/atom/?paged=3"]
    assert "with 6 posts" in run("issue", "new", "--dry-run").output
