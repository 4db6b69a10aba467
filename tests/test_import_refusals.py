"""Imports that would lose data are refused whole: a truncated or malformed RSS/Atom file (with
its line and column), and an update that would empty a published post's title, body, topics or
author unless the editor asks for it (``--allow-blanking``). The database is left unchanged."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from policyfeed.cli import cli
from policyfeed.store import open_db
from policyfeed.store import posts as store

CONFIG = """\
[site]
title = "Public Policy"
base_url = "https://policy.example.org/"
timezone = "Europe/Zurich"
"""


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def another_blog_feed(count: int = 5) -> bytes:
    """An RSS 2.0 feed of ``count`` posts, each with a body, topics and an author."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.id("https://old.example.org/")
    fg.title("The old policy blog")
    fg.link(href="https://old.example.org/", rel="alternate")
    fg.description("Posts to move")
    fg.lastBuildDate(datetime(2012, 7, 26, tzinfo=UTC))
    for n in range(1, count + 1):
        entry = fg.add_entry(order="append")
        entry.id(f"https://old.example.org/?p={n}")
        entry.title(f"Post number {n} on Internet governance")
        entry.link(href=f"https://old.example.org/2012/07/post-{n}.html")
        entry.description(f"Summary of post {n}.")
        entry.content("<p>" + f"Paragraph of post {n}. " * 12 + "</p>", type="CDATA")
        entry.published(datetime(2012, 7, n, 9, 0, tzinfo=UTC))
        entry.category(term="Internet governance")
        entry.author(name="Ann Editor", email="ann@example.org")
    return bytes(fg.rss_str(pretty=True))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site whose posts came from another blog's feed (all five published)."""
    (tmp_path / "policyfeed.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "old.xml").write_bytes(another_blog_feed())
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["posts", "import", "old.xml"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Imported 5 posts from old.xml (5 new, 0 updated, 0 unchanged; 1 new topic: "
        "Internet governance)\n"
    )
    return tmp_path


def import_(*args: str) -> object:
    return CliRunner().invoke(cli, ["posts", "import", *args])


# --- truncated and malformed feeds -----------------------------------------------------------


@pytest.mark.parametrize("cut", [3000, 4000])
def test_a_truncated_feed_is_refused_whole_with_its_line_and_column(site: Path, cut: int) -> None:
    data = another_blog_feed(8)
    assert len(data) > cut + 500
    (site / "cut.xml").write_bytes(data[:cut])
    before = dump(site / "posts.db")
    result = import_("cut.xml")
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    found = re.match(
        r"Error: cut.xml, line (\d+), column (\d+): not well-formed XML: ", result.stderr
    )
    assert found, result.stderr
    assert 1 <= int(found.group(1)) <= data[:cut].count(b"\n") + 1
    assert result.stderr.endswith("; nothing imported\n")
    assert result.stderr.count("\n") == 1
    assert dump(site / "posts.db") == before


def test_every_cut_of_a_feed_is_refused_and_changes_nothing(site: Path) -> None:
    data = another_blog_feed(3)
    before = dump(site / "posts.db")
    for cut in range(len(data) // 10, len(data) - 10, len(data) // 15):
        (site / "cut.xml").write_bytes(data[:cut])
        result = import_("cut.xml", "--format", "feed")
        assert result.exit_code == 1, (cut, result.output)
        assert result.stderr.startswith("Error: cut.xml, line "), (cut, result.stderr)
    assert dump(site / "posts.db") == before


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("<rss><channel><item><title>A & B</title></item></channel></rss>", "line 1, column 31"),
        (
            '<rss version="2.0">\n<channel>\n<item><title>x</title><dc:creator>Ann</dc:creator>'
            "</item></channel></rss>",
            "line 3, column ",
        ),
        ("<rss><channel><item><title>x</item></channel></rss>", "line 1, column "),
    ],
    ids=["bare-ampersand", "undeclared-prefix", "mismatched-tag"],
)
def test_a_feed_that_is_not_well_formed_xml_is_refused(site: Path, text: str, where: str) -> None:
    (site / "bad.xml").write_text(text, encoding="utf-8")
    before = dump(site / "posts.db")
    result = import_("bad.xml")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: bad.xml, {where}"), result.stderr
    assert dump(site / "posts.db") == before


def test_a_well_formed_feed_still_imports(site: Path) -> None:
    (site / "again.xml").write_bytes(another_blog_feed())
    result = import_("again.xml")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Imported 5 posts from again.xml (0 new, 0 updated, 5 unchanged)\n"


# --- dates that do not parse -------------------------------------------------------------------

NEW_RSS = """\
<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
<channel>
<title>Another blog</title>
<link>https://new.example.org/</link>
<description>More posts</description>
<item>
<title>A fine new post</title>
<link>https://new.example.org/fine.html</link>
<guid>https://new.example.org/?p=1</guid>
<pubDate>Tue, 28 Aug 2012 10:00:00 +0000</pubDate>
<description>Fine.</description>
</item>
<item>
{title}<link>https://new.example.org/when.html</link>
<guid>https://new.example.org/?p=2</guid>
<pubDate>{date}</pubDate>
<description>When?</description>
</item>
</channel>
</rss>
"""

NEW_ATOM = """\
<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Another blog</title>
<id>https://new.example.org/</id>
<updated>2012-08-28T10:00:00Z</updated>
<link href="https://new.example.org/"/>
<entry>
<title>A fine new post</title>
<id>https://new.example.org/?p=1</id>
<link href="https://new.example.org/fine.html"/>
<updated>2012-08-28T10:00:00Z</updated>
<content type="html">Fine.</content>
</entry>
<entry>
{title}<id>https://new.example.org/?p=2</id>
<link href="https://new.example.org/when.html"/>
{dates}
<content type="html">When?</content>
</entry>
</feed>
"""

TITLE = "<title>Nobody knows when</title>\n"
BAD_DATES = [
    ("new.xml", NEW_RSS.format(title=TITLE, date="Wed, 32 Aug 2012 10:00:00 +0000"),
     "pubDate", "Wed, 32 Aug 2012 10:00:00 +0000", "item 'Nobody knows when'"),
    ("new.xml", NEW_RSS.format(title="", date="sometime last week"),
     "pubDate", "sometime last week", "item 'https://new.example.org/?p=2'"),
    ("new.atom", NEW_ATOM.format(
        title=TITLE,
        dates="<published>sometime last week</published>\n<updated>2012-08-28T10:00:00Z</updated>",
    ), "published", "sometime last week", "item 'Nobody knows when'"),
    ("new.atom", NEW_ATOM.format(
        title=TITLE, dates="<updated>Wed, 32 Aug 2012 10:00:00 +0000</updated>"
    ), "updated", "Wed, 32 Aug 2012 10:00:00 +0000", "item 'Nobody knows when'"),
    # Days that do not exist: feedparser moves them on (30 February becomes 1 March).
    ("new.xml", NEW_RSS.format(title=TITLE, date="Thu, 30 Feb 2012 10:00:00 +0000"),
     "pubDate", "Thu, 30 Feb 2012 10:00:00 +0000", "item 'Nobody knows when'"),
    ("new.atom", NEW_ATOM.format(
        title=TITLE,
        dates="<published>2012-02-30T10:00:00Z</published>\n<updated>2012-08-28T10:00:00Z</updated>",
    ), "published", "2012-02-30T10:00:00Z", "item 'Nobody knows when'"),
    ("new.atom", NEW_ATOM.format(
        title=TITLE, dates="<updated>2011-02-29T10:00:00+02:00</updated>"
    ), "updated", "2011-02-29T10:00:00+02:00", "item 'Nobody knows when'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text", "tag", "value", "item"),
    BAD_DATES,
    ids=["rss-day-32", "rss-no-title", "atom-published", "atom-updated", "rss-30-february",
         "atom-30-february", "atom-29-february-2011"],
)  # fmt: skip
def test_a_feed_item_whose_date_does_not_parse_stops_the_import(
    site: Path, name: str, text: str, tag: str, value: str, item: str
) -> None:
    (site / name).write_text(text, encoding="utf-8")
    line = text[: text.index(f"<{tag}>{value}")].count("\n") + 1
    before = dump(site / "posts.db")
    result = import_(name)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {name}, entry 2, line {line}: {item} has a <{tag}> that is not a date: "
        f"{value!r}; nothing imported\n"
    )
    assert dump(site / "posts.db") == before


