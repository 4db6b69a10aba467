"""policyfeed check, feeds: each rule fires on a built feed that breaks it, with its report line.

The demo site is built, then one file is changed the way a faulty build (or a hostile post)
would have written it, and the check must say so, naming the file and the place.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import sqlite_utils

from check_support import build, edit, errors, scrub_lines, site_lines
from policyfeed.config import Settings

ITU = "tag:policy.example.org,2012-07-25:posts/itu-council-refers-internet-issues-to-wtsa"
ITU_URL = "https://policy.example.org/posts/itu-council-refers-internet-issues-to-wtsa/"
IETF = "tag:policy.example.org,2012-07-25:posts/public-policy-guests-at-ietf-84-vancouver"
BEIJING = "tag:policy.example.org,2012-07-23:posts/beijing-treaty-on-audiovisual-performances"
ACTA = "tag:policy.example.org,2012-07-09:posts/acta-and-tppa-a-coincidence-worth-exploring"
PREV_ARCHIVE_2 = (
    '<link href="https://policy.example.org/archive/2/atom.xml" rel="prev-archive" '
    'type="application/atom+xml"/>'
)


@pytest.fixture
def site(demo_db: sqlite_utils.Database, settings: Settings, now: datetime) -> Path:
    build(demo_db, settings, now)
    return settings.output_dir


@pytest.fixture
def archived(demo_db: sqlite_utils.Database, settings: Settings, now: datetime) -> Settings:
    """The demo built with two posts a feed: archive/1 holds two, archive/2 one (RFC 5005)."""
    return build(demo_db, settings, now, feed_limit=2)


def lines_of(db: sqlite_utils.Database, settings: Settings, now: datetime) -> list[str]:
    return site_lines(db, settings, now)


def test_the_demo_site_before_its_first_issue_passes(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    assert lines_of(demo_db, settings, now) == []


def test_a_site_with_one_post_a_feed_page_has_no_feed_errors(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    settings = build(demo_db, settings, now, feed_limit=1)
    assert errors(lines_of(demo_db, settings, now)) == []


def test_a_feed_date_after_now(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(
        site / "atom.xml",
        "<updated>2012-07-25T14:00:00+00:00</updated>\n  <author>",
        "<updated>2099-01-01T00:00:00+00:00</updated>\n  <author>",
    )
    assert lines_of(demo_db, settings, now) == [
        "ERROR feeds atom.xml: a date after now (2012-07-30T12:00:00Z), "
        "2099-01-01T00:00:00Z at feed updated"
    ]


def test_an_rss_item_dated_after_now(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(
        site / "feed.xml",
        "<pubDate>Wed, 25 Jul 2012 14:00:00 +0000</pubDate>\n      <dc",
        "<pubDate>Thu, 01 Jan 2099 00:00:00 +0000</pubDate>\n      <dc",
    )
    assert lines_of(demo_db, settings, now) == [
        "ERROR feeds feed.xml: a date after now (2012-07-30T12:00:00Z), "
        f"2099-01-01T00:00:00Z at entry {ITU} pubDate"
    ]


def test_the_date_is_judged_against_the_time_of_the_check(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    # 25 July 14:00 is the newest date of the demo: a check on the 25th at noon finds it late.
    early = now.replace(day=25)
    assert any(
        "a date after now (2012-07-25T12:00:00Z)" in line
        for line in lines_of(demo_db, settings, early)
    )
    assert lines_of(demo_db, settings, now) == []


def test_a_1970_date(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(
        site / "atom.xml",
        "<updated>2012-07-25T14:00:00+00:00</updated>",
        "<updated>1970-01-01T00:00:00+00:00</updated>",
    )
    assert site_lines(demo_db, settings, now) == [
        "ERROR feeds atom.xml: date 1970-01-01T00:00:00Z stands for no date, and some readers "
        "refuse the feed, feed updated"
    ]


def test_an_id_that_is_not_an_absolute_uri(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(site / "atom.xml", f"<id>{ITU}</id>", "<id>42</id>")
    lines = lines_of(demo_db, settings, now)
    assert lines[0] == "ERROR feeds atom.xml: id '42' is not an absolute URI, entry 42"
    # and the other feeds give the post its tag: id, which readers would see as another entry
    assert lines[1].startswith("ERROR feeds feed.json: an entry has another id in another feed, ")


def test_an_id_used_twice_in_one_document(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(site / "feed.json", f'"id": "{IETF}"', f'"id": "{ITU}"')
    lines = lines_of(demo_db, settings, now)
    assert f"ERROR feeds feed.json: id {ITU} is used twice in the document" in lines


def test_a_truncated_feed_is_not_well_formed(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    data = (site / "feed.xml").read_bytes()
    (site / "feed.xml").write_bytes(data[: data.index(b"<item>") + 20])
    [line] = scrub_lines(lines_of(demo_db, settings, now))
    assert line.startswith("ERROR feeds feed.xml: not well-formed XML: Premature end of data")
    assert re.search(r", line N, column \d+$", line), line


def test_a_feed_that_lxml_reads_but_feedparser_does_not(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    # An entity declared in a DOCTYPE: well-formed XML, but feedparser (and readers built on
    # it) refuse the document.
    edit(
        site / "atom.xml",
        "<?xml version='1.0' encoding='UTF-8'?>",
        "<?xml version='1.0' encoding='UTF-8'?>\n<!DOCTYPE feed [<!ENTITY org \"ISOC\">]>",
    )
    edit(site / "atom.xml", ">Public Policy</title>", ">Public Policy &org;</title>")
    assert scrub_lines(lines_of(demo_db, settings, now)) == [
        "ERROR feeds atom.xml: feedparser cannot read it cleanly: syntax error, line N"
    ]


def test_a_self_link_that_is_not_the_files_url(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(
        site / "topics" / "ietf" / "atom.xml",
        'href="https://policy.example.org/topics/ietf/atom.xml" rel="self"',
        'href="https://policy.example.org/atom.xml" rel="self"',
    )
    assert lines_of(demo_db, settings, now) == [
        "ERROR feeds topics/ietf/atom.xml: the rel=self link is https://policy.example.org/atom.xml"
        ", not the file's public URL https://policy.example.org/topics/ietf/atom.xml"
    ]


def test_a_json_feed_url_that_is_not_the_files_url(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(
        site / "feed.json", '"https://policy.example.org/feed.json"', '"http://localhost/feed.json"'
    )
    assert lines_of(demo_db, settings, now) == [
        "ERROR feeds feed.json: the feed_url is http://localhost/feed.json, not the file's public "
        "URL https://policy.example.org/feed.json"
    ]


def test_json_feed_required_members(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(site / "feed.json", '"version": "https://jsonfeed.org/version/1.1",\n', "")
    edit(site / "topics" / "ietf" / "feed.json", '"items": [', '"entries": [')
    edit(site / "topics" / "itu-wcit" / "feed.json", '"content_html"', '"content"', count=2)
    lines = lines_of(demo_db, settings, now)
    assert "ERROR feeds feed.json: version is None, not https://jsonfeed.org/version/1.1" in lines
    assert "ERROR feeds topics/ietf/feed.json: no items array (JSON Feed 1.1 requires one)" in lines
    assert (
        "ERROR feeds topics/itu-wcit/feed.json: neither content_html nor content_text "
        f"(JSON Feed 1.1), entry {ITU}"
    ) in lines


def test_markup_in_an_atom_text_construct_must_be_declared_html(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(
        site / "atom.xml", '<title type="html">ITU Council', "<title>&lt;b&gt;ITU&lt;/b&gt; Council"
    )
    edit(
        site / "topics" / "itu-wcit" / "atom.xml",
        '<title type="html">ITU Council',
        '<title type="html">&lt;b&gt;ITU&lt;/b&gt; Council',
    )
    assert lines_of(demo_db, settings, now) == [
        "ERROR feeds atom.xml: type=text but holds markup-like text '<b', which readers render as "
        f"HTML (declare type=html and escape it), entry {ITU} title"
    ]


def test_an_entry_linking_to_a_page_the_site_does_not_have(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    (site / "posts" / "itu-council-refers-internet-issues-to-wtsa" / "index.html").unlink()
    lines = lines_of(demo_db, settings, now)
    assert lines[0] == (
        "ERROR feeds atom.xml: links to posts/itu-council-refers-internet-issues-to-wtsa/index.html"
        f", which the site does not have, entry {ITU} (and 8 more files)"
    )


def test_an_entry_whose_id_changed_since_the_last_check(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    assert lines_of(demo_db, settings, now) == []  # the check that remembers the ids
    edit(site / "atom.xml", f"<id>{ITU}</id>", "<id>tag:policy.example.org,2012-07-26:x</id>")
    lines = lines_of(demo_db, settings, now)
    assert lines[0] == (
        "ERROR feeds atom.xml: entries have a new id since the last check: readers will show them "
        f"again, {ITU_URL} was {ITU}, now tag:policy.example.org,2012-07-26:x"
    )


# --- RFC 5005 histories ------------------------------------------------------------------------


def test_the_archived_demo_passes(
    demo_db: sqlite_utils.Database, archived: Settings, now: datetime
) -> None:
    assert lines_of(demo_db, archived, now) == []


def test_a_missing_archive_page(
    demo_db: sqlite_utils.Database, archived: Settings, now: datetime
) -> None:
    (archived.output_dir / "archive" / "1" / "atom.xml").unlink()
    assert lines_of(demo_db, archived, now) == [
        "ERROR feeds atom.xml: archive page archive/1/atom.xml is missing, prev-archive of "
        "archive/2/atom.xml",
        "ERROR feeds atom.xml: the feed and its archive pages hold 3 of the 5 posts published by "
        "now: the rest cannot be reached (is the build older than the database?)",
    ]


def test_archive_pages_no_chain_reaches(
    demo_db: sqlite_utils.Database, archived: Settings, now: datetime
) -> None:
    edit(archived.output_dir / "atom.xml", PREV_ARCHIVE_2, "")
    assert lines_of(demo_db, archived, now) == [
        "ERROR feeds archive/1/atom.xml: archive page that no feed's prev-archive chain reaches "
        "(also archive/2/atom.xml)",
        "ERROR feeds atom.xml: the feed and its archive pages hold 2 of the 5 posts published by "
        "now: it has no RFC 5005 archive, so readers cannot reach the rest",
    ]


def test_an_archive_page_linking_another_feed_as_current(
    demo_db: sqlite_utils.Database, archived: Settings, now: datetime
) -> None:
    edit(
        archived.output_dir / "archive" / "1" / "atom.xml",
        'href="https://policy.example.org/atom.xml" rel="current"',
        'href="https://policy.example.org/topics/ietf/atom.xml" rel="current"',
    )
    assert lines_of(demo_db, archived, now) == [
        "ERROR feeds archive/1/atom.xml: archive page whose rel=current link is "
        "https://policy.example.org/topics/ietf/atom.xml, not the feed "
        "https://policy.example.org/atom.xml"
    ]


def test_a_post_twice_in_a_feeds_history(
    demo_db: sqlite_utils.Database, archived: Settings, now: datetime
) -> None:
    edit(
        archived.output_dir / "archive" / "1" / "atom.xml",
        f"<id>{ACTA}</id>",
        f"<id>{BEIJING}</id>",
    )
    lines = lines_of(demo_db, archived, now)
    assert (
        "ERROR feeds atom.xml: entries appear twice in the feed's history, "
        f"{BEIJING} in archive/2/atom.xml and archive/1/atom.xml"
    ) in lines


def test_a_feed_without_its_history(
    demo_db: sqlite_utils.Database, archived: Settings, now: datetime
) -> None:
    """A feed cut at feed_limit with no archive loses the rest."""
    out = archived.output_dir
    edit(out / "atom.xml", PREV_ARCHIVE_2, "")
    shutil.rmtree(out / "archive")
    lines = scrub_lines(lines_of(demo_db, archived, now))
    assert lines[0] == (
        "ERROR feeds atom.xml: the feed and its archive pages hold 2 of the 5 posts published by "
        "now: it has no RFC 5005 archive, so readers cannot reach the rest"
    )
    assert (
        "ERROR site index.html: links to archive/2/index.html, which the site does not have "
        "(a 404), line N"
    ) in lines


IP_TOPIC = "topics/intellectual-property/"


def test_a_topic_feed_with_a_missing_archive_page(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    settings = build(demo_db, settings, now, feed_limit=1)  # its two posts: one a page
    (settings.output_dir / IP_TOPIC / "archive" / "1" / "atom.xml").unlink()
    assert errors(lines_of(demo_db, settings, now)) == [
        f"ERROR feeds {IP_TOPIC}atom.xml: archive page {IP_TOPIC}archive/1/atom.xml is missing, "
        f"prev-archive of {IP_TOPIC}atom.xml",
        f"ERROR feeds {IP_TOPIC}atom.xml: the feed and its archive pages hold 1 of the 2 posts on "
        "the topic intellectual-property: the rest cannot be reached (is the build older than "
        "the database?)",
    ]


def test_a_topic_archive_page_linking_the_site_feed_as_current(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    settings = build(demo_db, settings, now, feed_limit=1)
    edit(
        settings.output_dir / IP_TOPIC / "archive" / "1" / "atom.xml",
        f'href="https://policy.example.org/{IP_TOPIC}atom.xml" rel="current"',
        'href="https://policy.example.org/atom.xml" rel="current"',
    )
    assert errors(lines_of(demo_db, settings, now)) == [
        f"ERROR feeds {IP_TOPIC}archive/1/atom.xml: archive page whose rel=current link is "
        "https://policy.example.org/atom.xml, not the feed "
        f"https://policy.example.org/{IP_TOPIC}atom.xml"
    ]
