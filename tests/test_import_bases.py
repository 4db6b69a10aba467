"""Relative links and images in an imported feed mean addresses of the blog the feed came from:
an RSS item's are resolved against the item's link, then the feed's link (as feed readers do),
never against this site's base URL; Atom's xml:base comes first."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from policyfeed.content.importers import import_posts
from policyfeed.store import posts as store

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>Old blog</title>
  <link>https://old.example.org/blog/</link>
  <description>Posts to move</description>
  <item>
    <title>With a link of its own</title>
    <link>https://old.example.org/blog/2012/07/ietf-84/</link>
    <guid isPermaLink="true">https://old.example.org/blog/2012/07/ietf-84/</guid>
    <pubDate>Wed, 25 Jul 2012 09:00:00 GMT</pubDate>
    <content:encoded><![CDATA[<p><img src="images/plenary.jpg" alt="Plenary">
      <a href="/about/">About us</a> <a href="../../../2011/wcit/">last year</a></p>]]>
    </content:encoded>
  </item>
  <item>
    <title>Without a link</title>
    <guid isPermaLink="false">old-blog-2</guid>
    <pubDate>Thu, 26 Jul 2012 09:00:00 GMT</pubDate>
    <description><![CDATA[<p><img src="media/chart.png" alt="Chart"></p>]]></description>
  </item>
</channel>
</rss>
"""

ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://ghost.example.org/">
  <title>Ghost blog</title>
  <id>https://ghost.example.org/</id>
  <updated>2012-07-25T09:00:00Z</updated>
  <entry xml:base="https://ghost.example.org/content/">
    <id>https://ghost.example.org/wcit/</id>
    <title>WCIT</title>
    <link href="https://ghost.example.org/wcit/"/>
    <updated>2012-07-25T09:00:00Z</updated>
    <content type="html">&lt;img src="images/wcit.png" alt="WCIT"&gt;</content>
  </entry>
</feed>
"""


def run(db: sqlite_utils.Database, path: Path) -> None:
    import_posts(
        db,
        path,
        fmt=None,
        base_url="https://policy.example.org/",
        tz=UTC,
        domain="policy.example.org",
        now=datetime(2012, 7, 30, tzinfo=UTC),
    )


def test_rss_relative_urls_are_resolved_against_the_items_link(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "old.rss"
    path.write_text(RSS, encoding="utf-8")
    run(db, path)
    body = store.get_post(db, "ietf-84").body_html
    assert 'src="https://old.example.org/blog/2012/07/ietf-84/images/plenary.jpg"' in body
    assert 'href="https://old.example.org/about/"' in body
    assert 'href="https://old.example.org/blog/2011/wcit/"' in body
    assert "policy.example.org" not in body


def test_rss_item_without_a_link_resolves_against_the_feeds_link(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "old.rss"
    path.write_text(RSS, encoding="utf-8")
    run(db, path)
    post = store.get_post(db, "without-a-link")
    assert 'src="https://old.example.org/blog/media/chart.png"' in post.body_html


def test_atom_xml_base_comes_first(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = tmp_path / "ghost.atom"
    path.write_text(ATOM, encoding="utf-8")
    run(db, path)
    body = store.get_post(db, "wcit").body_html
    assert 'src="https://ghost.example.org/content/images/wcit.png"' in body
