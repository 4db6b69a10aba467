"""The digest's web archive: web versions, the index of issues, and feeds of issues."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import feedparser

from digest_support import NOW, add_post, approved_issue, demo_issue, parse
from policyfeed.digest.render import UNSUBSCRIBE_URL_TOKEN
from policyfeed.site.issue_archive import write_issue_archive
from policyfeed.store import posts as post_store

DAY = timedelta(days=1)


def test_each_issue_gets_a_web_version_at_issues_number(demo_db, settings, tmp_path) -> None:
    issue, posts = demo_issue(demo_db, settings, approved=True)
    out = tmp_path / "public"

    write_issue_archive(demo_db, settings, out)

    page = (out / "issues" / "1" / "index.html").read_text(encoding="utf-8")
    doc = parse(page)
    assert doc.get("lang") == "en"
    assert doc.findtext(".//title") == issue.subject
    assert [h.text_content() for h in doc.cssselect("article h2")] == [p.title for p in posts]
    canonical = doc.cssselect("link[rel=canonical]")[0].get("href")
    assert canonical == "https://policy.example.org/issues/1/"
    assert UNSUBSCRIBE_URL_TOKEN not in page and "%%" not in page


def test_web_versions_advertise_the_feeds_of_issues(demo_db, settings, tmp_path) -> None:
    demo_issue(demo_db, settings, approved=True)
    out = tmp_path / "public"

    write_issue_archive(demo_db, settings, out)

    for page in ("issues/index.html", "issues/1/index.html"):
        doc = parse((out / page).read_text(encoding="utf-8"))
        alternates = {
            link.get("type"): link.get("href") for link in doc.cssselect("link[rel=alternate]")
        }
        assert alternates == {
            "application/rss+xml": "https://policy.example.org/issues/feed.xml",
            "application/atom+xml": "https://policy.example.org/issues/atom.xml",
            "application/feed+json": "https://policy.example.org/issues/feed.json",
        }


def test_the_index_lists_every_issue_newest_first_with_neighbour_links(db, settings, tmp_path):
    for week in range(3):
        add_post(db, settings, f"post-{week}", date=NOW + week * 7 * DAY)
        approved_issue(db, settings, period=f"week-{week}", now=NOW + (week * 7 + 1) * DAY)
    out = tmp_path / "public"

    write_issue_archive(db, settings, out)

    index = parse((out / "issues" / "index.html").read_text(encoding="utf-8"))
    links = [a.get("href") for a in index.cssselect("ol.issues h2 a")]
    assert links == [f"{n}/" for n in (3, 2, 1)]  # relative: they work from `serve` too
    middle = parse((out / "issues" / "2" / "index.html").read_text(encoding="utf-8"))
    pager = [a.get("href") for a in middle.cssselect("nav.pager a")]
    assert pager == ["../1/", "../3/"]


def test_an_archive_without_issues_says_so_and_its_feeds_are_empty(db, settings, tmp_path):
    out = tmp_path / "public"

    write_issue_archive(db, settings, out)

    assert "No issues yet." in (out / "issues" / "index.html").read_text(encoding="utf-8")
    feed = feedparser.parse((out / "issues" / "atom.xml").read_bytes())
    assert feed.bozo == 0 and feed.entries == []


def test_the_feeds_of_issues_parse_and_agree_on_ids(demo_db, settings, tmp_path) -> None:
    issue, _ = demo_issue(demo_db, settings, approved=True)
    out = tmp_path / "public"

    write_issue_archive(demo_db, settings, out)

    expected_id = "tag:policy.example.org,2012-07-30:issues/1"
    for name in ("feed.xml", "atom.xml"):
        feed = feedparser.parse((out / "issues" / name).read_bytes())
        assert feed.bozo == 0, (name, feed.get("bozo_exception"))
        assert [e.id for e in feed.entries] == [expected_id]
        assert feed.entries[0].title == issue.subject
        assert feed.entries[0].link == "https://policy.example.org/issues/1/"
    data = json.loads((out / "issues" / "feed.json").read_text(encoding="utf-8"))
    assert data["version"] == "https://jsonfeed.org/version/1.1"
    assert [item["id"] for item in data["items"]] == [expected_id]
    content = data["items"][0]["content_html"]
    assert "https://policy.example.org/posts/wcit-preparation-ask-your-government/" in content


def test_the_archive_is_deterministic_and_a_second_build_rewrites_nothing(
    demo_db, settings, tmp_path
) -> None:
    demo_issue(demo_db, settings, approved=True)
    first, second = tmp_path / "one", tmp_path / "two"

    written = write_issue_archive(demo_db, settings, first)
    write_issue_archive(demo_db, settings, second)
    again = write_issue_archive(demo_db, settings, first)

    files = sorted(
        p.relative_to(first)
        for p in first.rglob("*")
        if p.is_file() and p.relative_to(first).parts[0] != ".policyfeed"  # the build state
    )
    assert sorted(p.relative_to(first) for p in written) == files
    assert len(files) == 5
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes()
    assert again == []


def test_a_post_unpublished_after_its_issue_leaves_the_web_version(db, settings, tmp_path):
    add_post(db, settings, "kept", title="Kept post")
    add_post(db, settings, "withdrawn", title="Withdrawn post")
    approved_issue(db, settings, period="week-1", now=NOW)
    post_store.set_status(db, "withdrawn", "draft", now=NOW + DAY, domain=settings.domain)
    out = tmp_path / "public"

    write_issue_archive(db, settings, out)

    page = (out / "issues" / "1" / "index.html").read_text(encoding="utf-8")
    assert "Kept post" in page and "Withdrawn post" not in page


def test_an_edited_post_updates_its_issue_entry_not_the_clock(db, settings, tmp_path) -> None:
    add_post(db, settings, "a", title="First title")
    approved_issue(db, settings, period="week-1", now=NOW)
    out: Path = tmp_path / "public"
    write_issue_archive(db, settings, out)
    add_post(db, settings, "a", title="Second title", now=NOW + 3 * DAY)

    changed = write_issue_archive(db, settings, out)

    feed = feedparser.parse((out / "issues" / "atom.xml").read_bytes())
    assert feed.entries[0].updated == "2012-08-02T12:00:00+00:00"
    assert out / "issues" / "1" / "index.html" in changed


def test_the_web_version_and_the_feeds_show_the_markdown_note_cleaned(db, settings, tmp_path):
    add_post(db, settings, "wcit", date=NOW - DAY)
    note = "**WCIT** is near: [agenda](/wcit/).\n\n<script>alert(1)</script>"
    approved_issue(db, settings, period="w", now=NOW, note=note)
    out = tmp_path / "public"

    write_issue_archive(db, settings, out)

    page = (out / "issues" / "1" / "index.html").read_text(encoding="utf-8")
    box = parse(page).cssselect("div.note")[0]
    assert box.cssselect("strong")[0].text == "WCIT"
    assert box.cssselect("a")[0].get("href") == "https://policy.example.org/wcit/"
    assert "<script" not in page and "**" not in page
    entry = feedparser.parse(str(out / "issues" / "atom.xml")).entries[0]
    assert entry.summary == "WCIT is near: agenda."
    content = entry.content[0].value
    assert "<strong>WCIT</strong>" in content and "<script" not in content
