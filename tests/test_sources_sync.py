"""``sources sync`` against a real HTTP server on 127.0.0.1 serving WordPress-, Ghost- and
Drupal-shaped feeds: first sync, conditional GETs, edits upstream, a feed that shrinks, paging,
and every way a source can fail (hang, 500, 404, a feed cut in the middle of an item), each
reported in one line naming the source while the other sources still sync."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feed_samples import (
    Item,
    drupal_feed,
    ghost_feed,
    sample_items,
    wordpress_comments_feed,
    wordpress_feed,
)
from feed_server import FeedServer
from policyfeed.cli import cli
from policyfeed.store import open_db
from policyfeed.store import posts as store

CONFIG = """\
[site]
title = "Public Policy"
base_url = "https://policy.example.org/"
timezone = "Europe/Zurich"

[[sources]]
name = "chapter"
url = "{wordpress}"
topics = {{ "Uncategorized" = "", "ITU / WCIT" = "WCIT" }}

[[sources]]
name = "ghost"
url = "{ghost}"
author = "Ghost desk"
add_topics = ["From Ghost"]

[[sources]]
name = "drupal"
url = "{drupal}"
timeout = {timeout}
"""


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


def base(feeds: FeedServer, folder: str) -> str:
    return feeds.url(f"/{folder}/")


def serve_all(feeds: FeedServer, items: list[Item], **options: object) -> None:
    feeds.set("/wp/feed/", wordpress_feed(base(feeds, "wp"), items), etag='"wp-1"', **options)
    feeds.set(
        "/ghost/rss/",
        ghost_feed(base(feeds, "ghost"), items),
        last_modified="Wed, 25 Jul 2012 10:00:00 GMT",
    )
    feeds.set("/drupal/rss.xml", drupal_feed(base(feeds, "drupal"), items), etag='"d-1"')


@pytest.fixture
def site(tmp_path: Path, feeds: FeedServer) -> Path:
    write_config(tmp_path, feeds)
    assert invoke("init").exit_code == 0
    return tmp_path


def write_config(folder: Path, feeds: FeedServer, timeout: float = 5) -> None:
    (folder / "policyfeed.toml").write_text(
        CONFIG.format(
            wordpress=feeds.url("/wp/feed/"),
            ghost=feeds.url("/ghost/rss/"),
            drupal=feeds.url("/drupal/rss.xml"),
            timeout=timeout,
        ),
        encoding="utf-8",
    )


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def sync(*args: str) -> Result:
    return invoke("sources", "sync", *args)


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [line for line in conn.iterdump() if 'INTO "sources"' not in line]
    finally:
        conn.close()


def waiting(site: Path) -> str:
    return invoke("issue", "new", "--dry-run").output


def test_first_sync_adds_the_posts_of_each_kind_of_feed(site: Path, feeds: FeedServer) -> None:
    serve_all(feeds, sample_items(3))
    result = sync()
    assert result.exit_code == 0, result.output
    assert result.output == (
        "chapter: 3 items: 3 new, 0 updated, 0 unchanged (3 marked as already announced: "
        "first sync); 3 new topics: IETF, Intellectual property, WCIT\n"
        "ghost: 3 items: 3 new, 0 updated, 0 unchanged (3 marked as already announced: "
        "first sync); 3 new topics: From Ghost, ITU / WCIT, Uncategorized\n"
        # Drupal's categories are topics the first two made: none is new.
        "drupal: 3 items: 3 new, 0 updated, 0 unchanged (3 marked as already announced: "
        "first sync)\n"
    )
    db = open_db(site / "posts.db")
    wp = base(feeds, "wp")
    post = store.get_post(db, "ietf-84-in-vancouver")
    # WordPress: the original permalink, its ?p= guid (a URI) as the id, CDATA content with the
    # relative image resolved against the item's link, categories through the mapping.
    assert post.url == f"{wp}2012/07/03/ietf-84-in-vancouver/"
    assert post.guid == f"{wp}?p=102"
    assert post.status == "published"
    assert post.author == "Ann Editor"
    assert f'src="{wp}2012/07/03/ietf-84-in-vancouver/wp-content/uploads/2012/07/' in post.body_html
    assert f'href="{base(feeds, "wp").removesuffix("wp/")}"' in post.body_html  # "/" of the blog
    assert [t.name for t in post.topics] == ["IETF"]  # "Uncategorized" dropped
    assert post.summary == "About IETF 84 in Vancouver […]"
    wcit = store.get_post(db, "itu-council-and-wtsa")
    assert [t.name for t in wcit.topics] == ["WCIT"]
    # Ghost: a guid that is no URI gives this site's tag: id; root-relative images resolved.
    ghost = store.get_post(db, "ietf-84-in-vancouver-2")
    assert ghost.url == f"{base(feeds, 'ghost')}ietf-84-in-vancouver/"
    assert ghost.guid is not None and ghost.guid.startswith("tag:policy.example.org,2012-07-03:")
    assert f'src="{feeds.url("/content/images/2012/07/ietf-84-in-vancouver.png")}"' in (
        ghost.body_html
    )
    assert [t.name for t in ghost.topics] == ["From Ghost", "IETF", "Uncategorized"]
    # Drupal: escaped HTML in description, xml:base honoured, /node/N links give title slugs.
    drupal = store.get_post(db, "ietf-84-in-vancouver-3")
    assert drupal.url == f"{base(feeds, 'drupal')}node/102"
    assert drupal.guid is not None and drupal.guid.startswith("tag:policy.example.org,")
    assert f'src="{feeds.url("/sites/default/files/ietf-84-in-vancouver.png")}"' in (
        drupal.body_html
    )
    assert "<p>What happened at IETF 84 in Vancouver.</p>" in drupal.body_html
    # Only the configured feeds were fetched, never the comments feeds the items link.
    assert sorted(set(feeds.paths())) == ["/drupal/rss.xml", "/ghost/rss/", "/wp/feed/"]


def test_the_back_catalogue_found_by_a_first_sync_is_never_mailed(
    site: Path, feeds: FeedServer
) -> None:
    serve_all(feeds, sample_items(3))
    assert sync().exit_code == 0
    assert waiting(site).startswith("Nothing new")
    shown = invoke("posts", "show", "ietf-84-in-vancouver").output
    assert "source:    chapter\n" in shown
    assert "digest:    already announced (first sync of source 'chapter'): no issue takes it" in (
        shown
    )


def test_announce_existing_lets_the_next_digest_take_them(site: Path, feeds: FeedServer) -> None:
    serve_all(feeds, sample_items(2))
    result = sync("chapter", "--announce-existing")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "chapter: 2 items: 2 new, 0 updated, 0 unchanged; 2 new topics: IETF, WCIT\n"
    )
    assert "with 2 posts" in waiting(site)


def test_a_second_sync_is_a_conditional_get(site: Path, feeds: FeedServer) -> None:
    serve_all(feeds, sample_items(2))
    assert sync().exit_code == 0
    before = dump(site / "posts.db")
    feeds.requests.clear()
    result = sync()
    assert result.exit_code == 0, result.output
    assert result.output == (
        "chapter: not modified since the last sync\n"
        "ghost: not modified since the last sync\n"
        "drupal: not modified since the last sync\n"
    )
    sent = {seen.path: seen.headers for seen in feeds.requests}
    assert sent["/wp/feed/"]["if-none-match"] == '"wp-1"'
    assert sent["/ghost/rss/"]["if-modified-since"] == "Wed, 25 Jul 2012 10:00:00 GMT"
    assert "gzip" in sent["/wp/feed/"]["accept-encoding"]
    assert dump(site / "posts.db") == before


def test_new_items_after_the_first_sync_wait_for_the_digest(site: Path, feeds: FeedServer) -> None:
    serve_all(feeds, sample_items(2))
    assert sync("chapter").exit_code == 0
    items = sample_items(3)
    feeds.set("/wp/feed/", wordpress_feed(base(feeds, "wp"), items), etag='"wp-2"')
    result = sync("chapter")
    assert result.output == (
        "chapter: 3 items: 1 new, 0 updated, 2 unchanged; 1 new topic: Intellectual property\n"
    )
    assert "with 1 post" in waiting(site)


def test_an_item_edited_upstream_updates_its_post(site: Path, feeds: FeedServer) -> None:
    items = sample_items(3)
    serve_all(feeds, items)
    assert sync("chapter").exit_code == 0
    db = open_db(site / "posts.db")
    before = store.get_post(db, "the-beijing-treaty")
    untouched = store.get_post(db, "ietf-84-in-vancouver")
    items[2].title = "The Beijing Treaty is signed"
    items[2].body = "<p>Performers finally get rights.</p>"
    feeds.set("/wp/feed/", wordpress_feed(base(feeds, "wp"), items), etag='"wp-2"')
    time.sleep(1)  # the edit is stamped one second later at least
    result = sync("chapter")
    assert result.exit_code == 0, result.output
    assert result.output == "chapter: 3 items: 0 new, 1 updated, 2 unchanged\n"
    after = store.get_post(db, "the-beijing-treaty")
    assert after.title == "The Beijing Treaty is signed"
    assert "Performers finally get rights." in after.body_html
    assert (after.guid, after.slug, after.url) == (before.guid, before.slug, before.url)
    assert after.updated_at is not None and before.updated_at is not None
    assert after.updated_at > before.updated_at
    assert store.get_post(db, "ietf-84-in-vancouver") == untouched
    assert waiting(site).startswith("Nothing new")  # an edit is not news for the digest


def test_a_feed_that_shrinks_leaves_the_vanished_posts_alone(site: Path, feeds: FeedServer) -> None:
    serve_all(feeds, sample_items(5))
    assert sync("chapter").exit_code == 0
    feeds.set("/wp/feed/", wordpress_feed(base(feeds, "wp"), sample_items(2, start=4)), etag='"2"')
    result = sync("chapter")
    assert result.output == "chapter: 2 items: 0 new, 0 updated, 2 unchanged\n"
    db = open_db(site / "posts.db")
    assert len(store.list_posts(db, status="published")) == 5
    listed = invoke("sources", "list").output
    assert listed.splitlines()[1].split()[:3] == ["chapter", "5", "2"]


def test_more_new_items_than_one_page_are_read_from_the_next_pages(
    site: Path, feeds: FeedServer
) -> None:
    wp = base(feeds, "wp")
    feeds.set("/wp/feed/", wordpress_feed(wp, sample_items(2)), etag='"1"')
    assert sync("chapter").exit_code == 0
    # Seven posts later the feed shows the newest three a page; the oldest new ones are on the
    # pages after it (RFC 5005 rel="next"), down to a page with a post already known.
    items = sample_items(9)
    newest = sorted(items, key=lambda i: i.published, reverse=True)
    feeds.set("/wp/feed/", wordpress_feed(wp, newest[0:3], next_page=f"{wp}feed/?paged=2"))
    feeds.set("/wp/feed/?paged=2", wordpress_feed(wp, newest[3:6], next_page=f"{wp}feed/?paged=3"))
    feeds.set("/wp/feed/?paged=3", wordpress_feed(wp, newest[6:9], next_page=f"{wp}feed/?paged=4"))
    feeds.set("/wp/feed/?paged=4", wordpress_feed(wp, []))
    feeds.requests.clear()
    result = sync("chapter")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "chapter: 9 items: 7 new, 0 updated, 2 unchanged; 4 new topics: Access, Intellectual "
        "property, Internet governance, Trade\n"
    )
    assert feeds.paths() == ["/wp/feed/", "/wp/feed/?paged=2", "/wp/feed/?paged=3"]
    assert "with 7 posts" in waiting(site)


def test_a_first_sync_reads_only_the_first_page(site: Path, feeds: FeedServer) -> None:
    wp = base(feeds, "wp")
    feeds.set("/wp/feed/", wordpress_feed(wp, sample_items(2), next_page=f"{wp}feed/?paged=2"))
    feeds.set("/wp/feed/?paged=2", wordpress_feed(wp, sample_items(2, start=3)))
    assert sync("chapter").exit_code == 0
    assert feeds.paths() == ["/wp/feed/"]


def test_the_comments_feed_is_not_a_source_of_posts(site: Path, feeds: FeedServer) -> None:
    items = sample_items(1)
    wp = base(feeds, "wp")
    feeds.set("/wp/feed/", wordpress_feed(wp, items))
    feeds.set("/wp/2012/07/02/itu-council-and-wtsa/feed/", wordpress_comments_feed(wp, items[0]))
    assert sync("chapter").exit_code == 0
    db = open_db(site / "posts.db")
    assert [p.title for p in store.list_posts(db)] == ["ITU Council and WTSA"]
    assert feeds.paths() == ["/wp/feed/"]


def test_a_server_that_hangs_is_bounded_by_the_timeout(tmp_path: Path, feeds: FeedServer) -> None:
    write_config(tmp_path, feeds, timeout=1)
    assert invoke("init").exit_code == 0
    serve_all(feeds, sample_items(2))
    feeds.set("/drupal/rss.xml", hang=True)
    started = time.monotonic()
    result = sync()
    elapsed = time.monotonic() - started
    assert result.exit_code == 75, result.output
    assert elapsed < 10  # the timeout is 1 s; without one this waits for the server's 30 s
    assert result.stdout.splitlines()[:2] == [
        "chapter: 2 items: 2 new, 0 updated, 0 unchanged (2 marked as already announced: "
        "first sync); 2 new topics: IETF, WCIT",
        "ghost: 2 items: 2 new, 0 updated, 0 unchanged (2 marked as already announced: "
        "first sync); 3 new topics: From Ghost, ITU / WCIT, Uncategorized",
    ]
    assert result.stderr == (
        f"Error: drupal: temporary failure: {feeds.url('/drupal/rss.xml')}: no complete answer "
        "within 1 s (the source's timeout)\n"
    )


def test_a_500_is_a_temporary_failure_and_the_others_still_sync(
    site: Path, feeds: FeedServer
) -> None:
    serve_all(feeds, sample_items(2))
    feeds.set("/ghost/rss/", "<h1>Internal error</h1>", status=500, content_type="text/html")
    result = sync()
    assert result.exit_code == 75
    assert result.stderr == (
        f"Error: ghost: temporary failure: {feeds.url('/ghost/rss/')}: the server answered "
        "500 Internal Server Error; try again later\n"
    )
    assert "chapter: 2 items: 2 new" in result.stdout and "drupal: 2 items: 2 new" in result.stdout
    listed = invoke("sources", "list").output
    ghost_line = next(line for line in listed.splitlines() if line.startswith("ghost"))
    assert ghost_line.split()[:4] == ["ghost", "0", "0", "never"]
    assert "temporary: " in ghost_line and "500 Internal Server Error" in ghost_line
    # Once it answers again, its first sync still counts as the first one.
    serve_all(feeds, sample_items(2))
    result = sync("ghost")
    assert result.exit_code == 0
    assert "(2 marked as already announced: first sync)" in result.output
    assert "ghost  " in invoke("sources", "list").output


def test_a_404_is_an_error_and_wins_over_a_temporary_failure(site: Path, feeds: FeedServer) -> None:
    serve_all(feeds, sample_items(2))
    del feeds.routes["/wp/feed/"]
    feeds.set("/ghost/rss/", "busy", status=503, content_type="text/plain")
    result = sync()
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: chapter: error: {feeds.url('/wp/feed/')}: the feed is not found (404 Not Found): "
        "check the source's url",
        f"Error: ghost: temporary failure: {feeds.url('/ghost/rss/')}: the server answered 503 "
        "Service Unavailable; try again later",
    ]
    assert result.stdout.startswith("drupal: 2 items: 2 new")


def test_a_feed_cut_in_the_middle_of_an_item_is_refused_whole(
    site: Path, feeds: FeedServer
) -> None:
    items = sample_items(3)
    serve_all(feeds, items)
    assert sync("chapter").exit_code == 0
    before = dump(site / "posts.db")
    items.extend(sample_items(2, start=4))
    items[0].title = "Edited upstream"
    whole = wordpress_feed(base(feeds, "wp"), items)
    cut = whole[: whole.index("<item>", whole.index("<item>") + 10) + 300]
    feeds.set("/wp/feed/", cut, etag='"cut"')
    result = sync("chapter")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith(f"Error: chapter: error: {feeds.url('/wp/feed/')}, line ")
    assert ", column " in line and line.endswith(
        "not well-formed XML: " + line.split("not well-formed XML: ", 1)[1]
    )
    assert "nothing imported" in line
    assert dump(site / "posts.db") == before  # not one item of it saved
    # The next, whole, feed is fetched in full (the cut one's ETag was not kept).
    feeds.set("/wp/feed/", whole, etag='"whole"')
    result = sync("chapter")
    assert result.output == "chapter: 5 items: 2 new, 1 updated, 2 unchanged; 1 new topic: Trade\n"


def test_a_feed_with_one_date_that_does_not_parse_is_refused_whole(
    site: Path, feeds: FeedServer
) -> None:
    items = sample_items(2)
    serve_all(feeds, items)
    assert sync("ghost").exit_code == 0
    before = dump(site / "posts.db")
    items.extend(sample_items(1, start=3))
    items[0].title = "Edited upstream"
    good = ghost_feed(base(feeds, "ghost"), items)
    first_date = good.index("<pubDate>")
    value = good[first_date + len("<pubDate>") : good.index("</pubDate>", first_date)]
    broken = good.replace(f"<pubDate>{value}", "<pubDate>sometime last week", 1)
    line = broken[: broken.index("<pubDate>sometime")].count("\n") + 1
    feeds.set("/ghost/rss/", broken)
    result = sync("ghost")
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: ghost: error: {feeds.url('/ghost/rss/')}, entry ")
    assert result.stderr.endswith(
        f", line {line}: item {items[-1].title!r} has a <pubDate> that is not a date: "
        "'sometime last week'; nothing imported\n"
    ), result.stderr
    assert dump(site / "posts.db") == before
    feeds.set("/ghost/rss/", good)
    result = sync("ghost")
    assert result.exit_code == 0, result.output


def test_an_upstream_item_that_would_blank_a_post_is_refused(site: Path, feeds: FeedServer) -> None:
    import re

    items = sample_items(2)
    serve_all(feeds, items)
    assert sync("ghost").exit_code == 0
    before = dump(site / "posts.db")
    # The newest item comes back without its content and description (a CMS hiccup).
    emptied = ghost_feed(base(feeds, "ghost"), items)
    emptied = re.sub(r"<description><!\[CDATA\[About .*?</description>", "", emptied, count=1)
    emptied = re.sub(r"<content:encoded>.*?</content:encoded>", "", emptied, count=1)
    feeds.set("/ghost/rss/", emptied)
    result = sync("ghost")
    assert result.exit_code == 1
    assert "would empty the body of published post 'ietf-84-in-vancouver'" in result.stderr
    assert "(pass --allow-blanking if that is meant)" in result.stderr
    assert dump(site / "posts.db") == before
    result = sync("ghost", "--allow-blanking")
    assert result.exit_code == 0, result.output
    assert result.output == "ghost: 2 items: 0 new, 1 updated, 1 unchanged\n"


def test_local_changes_stay_until_the_source_changes_the_item(
    site: Path, feeds: FeedServer
) -> None:
    items = sample_items(2)
    serve_all(feeds, items)
    assert sync("chapter").exit_code == 0
    assert invoke("posts", "unpublish", "ietf-84-in-vancouver").exit_code == 0
    assert invoke("posts", "remove", "itu-council-and-wtsa", "--yes").exit_code == 0
    items[1].body = "<p>Edited upstream.</p>"
    feeds.set("/wp/feed/", wordpress_feed(base(feeds, "wp"), items), etag='"2"')
    result = sync("chapter")
    assert result.output == "chapter: 2 items: 0 new, 1 updated, 1 unchanged\n"
    db = open_db(site / "posts.db")
    post = store.get_post(db, "ietf-84-in-vancouver")
    assert post.status == "draft"  # taken down here: an upstream edit does not republish it
    assert "Edited upstream." in post.body_html
    assert [p.slug for p in store.list_posts(db)] == ["ietf-84-in-vancouver"]  # removed stays so


def test_an_unknown_source_name_is_a_usage_error(site: Path) -> None:
    result = sync("blog")
    assert result.exit_code == 2
    assert result.output == ("Error: no source named 'blog' (configured: chapter, ghost, drupal)\n")


def test_sync_without_sources_says_how_to_add_one(tmp_path: Path) -> None:
    (tmp_path / "policyfeed.toml").write_text(
        '[site]\nbase_url = "https://policy.example.org/"\n', encoding="utf-8"
    )
    assert invoke("init").exit_code == 0
    result = sync()
    assert result.exit_code == 1
    assert result.output.startswith("Error: no [[sources]] in the config")


def test_sources_list_before_any_sync(site: Path) -> None:
    result = invoke("sources", "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "POSTS", "IN", "FEED", "LAST", "SUCCESS", "LAST", "ERROR"]
    assert lines[1].split() == ["chapter", "0", "0", "never", "-"]


def test_sources_list_json(site: Path, feeds: FeedServer) -> None:
    import json

    serve_all(feeds, sample_items(2))
    assert sync().exit_code == 0
    rows = json.loads(invoke("sources", "list", "--json").output)
    assert [(r["name"], r["posts"], r["feed_items"], r["last_error"]) for r in rows] == [
        ("chapter", 2, 2, ""),
        ("ghost", 2, 2, ""),
        ("drupal", 2, 2, ""),
    ]
    assert all(r["last_success_at"] and r["first_synced_at"] for r in rows)


def test_import_announced_keeps_a_migrated_back_catalogue_out_of_the_digest(
    site: Path, feeds: FeedServer
) -> None:
    export = site / "old-blog.xml"
    export.write_text(wordpress_feed(base(feeds, "wp"), sample_items(3)), encoding="utf-8")
    result = invoke("posts", "import", str(export), "--announced")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Imported 3 posts from {export} (3 new, 0 updated, 0 unchanged; 3 marked as already "
        "announced; 4 new topics: IETF, ITU / WCIT, Intellectual property, Uncategorized)\n"
    )
    assert waiting(site).startswith("Nothing new")
    # Without the flag the same import leaves them waiting for the digest.
    other = site / "other.xml"
    other.write_text(wordpress_feed(base(feeds, "x"), sample_items(2, start=4)), encoding="utf-8")
    assert invoke("posts", "import", str(other)).exit_code == 0
    assert "with 2 posts" in waiting(site)


def test_a_source_matches_the_posts_an_import_brought_before(site: Path, feeds: FeedServer) -> None:
    items = sample_items(3)
    export = site / "old-blog.xml"
    export.write_text(wordpress_feed(base(feeds, "wp"), items), encoding="utf-8")
    assert invoke("posts", "import", str(export), "--announced").exit_code == 0
    serve_all(feeds, sample_items(4))
    result = sync("chapter")
    assert result.exit_code == 0, result.output
    # The three imported posts are the same items (same guid): matched, not doubled. Two of
    # them change: the source's topic mapping ("ITU / WCIT" is WCIT, "Uncategorized" goes).
    assert result.output == (
        "chapter: 4 items: 1 new, 2 updated, 1 unchanged (1 marked as already announced: "
        "first sync); 1 new topic: WCIT\n"
    )
    db = open_db(site / "posts.db")
    assert len(store.list_posts(db)) == 4


def test_a_loopback_base_url_refuses_to_sync(tmp_path: Path, feeds: FeedServer) -> None:
    write_config(tmp_path, feeds)
    config = tmp_path / "policyfeed.toml"
    config.write_text(
        config.read_text().replace("https://policy.example.org/", "http://127.0.0.1:8000/")
    )
    assert invoke("init").exit_code == 0
    serve_all(feeds, sample_items(1))
    result = sync()
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: site.base_url is http://127.0.0.1:8000/ (127.0.0.1 is this machine's loopback "
        "address): refusing to sync posts from a feed, because published posts take"
    )
    assert feeds.requests == []
