"""Importers: JSON, JSON Lines, CSV, Markdown with front matter, RSS and Atom.

Re-imports update instead of duplicating; every bad input is a one-line error naming the file and
the record or line, a non-zero exit, and nothing written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlite_utils
from click.testing import CliRunner

from policyfeed.cli import cli
from policyfeed.content.importers import RECORD_KEYS, ImportResult, detect_format, import_posts
from policyfeed.errors import InputError
from policyfeed.model import Topic
from policyfeed.store import open_db
from policyfeed.store import posts as store

BASE = "https://policy.example.org/"
ZURICH = ZoneInfo("Europe/Zurich")
NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)
KNOWN = ", ".join(sorted(RECORD_KEYS))
CONFIG = """\
[site]
title = "Public Policy"
base_url = "https://policy.example.org/"
timezone = "Europe/Zurich"
"""


def run_import(
    db: sqlite_utils.Database, path: Path, fmt: str | None = None, now: datetime = NOW
) -> ImportResult:
    return import_posts(
        db, path, fmt=fmt, base_url=BASE, tz=ZURICH, domain="policy.example.org", now=now
    )


def slugs(db: sqlite_utils.Database) -> list[str]:
    return [row[0] for row in db.execute("SELECT slug FROM posts ORDER BY slug").fetchall()]


def updated_times(db: sqlite_utils.Database) -> dict[str, str]:
    return dict(db.execute("SELECT slug, updated_at FROM posts").fetchall())


def write_json(path: Path, records: Any) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def rss_feed(path: Path) -> Path:
    """An RSS 2.0 file as another blog (written with feedgen) would serve it."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    fg.id("https://old.example.org/")
    fg.title("The old policy blog")
    fg.link(href="https://old.example.org/", rel="alternate")
    fg.description("Posts to move")
    fg.lastBuildDate(datetime(2012, 7, 26, tzinfo=UTC))
    first = fg.add_entry(order="append")
    first.id("https://old.example.org/?p=101")
    first.title("The Beijing Treaty & performers")
    first.link(href="https://old.example.org/2012/07/beijing-treaty.html")
    first.description("<p>A <b>short</b> summary.</p>")
    first.content('<p>Body with <a href="/ip/">a link</a>.</p><script>x()</script>', type="CDATA")
    first.published(datetime(2012, 7, 23, 9, 0, tzinfo=UTC))
    first.category(term="Intellectual property")
    first.author(name="Ann Editor", email="ann@example.org")
    second = fg.add_entry(order="append")
    second.id("https://old.example.org/?p=102")
    second.title("ACTA and the TPPA")
    second.link(href="https://old.example.org/?p=102")
    second.description("<p>Only a description.</p>")
    second.published(datetime(2012, 7, 9, 9, 0, tzinfo=UTC))
    second.category(term="Intellectual property")
    second.category(term="Trade agreements")
    path.write_bytes(fg.rss_str(pretty=True))
    return path


ATOM = """\
<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Old Atom blog</title>
  <id>tag:old.example.org,2012:feed</id>
  <updated>2012-07-26T10:00:00Z</updated>
  <link href="https://old.example.org/"/>
  <entry>
    <title type="html">IETF 84 in &lt;em&gt;Vancouver&lt;/em&gt;</title>
    <id>tag:old.example.org,2012-07-25:ietf-84</id>
    <link rel="alternate" href="https://old.example.org/posts/ietf-84/"/>
    <published>2012-07-25T09:00:00+02:00</published>
    <updated>2012-07-26T10:00:00Z</updated>
    <author><name>Policy team</name></author>
    <category term="IETF"/>
    <summary>Five guests.</summary>
    <content type="html">&lt;p&gt;The IETF meets in Vancouver.&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>WCIT preparation</title>
    <id>tag:old.example.org,2012-07-11:wcit</id>
    <link rel="alternate" href="https://old.example.org/posts/2012/07/11/"/>
    <updated>2012-07-11T09:00:00Z</updated>
    <content type="xhtml">
      <div xmlns="http://www.w3.org/1999/xhtml"><p>Ask your government.</p></div>
    </content>
  </entry>
</feed>
"""


def atom_feed(path: Path) -> Path:
    path.write_text(ATOM, encoding="utf-8")
    return path


