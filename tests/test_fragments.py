"""Markdown footnotes and ``#fragment`` links: they were resolved against the site root
(``#fn:1`` pointed at the home page) and the sanitiser dropped the ids they point at. Fragment
links stay fragments on the post's page, ids survive with the post's slug in front (two posts on
one page cannot collide), and feeds point at the post's page."""

from __future__ import annotations

from pathlib import Path

import feedparser
import lxml.html
import sqlite_utils

from policyfeed.config import Settings
from policyfeed.content.posts import prefix_ids, sanitize_html
from policyfeed.site.build import build_site
from policyfeed.store import posts as post_store
from site_support import NOW, day, save

MARKDOWN = """\
The treaty[^1] is signed. See [the summary](#summary) and [elsewhere](#nowhere).

## Summary {: #summary }

Short.

[^1]: Beijing, 26 June 2012.
"""
BASE = "https://policy.example.org/"


def test_fragment_links_stay_fragments_and_ids_survive() -> None:
    html = sanitize_html('<p id="top"><a href="#top">up</a> <a href="/x">x</a></p>', BASE)
    assert html == (
        '<p id="top"><a href="#top" rel="noopener">up</a> '
        '<a href="https://policy.example.org/x" rel="noopener">x</a></p>'
    )


def test_prefix_ids_changes_the_ids_and_only_the_links_to_them() -> None:
    html = '<p id="a" title="x id=&quot;b&quot;"><a href="#a">1</a> <a href="#c">2</a></p>'
    assert prefix_ids(html, "post-") == (
        '<p id="post-a" title="x id=&quot;b&quot;"><a href="#post-a">1</a> <a href="#c">2</a></p>'
    )
    assert prefix_ids("<p>no ids</p>", "post-") == "<p>no ids</p>"


def test_footnotes_work_on_the_post_page_and_in_the_feeds(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    save(db, settings, "beijing", date=day(20), body_markdown=MARKDOWN)
    save(db, settings, "other", date=day(21), body_markdown="Also[^1].\n\n[^1]: A note.")
    stored = post_store.get_post(db, "beijing").body_html
    assert 'href="#fn:1"' in stored and 'id="fn:1"' in stored
    out = tmp_path / "out"
    build_site(db, settings, out, NOW)
    page = lxml.html.parse(str(out / "posts" / "beijing" / "index.html")).getroot()
    ids = {element.get("id") for element in page.iter() if element.get("id")}
    assert {"beijing-fn:1", "beijing-fnref:1", "beijing-summary"} <= ids
    links = [a.get("href") for a in page.iter("a")]
    assert "#beijing-fn:1" in links and "#beijing-fnref:1" in links
    assert "#beijing-summary" in links and "#nowhere" in links
    for href in links:  # every fragment link on the page has its target, but the lost one
        if href and href.startswith("#") and href != "#nowhere":
            assert href[1:] in ids, href
    feed = feedparser.parse((out / "atom.xml").read_bytes())
    content = next(e for e in feed.entries if "beijing" in e.link).content[0].value
    assert 'href="https://policy.example.org/posts/beijing/#beijing-fn:1"' in content
