"""The built pages as a reader meets them: what the footers say, and links that stay on the host
the pages are read from (the public site, or `policyfeed serve` on a laptop)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
import sqlite_utils

from digest_support import demo_issue
from policyfeed.config import Settings
from policyfeed.site.build import build_site
from site_support import NOW

FEED_FILES = ("feed.xml", "atom.xml", "feed.json")


def page(out: Path, rel: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring((out / rel).read_text(encoding="utf-8"))


def test_a_topic_pages_footer_says_which_feeds_are_the_topics_and_which_the_sites(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "public"
    build_site(demo_db, settings, out, NOW)

    footer = page(out, "topics/ietf/index.html").cssselect("footer.page")[0]
    groups = {
        " ".join(line.text_content().split(":")[0].split()): [a.get("href") for a in line]
        for line in footer.cssselect(".feeds")
    }
    base = "https://policy.example.org/"
    assert groups == {
        "This topic": [f"{base}topics/ietf/{name}" for name in FEED_FILES],
        "All posts": [f"{base}{name}" for name in FEED_FILES],
    }
    text = " ".join(footer.text_content().split())
    assert "This topic: RSS · Atom · JSON Feed" in text
    assert "All posts: RSS · Atom · JSON Feed" in text
    # The other pages have the site's feeds only, said once.
    home = " ".join(page(out, "index.html").cssselect("footer.page")[0].text_content().split())
    assert home.count("RSS · Atom · JSON Feed") == 1


def test_every_page_links_within_the_site_relatively_and_only_feeds_and_canonicals_absolutely(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    demo_issue(demo_db, settings, approved=True)
    out = tmp_path / "public"
    build_site(demo_db, settings, out, NOW)

    host = urlsplit(settings.base_url).hostname
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("index.html"))
    assert "issues/index.html" in pages and "issues/1/index.html" in pages
    absolute = []
    for rel in pages:
        doc = page(out, rel)
        for element in doc.cssselect("a[href], form[action]"):
            url = element.get("href") or element.get("action") or ""
            if urlsplit(url).hostname == host and not url.endswith(FEED_FILES):
                absolute.append((rel, url))
        canonical = doc.cssselect("link[rel=canonical]")
        if rel.startswith(("posts/", "issues/1/")):
            assert canonical and canonical[0].get("href", "").startswith(settings.base_url)
    assert absolute == []


def test_the_archive_links_to_the_home_page_its_issues_their_neighbours_and_the_posts(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    _, posts = demo_issue(demo_db, settings, approved=True)
    out = tmp_path / "public"
    build_site(demo_db, settings, out, NOW)

    index = page(out, "issues/index.html")
    assert index.cssselect("header a.site-title")[0].get("href") == "../"
    assert [a.get("href") for a in index.cssselect("ol.issues h2 a")] == ["1/"]
    issue = page(out, "issues/1/index.html")
    assert issue.cssselect("header a.site-title")[0].get("href") == "../../"
    read_on_site = [a.get("href") for a in issue.cssselect("article h2 a")]
    assert read_on_site == [f"../../posts/{p.slug}/" for p in posts]
    for href in read_on_site:  # each resolves to a page the build wrote
        assert (out / "issues/1" / href / "index.html").resolve().is_file()