# --- each format -----------------------------------------------------------------------------


def test_json_list_imports_every_post_with_its_fields(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = write_json(
        tmp_path / "posts.json",
        [
            {
                "title": "Preparing for WCIT",
                "summary": "Ask your government.",
                "body": "<p>WCIT is <b>coming</b>.</p>",
                "topics": ["ITU / WCIT", "Internet governance"],
                "published_at": "2012-07-11T09:00:00",
                "author": "Policy team",
            },
            {"title": "A draft", "slug": "a-draft", "body_markdown": "*soon*"},
        ],
    )
    result = run_import(db, path)
    assert (result.created, result.updated, result.total) == (2, 0, 2)
    post = store.get_post(db, "preparing-for-wcit")
    assert post.status == "published"
    assert post.published_at == datetime(2012, 7, 11, 7, 0, tzinfo=UTC)
    assert post.body_html == "<p>WCIT is <b>coming</b>.</p>"
    assert [t.name for t in post.topics] == ["Internet governance", "ITU / WCIT"]  # by name
    assert post.guid == "tag:policy.example.org,2012-07-11:posts/preparing-for-wcit"
    draft = store.get_post(db, "a-draft")
    assert (draft.status, draft.body_html, draft.guid) == ("draft", "<p><em>soon</em></p>", None)


def test_one_import_finds_each_topic_by_name_then_by_slug_and_makes_it_once(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    # An editor made "ITU" with the slug "itu-wcit"; a topic named "ITU WCIT" (slug itu-wcit)
    # is that one too, and a new name gets one new topic however many posts carry it.
    store.add_topic(db, Topic("itu-wcit", "ITU"))
    records = [
        {"title": f"Post {n}", "date": f"2012-07-0{n}", "topics": topics}
        for n, topics in enumerate(
            (["ITU"], ["ITU WCIT", "Spectrum"], ["spectrum", "ITU"], ["Spectrum"]), start=1
        )
    ]
    run_import(db, write_json(tmp_path / "posts.json", records))
    assert [(r["slug"], r["name"]) for r in db["topics"].rows_where(order_by="id")] == [
        ("itu-wcit", "ITU"),
        ("spectrum", "Spectrum"),
    ]
    shown = {p: [t.slug for t in store.get_post(db, p).topics] for p in slugs(db)}
    assert shown == {
        "post-1": ["itu-wcit"],
        "post-2": ["itu-wcit", "spectrum"],
        "post-3": ["itu-wcit", "spectrum"],
        "post-4": ["spectrum"],
    }


def test_json_object_with_a_posts_list_is_accepted(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = write_json(tmp_path / "export.json", {"posts": [{"title": "One"}]})
    assert run_import(db, path).created == 1
    assert slugs(db) == ["one"]


def test_json_lines_with_blank_lines_and_a_line_separator_inside_a_string(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "posts.jsonl"
    first = json.dumps({"title": "One", "body": "<p>a\u2028b</p>"}, ensure_ascii=False)
    second = json.dumps({"title": "Two", "date": "2012-07-25"})
    path.write_text(f"{first}\r\n\n{second}\n", encoding="utf-8")
    assert run_import(db, path).created == 2
    assert store.get_post(db, "one").body_html == "<p>a\u2028b</p>"
    assert store.get_post(db, "two").status == "published"


def test_csv_with_a_bom_quoted_multiline_body_and_topics(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(
        "\ufefftitle,slug,date,topics,body\n"
        'ACTA and TPPA,acta,2012-07-09 09:00,"Intellectual property; Trade agreements",'
        '"<p>One</p>\n<p>Two</p>"\n'
        "IETF 84,,,IETF,\n",
        encoding="utf-8",
    )
    assert run_import(db, path).created == 2
    acta = store.get_post(db, "acta")
    assert acta.published_at == datetime(2012, 7, 9, 7, 0, tzinfo=UTC)
    assert acta.body_html == "<p>One</p>\n<p>Two</p>"
    assert acta.topics == [
        Topic("intellectual-property", "Intellectual property"),
        Topic("trade-agreements", "Trade agreements"),
    ]
    assert store.get_post(db, "ietf-84").status == "draft"


def test_markdown_folder_with_front_matter(db: sqlite_utils.Database, tmp_path: Path) -> None:
    folder = tmp_path / "content"
    folder.mkdir()
    (folder / "Beijing_Treaty.md").write_text(
        "---\ntitle: The Beijing Treaty\ndate: 2012-07-23\ntags: [Intellectual property]\n"
        "summary: Performers get rights.\n---\n\n## Why\n\nActors *finally* [win](/ip/).\n",
        encoding="utf-8",
    )
    (folder / "wcit.md").write_text(
        "---\ntitle: WCIT\nslug: wcit-preparation\nstatus: draft\n---\nAsk.\n", encoding="utf-8"
    )
    (folder / "notes.txt").write_text("not a post", encoding="utf-8")
    assert run_import(db, folder).created == 2
    assert slugs(db) == ["beijing-treaty", "wcit-preparation"]
    post = store.get_post(db, "beijing-treaty")
    assert post.published_at == datetime(2012, 7, 22, 22, 0, tzinfo=UTC)
    assert post.body_html == (  # a link to the site itself is stored relative to it
        '<h2>Why</h2>\n<p>Actors <em>finally</em> <a href="./ip/" rel="noopener">win</a>.</p>'
    )
    assert post.summary == "Performers get rights."
    assert [t.slug for t in post.topics] == ["intellectual-property"]
    assert store.get_post(db, "wcit-preparation").status == "draft"


def test_rss_feed_written_by_another_blog(db: sqlite_utils.Database, tmp_path: Path) -> None:
    assert run_import(db, rss_feed(tmp_path / "old.rss")).created == 2
    post = store.get_post(db, "beijing-treaty")
    assert post.title == "The Beijing Treaty & performers"
    assert post.guid == "https://old.example.org/?p=101"
    assert post.url == "https://old.example.org/2012/07/beijing-treaty.html"
    assert post.published_at == datetime(2012, 7, 23, 9, 0, tzinfo=UTC)
    assert post.summary == "A short summary."
    # The old blog's relative link means a page of the old blog (#15), not of this site.
    assert post.body_html == (
        '<p>Body with <a href="https://old.example.org/ip/" rel="noopener">a link</a>.</p>'
    )
    assert post.author == "Ann Editor"
    assert [t.name for t in post.topics] == ["Intellectual property"]
    # A link with no name in it (?p=102) gives way to the title.
    acta = store.get_post(db, "acta-and-the-tppa")
    assert acta.body_html == "<p>Only a description.</p>"
    assert [t.slug for t in acta.topics] == ["intellectual-property", "trade-agreements"]


def test_atom_feed(db: sqlite_utils.Database, tmp_path: Path) -> None:
    assert run_import(db, atom_feed(tmp_path / "old.atom")).created == 2
    post = store.get_post(db, "ietf-84")
    assert post.title == "IETF 84 in Vancouver"
    assert post.guid == "tag:old.example.org,2012-07-25:ietf-84"
    assert post.published_at == datetime(2012, 7, 25, 7, 0, tzinfo=UTC)
    assert post.updated_at == datetime(2012, 7, 26, 10, 0, tzinfo=UTC)
    assert (post.summary, post.body_html) == ("Five guests.", "<p>The IETF meets in Vancouver.</p>")
    assert post.author == "Policy team"
    # No <published>: the entry is dated by <updated>; a date-only link names no post.
    wcit = store.get_post(db, "wcit-preparation")
    assert wcit.published_at == datetime(2012, 7, 11, 9, 0, tzinfo=UTC)
    assert "Ask your government." in wcit.body_html


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.json", b"[]", "json"),
        ("a.jsonl", b"", "jsonl"),
        ("a.ndjson", b"", "jsonl"),
        ("a.CSV", b"", "csv"),
        ("a.md", b"", "markdown"),
        ("a.rss", b"", "feed"),
        ("a.atom", b"", "feed"),
        ("a.xml", b"", "feed"),
        ("export", b"  <?xml version='1.0'?><rss/>", "feed"),
        ("export", b'[{"title": "x"}]', "json"),
        ("export", b'{"title": "x"}\n{"title": "y"}\n', "jsonl"),
        ("export", b'{\n  "posts": []\n}', "json"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert detect_format(path) == expected


def test_a_folder_is_markdown_and_an_unknown_file_needs_format(tmp_path: Path) -> None:
    assert detect_format(tmp_path) == "markdown"
    (tmp_path / "posts.txt").write_text("title: x\n")
    with pytest.raises(InputError, match=r"posts\.txt: cannot tell the format; pass --format"):
        detect_format(tmp_path / "posts.txt")


# --- re-import -------------------------------------------------------------------------------


def write_markdown_folder(path: Path) -> Path:
    path.mkdir()
    (path / "one.md").write_text("---\ntitle: One\ndate: 2012-07-09\n---\nFirst.\n")
    (path / "two.md").write_text("---\ntitle: Two\ndate: 2012-07-11\ntags: IETF\n---\nSecond.\n")
    return path


def write_csv(path: Path) -> Path:
    path.write_text("title,date,topics\nOne,2012-07-09,IETF\nTwo,2012-07-11,\n")
    return path


def write_jsonl(path: Path) -> Path:
    path.write_text('{"title": "One", "date": "2012-07-09"}\n{"title": "Two"}\n')
    return path


def write_demo_json(path: Path) -> Path:
    return write_json(path, [{"title": "One", "date": "2012-07-09", "topics": ["IETF"]}])


SOURCES: dict[str, Callable[[Path], Path]] = {
    "posts.json": write_demo_json,
    "posts.jsonl": write_jsonl,
    "posts.csv": write_csv,
    "content": write_markdown_folder,
    "old.rss": rss_feed,
    "old.atom": atom_feed,
}


def post_rows(db: sqlite_utils.Database) -> list[tuple[Any, ...]]:
    return db.execute("SELECT * FROM posts ORDER BY id").fetchall()


def journal_end(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT coalesce(max(seq), 0) FROM post_journal").fetchone()[0])


@pytest.mark.parametrize("name", list(SOURCES))
def test_an_unchanged_reimport_counts_the_posts_unchanged_and_writes_no_row(
    db: sqlite_utils.Database, tmp_path: Path, name: str
) -> None:
    path = SOURCES[name](tmp_path / name)
    first = run_import(db, path)
    before, journal = post_rows(db), journal_end(db)
    second = run_import(db, path, now=LATER)
    assert (second.created, second.updated, second.unchanged) == (0, 0, first.created)
    assert second.total == first.created
    assert post_rows(db) == before  # updated_at too
    assert journal_end(db) == journal  # no row, no topic rewritten: nothing for a build to redo


@pytest.mark.parametrize("name", ["posts.json", "old.rss", "old.atom"])
def test_after_an_unchanged_reimport_a_build_writes_nothing(
    db: sqlite_utils.Database, settings: Any, tmp_path: Path, name: str
) -> None:
    from policyfeed.site.build import build_site

    path = SOURCES[name](tmp_path / name)
    run_import(db, path)
    out = tmp_path / "public"
    build_site(db, settings, out, NOW)
    run_import(db, path, now=LATER)
    again = build_site(db, settings, out, NOW)
    assert (again.written, again.removed, again.full) == ([], [], False)


def test_a_changed_reimport_updates_only_the_changed_post(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    records = [{"title": "One", "date": "2012-07-09"}, {"title": "Two", "date": "2012-07-11"}]
    path = write_json(tmp_path / "posts.json", records)
    run_import(db, path)
    before = updated_times(db)
    records[1]["summary"] = "Now with a summary."
    write_json(path, records)
    changed = run_import(db, path, now=LATER)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 1)
    after = updated_times(db)
    assert after["one"] == before["one"]
    assert after["two"] == "2012-07-31T12:00:00Z"
    assert store.get_post(db, "two").summary == "Now with a summary."


def test_reimporting_a_feed_matches_posts_by_guid_even_after_a_slug_change(
    db: sqlite_utils.Database, tmp_path: Path
) -> None:
    path = rss_feed(tmp_path / "old.rss")
    run_import(db, path)
    with db.conn:
        db.execute("UPDATE posts SET slug = 'renamed' WHERE slug = 'beijing-treaty'")
    result = run_import(db, path, now=LATER)
    # The slug comes from the feed again; the post is the same one (same guid, same id).
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    assert slugs(db) == ["acta-and-the-tppa", "beijing-treaty"]


# --- bad input, through the CLI --------------------------------------------------------------


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """posts.db with one published post, and the site's config."""
    (tmp_path / "policyfeed.toml").write_text(CONFIG, encoding="utf-8")
    db = open_db(tmp_path / "posts.db")
    write_json(tmp_path / "seed.json", [{"title": "Existing", "date": "2012-07-01"}])
    run_import(db, tmp_path / "seed.json")
    db.conn.close()
    return tmp_path / "posts.db"


GOOD = {"title": "Good one", "date": "2012-07-20"}
GOOD2 = {"title": "Good two", "date": "2012-07-21"}
UNPARSABLE = "(use ISO 8601, e.g. 2012-07-25 or 2012-07-25T09:00:00+02:00)"

BAD_INPUTS: list[tuple[str, bytes, str]] = [
    (
        "posts.json",
        json.dumps([GOOD, GOOD2, {"slug": "untitled", "date": "2012-07-22"}]).encode(),
        "posts.json, record 3: missing title",
    ),
    (
        "posts.json",
        json.dumps([GOOD, {"title": "When?", "published_at": "next week"}]).encode(),
        f"posts.json, record 2: unparsable date 'next week' {UNPARSABLE}",
    ),
    (
        "posts.jsonl",
        (json.dumps(GOOD) + "\n" + json.dumps({"title": "Bad", "date": "2012-02-30"})).encode(),
        f"posts.jsonl, line 2: unparsable date '2012-02-30' {UNPARSABLE}",
    ),
    (
        "posts.json",
        json.dumps([GOOD, GOOD2, {"title": "Good one again", "slug": "good-one"}]).encode(),
        "posts.json, record 3: duplicate slug 'good-one' (also at record 1)",
    ),
    (
        "posts.csv",
        b"title,date\nGood one,2012-07-20\nGood two,2012-07-21\nGood one,2012-07-22\n",
        "posts.csv, line 4: duplicate slug 'good-one' (also at line 2)",
    ),
    (
        "posts.json",
        json.dumps([{**GOOD, "guid": "urn:x:1"}, {**GOOD2, "guid": "urn:x:1"}]).encode(),
        "posts.json, record 2: duplicate guid 'urn:x:1' (also at record 1)",
    ),
    (
        "posts.csv",
        b"title,slug\nGood,good\nCaf\xe9 politique,cafe\n",
        "posts.csv, line 3: not UTF-8 text (byte 0xe9 at offset 24)",
    ),
    (
        "posts.json",
        b'[{"title": "Good"},\n {"title": "Caf\xe9"}]',
        "posts.json, line 2: not UTF-8 text (byte 0xe9 at offset 35)",
    ),
    (
        "posts.csv",
        b'title,slug\nGood,good\n"Bad"quote,bad\n',
        "posts.csv, line 3: malformed CSV: ',' expected after '\"'",
    ),
    (
        "posts.csv",
        b"title,slug\nGood,good\nBad,bad,extra\n",
        "posts.csv, line 3: more fields than the header has",
    ),
    (
        "posts.csv",
        b"title,slug,summary\nGood,good,fine\nBad,bad\n",
        "posts.csv, line 3: fewer fields than the header has",
    ),
    (
        "posts.csv",
        b'title,slug\nGood,good\nBad,"never closed\n',
        "posts.csv, line 3: malformed CSV: unexpected end of data",
    ),
    (
        "posts.csv",
        b"slug,summary\ngood,fine\n",
        "posts.csv, line 1: the header row has no 'title' column",
    ),
    (
        "posts.json",
        b'[{"title": "Good"},\n {"title": "Bad"\n]',
        "posts.json, line 3: malformed JSON: Expecting ',' delimiter",
    ),
    (
        "posts.jsonl",
        b'{"title": "Good"}\n{"title": "Bad",}\n',
        "posts.jsonl, line 2: malformed JSON: Expecting property name enclosed in double quotes",
    ),
    (
        "posts.jsonl",
        b'{"title": "Good"}\n["not", "an", "object"]\n',
        "posts.jsonl, line 2: a post must be an object",
    ),
    (
        "posts.json",
        json.dumps([GOOD, {"tittle": "Typo"}]).encode(),
        f"posts.json, record 2: unknown field(s) 'tittle' (known: {KNOWN})",
    ),
    (
        "posts.csv",
        b"title,colour\nGood,blue\n",
        f"posts.csv, line 1: unknown column(s) 'colour' (known: {KNOWN})",
    ),
    (
        "posts.json",
        json.dumps({"title": "One post, not a list"}).encode(),
        'posts.json: expected a list of posts (or {"posts": [...]})',
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "expected"), BAD_INPUTS, ids=[e for _, _, e in BAD_INPUTS]
)
def test_bad_input_is_one_line_naming_file_and_record_and_nothing_is_written(
    seeded: Path, name: str, content: bytes, expected: str
) -> None:
    (seeded.parent / name).write_bytes(content)
    before = dump(seeded)
    result = CliRunner().invoke(cli, ["--db", str(seeded), "posts", "import", name])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {expected}\n"
    assert dump(seeded) == before


MARKDOWN_BAD: list[tuple[str, str, str]] = [
    ("b.md", "---\nslug: b\n---\nNo title.\n", "content/b.md, front matter: missing title"),
    (
        "b.md",
        "---\ntitle: B\nlayout: post\n---\nx\n",
        f"content/b.md, front matter: unknown field(s) 'layout' (known: {KNOWN})",
    ),
    (
        "b.md",
        "---\ntitle: B\ndate: someday\n---\nx\n",
        f"content/b.md, front matter: unparsable date 'someday' {UNPARSABLE}",
    ),
    (
        "b.md",
        "---\ntitle: B\ndate: 2012-13-01\n---\nx\n",
        "content/b.md, line 3: unparsable date '2012-13-01' (month must be in 1..12)",
    ),
    (
        "b.md",
        "---\ntitle: B\ntopics: [IETF]\ndate: 2012-02-30\n---\nx\n",
        "content/b.md, line 4: unparsable date '2012-02-30' (day is out of range for month)",
    ),
    (
        "b.md",
        "---\ntitle: B\ndate: 2012-01-01 25:00:00\n---\nx\n",
        "content/b.md, line 3: unparsable date '2012-01-01 25:00:00' (hour must be in 0..23)",
    ),
    (
        "b.md",
        "---\ntitle: 2012-00-10\n---\nx\n",
        "content/b.md, line 2: unparsable date '2012-00-10' (month must be in 1..12)",
    ),
    (
        "b.md",
        "---\ntitle: B\nno closing line\n",
        "content/b.md, line 1: front matter is not closed by a '---' line",
    ),
    (
        "b.md",
        "---\ntitle: B\ntopics: [a, b\n---\nx\n",
        "content/b.md, line 3: malformed front matter: while parsing a flow sequence",
    ),
    (
        "b.md",
        "---\n- a list\n---\nx\n",
        "content/b.md, line 1: front matter must be key: value pairs",
    ),
    (
        "b.md",
        "---\ntitle: A again\nslug: a\n---\nx\n",
        "content/b.md, front matter: duplicate slug 'a' (also at front matter)",
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "expected"), MARKDOWN_BAD, ids=[e for *_, e in MARKDOWN_BAD]
)
def test_bad_markdown_file_is_named_and_nothing_is_written(
    seeded: Path, name: str, text: str, expected: str
) -> None:
    folder = seeded.parent / "content"
    folder.mkdir()
    (folder / "a.md").write_text("---\ntitle: A fine post\ndate: 2012-07-20\n---\nFine.\n")
    (folder / name).write_text(text, encoding="utf-8")
    before = dump(seeded)
    result = CliRunner().invoke(cli, ["--db", str(seeded), "posts", "import", "content"])
    assert (result.exit_code, result.stderr) == (1, f"Error: {expected}\n")
    assert dump(seeded) == before


def test_non_utf8_markdown_file_is_named(seeded: Path) -> None:
    folder = seeded.parent / "content"
    folder.mkdir()
    (folder / "a.md").write_bytes(b"---\ntitle: Fine\n---\nok\n")
    (folder / "b.md").write_bytes(b"---\ntitle: Caf\xe9\n---\n")
    before = dump(seeded)
    result = CliRunner().invoke(cli, ["--db", str(seeded), "posts", "import", "content"])
    assert result.exit_code == 1
    assert result.stderr == "Error: content/b.md, line 2: not UTF-8 text (byte 0xe9 at offset 14)\n"
    assert dump(seeded) == before


def test_feed_entry_without_a_title_is_named(seeded: Path) -> None:
    xml = ATOM.replace("<title>WCIT preparation</title>", "")
    (seeded.parent / "old.atom").write_text(xml, encoding="utf-8")
    before = dump(seeded)
    result = CliRunner().invoke(cli, ["--db", str(seeded), "posts", "import", "old.atom"])
    assert (result.exit_code, result.stderr) == (1, "Error: old.atom, entry 2: missing title\n")
    assert dump(seeded) == before


def test_a_file_that_is_not_a_feed_is_refused(seeded: Path) -> None:
    (seeded.parent / "page.xml").write_text("<html><body>hello</body></html>")
    result = CliRunner().invoke(cli, ["--db", str(seeded), "posts", "import", "page.xml"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: page.xml: not an RSS or Atom feed with entries (")
    assert result.stderr.count("\n") == 1


def test_a_conflict_after_good_records_rolls_the_whole_import_back(seeded: Path) -> None:
    db = open_db(seeded)
    run_import(db, write_json(seeded.parent / "two.json", [
        {"title": "Post A", "guid": "urn:a"}, {"title": "Post B"},
    ]))  # fmt: skip
    db.conn.close()
    before = dump(seeded)
    # Records 1 and 2 are new and fine; record 3 is post A (by guid) renamed to B's slug.
    records = [GOOD, GOOD2, {"title": "Post A", "guid": "urn:a", "slug": "post-b"}]
    write_json(seeded.parent / "posts.json", records)
    result = CliRunner().invoke(cli, ["--db", str(seeded), "posts", "import", "posts.json"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: posts.json, post 'post-b': slug 'post-b' is already used by another post\n"
    )
    assert dump(seeded) == before
    db = open_db(seeded)
    assert slugs(db) == ["existing", "post-a", "post-b"]


def test_an_unknown_config_key_stops_the_import_before_anything_is_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "policyfeed.toml").write_text(CONFIG + 'titel = "typo"\n')
    write_json(tmp_path / "posts.json", [GOOD])
    result = CliRunner().invoke(cli, ["--db", "posts.db", "posts", "import", "posts.json"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "policyfeed.toml: unknown key 'titel' in [site] (known: title, " in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "posts.db").exists()


def test_an_import_that_succeeds_reports_new_updated_and_unchanged(seeded: Path) -> None:
    edited = {"title": "Existing", "date": "2012-07-01", "summary": "Now with a summary."}
    write_json(seeded.parent / "posts.json", [GOOD, edited])
    result = CliRunner().invoke(cli, ["--db", str(seeded), "posts", "import", "posts.json"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Imported 2 posts from posts.json (1 new, 1 updated, 0 unchanged)\n"
    again = CliRunner().invoke(cli, ["--db", str(seeded), "posts", "import", "posts.json"])
    assert again.exit_code == 0, again.output
    assert again.stdout == "Imported 2 posts from posts.json (0 new, 0 updated, 2 unchanged)\n"


@pytest.mark.parametrize(
    ("name", "topics"),
    [("old.rss", "2 new topics: Intellectual property, Trade agreements"),
     ("old.atom", "1 new topic: IETF")],
)  # fmt: skip
def test_reimporting_an_unchanged_feed_file_says_unchanged(
    seeded: Path, name: str, topics: str
) -> None:
    path = SOURCES[name](seeded.parent / name)
    first = CliRunner().invoke(cli, ["--db", str(seeded), "posts", "import", path.name])
    assert first.stdout == (
        f"Imported 2 posts from {name} (2 new, 0 updated, 0 unchanged; {topics})\n"
    )
    again = CliRunner().invoke(cli, ["--db", str(seeded), "posts", "import", path.name])
    assert again.exit_code == 0, again.output
    assert again.stdout == f"Imported 2 posts from {name} (0 new, 0 updated, 2 unchanged)\n"