def test_a_feed_item_without_a_date_is_still_imported_as_a_draft(site: Path) -> None:
    text = NEW_RSS.format(title=TITLE, date="").replace("<pubDate></pubDate>\n", "")
    assert text.count("<pubDate>") == 1
    (site / "new.xml").write_text(text, encoding="utf-8")
    result = import_("new.xml")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Imported 2 posts from new.xml (2 new, 0 updated, 0 unchanged)\n"
    db = open_db(site / "posts.db")
    assert store.get_post(db, "fine").status == "published"
    undated = store.get_post(db, "when")
    assert (undated.status, undated.published_at) == ("draft", None)


# --- updates that would empty a published post -----------------------------------------------


def emptied_feed() -> bytes:
    """The same five posts, where post 3 has lost its body, topics and author."""
    data = another_blog_feed().decode()
    start = data.index("<item>", data.index("?p=2"))
    end = data.index("</item>", start)
    item = data[start:end]
    lean = (
        "<item><title>Post number 3 on Internet governance</title>"
        "<link>https://old.example.org/2012/07/post-3.html</link>"
        '<guid isPermaLink="false">https://old.example.org/?p=3</guid>'
        "<pubDate>Tue, 03 Jul 2012 09:00:00 +0000</pubDate>"
    )
    assert "?p=3" in item
    return (data[:start] + lean + data[end:]).encode()


def test_an_import_that_would_empty_a_published_post_is_refused(site: Path) -> None:
    (site / "lean.xml").write_bytes(emptied_feed())
    before = dump(site / "posts.db")
    result = import_("lean.xml")
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "Error: lean.xml, entry 3: would empty the body, topics and author of published post "
        "'post-3' (pass --allow-blanking if that is meant)\n"
    )
    assert dump(site / "posts.db") == before


def test_allow_blanking_lets_the_import_empty_the_post(site: Path) -> None:
    (site / "lean.xml").write_bytes(emptied_feed())
    result = import_("lean.xml", "--allow-blanking")
    assert result.exit_code == 0, result.output
    post = store.get_post(open_db(site / "posts.db"), "post-3")
    assert (post.body_html, post.topics, post.author) == ("", [], "")


def test_a_json_import_that_empties_a_body_is_refused_but_drafts_may_be_emptied(
    site: Path,
) -> None:
    records = [
        {"title": "A draft", "slug": "a-draft", "body": "<p>Text</p>", "status": "draft"},
        {"title": "Post number 1 on Internet governance", "slug": "post-1", "body": ""},
    ]
    (site / "posts.json").write_text(json.dumps(records[:1]), encoding="utf-8")
    assert import_("posts.json").exit_code == 0
    emptied_draft = [{**records[0], "body": ""}]
    (site / "posts.json").write_text(json.dumps(emptied_draft), encoding="utf-8")
    result = import_("posts.json")
    assert result.exit_code == 0, result.output  # a draft is nobody's yet
    (site / "posts.json").write_text(json.dumps(records[1:]), encoding="utf-8")
    result = import_("posts.json")
    assert result.exit_code == 1
    assert "would empty the body, topics and author of published post 'post-1'" in result.stderr


def test_posts_edit_refuses_to_empty_a_published_body_unless_asked(site: Path) -> None:
    before = dump(site / "posts.db")
    result = CliRunner().invoke(cli, ["posts", "edit", "post-2", "--body", ""])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: would empty the body of published post 'post-2' "
        "(pass --allow-blanking if that is meant)\n"
    )
    assert dump(site / "posts.db") == before
    result = CliRunner().invoke(cli, ["posts", "edit", "post-2", "--body", "", "--allow-blanking"])
    assert result.exit_code == 0, result.output
    assert store.get_post(open_db(site / "posts.db"), "post-2").body_html == ""
