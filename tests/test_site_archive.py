"""RFC 5005 archived feeds: history beyond the feed limit, and archive pages that stay put."""

from __future__ import annotations

from pathlib import Path

import lxml.etree
import pytest
import sqlite_utils

from policyfeed.config import Settings
from policyfeed.site.build import BuildResult, build_site
from policyfeed.store import posts as post_store
from site_support import NOW, check_feed_folder, day, mtimes, save, tree, with_limit

NS = {"atom": "http://www.w3.org/2005/Atom", "fh": "http://purl.org/syndication/history/1.0"}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The output folder (beside, not around, the test database)."""
    return tmp_path / "site"


def publish(db: sqlite_utils.Database, settings: Settings, numbers: range) -> None:
    for n in numbers:
        save(db, settings, f"post-{n}", date=day(n), topics=["IETF" if n % 2 else "ITU"])


def guid(settings: Settings, n: int) -> str:
    return f"tag:{settings.domain},{day(n).date().isoformat()}:posts/post-{n}"


def atom_links(path: Path) -> dict[str, str]:
    root = lxml.etree.fromstring(path.read_bytes())
    return {link.get("rel"): link.get("href") for link in root.iterfind("atom:link", NS)}


def is_archive(path: Path) -> bool:
    root = lxml.etree.fromstring(path.read_bytes())
    scope = root.find("channel") if root.tag == "rss" else root
    return scope.find("fh:archive", NS) is not None


def build(db: sqlite_utils.Database, settings: Settings, out: Path) -> BuildResult:
    return build_site(db, settings, out, NOW)


def test_history_beyond_the_limit_is_in_archive_pages_linked_from_the_current_feed(
    db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    settings = with_limit(settings, 3)
    publish(db, settings, range(1, 11))
    build(db, settings, site)
    base = settings.base_url

    assert check_feed_folder(site, 3) == [guid(settings, n) for n in (10, 9, 8)]
    assert sorted(p.name for p in (site / "archive").iterdir()) == ["1", "2", "3"]
    assert check_feed_folder(site / "archive" / "1", 3) == [guid(settings, n) for n in (3, 2, 1)]
    assert check_feed_folder(site / "archive" / "2", 3) == [guid(settings, n) for n in (6, 5, 4)]
    assert check_feed_folder(site / "archive" / "3", 1) == [guid(settings, 7)]

    # Follow prev-archive from the subscription document: every post exactly once, newest first.
    for name in ("atom.xml", "feed.xml"):
        seen: list[str] = []
        url = base + name
        assert not is_archive(site / name)
        while url:
            path = site / url.removeprefix(base)
            seen += check_feed_folder(path.parent)
            links = atom_links(path) if name == "atom.xml" else rss_links(path)
            if path.parent != site:
                assert is_archive(path)
                assert links["current"] == base + name
                assert links["self"] == url
            url = links.get("prev-archive", "")
        assert seen == [guid(settings, n) for n in range(10, 0, -1)]

    assert "next-archive" not in atom_links(site / "archive" / "3" / "atom.xml")
    assert atom_links(site / "archive" / "1" / "atom.xml")["next-archive"] == (
        f"{base}archive/2/atom.xml"
    )
    assert "prev-archive" not in atom_links(site / "archive" / "1" / "atom.xml")


def rss_links(path: Path) -> dict[str, str]:
    channel = lxml.etree.fromstring(path.read_bytes()).find("channel")
    return {link.get("rel"): link.get("href") for link in channel.iterfind("atom:link", NS)}


def test_archive_pages_have_html_listings_linked_from_the_home_page(
    db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    settings = with_limit(settings, 3)
    publish(db, settings, range(1, 11))
    build(db, settings, site)
    assert 'href="archive/3/"' in (site / "index.html").read_text()
    page = (site / "archive" / "2" / "index.html").read_text()
    assert 'href="../1/"' in page and 'href="../3/"' in page
    assert [f"Post post-{n}" in page for n in (6, 5, 4)] == [True] * 3


def test_an_archive_page_with_a_newer_page_never_changes_as_new_posts_arrive(
    db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    settings = with_limit(settings, 3)
    publish(db, settings, range(1, 10))  # 9 posts: 3 current, two full pages and no empty one
    build(db, settings, site)
    assert not (site / "archive" / "3").exists()
    assert "next-archive" not in atom_links(site / "archive" / "2" / "atom.xml")
    publish(db, settings, range(10, 11))  # page 3 appears: page 2 links it, once
    build(db, settings, site)
    assert atom_links(site / "archive" / "2" / "atom.xml")["next-archive"].endswith(
        "archive/3/atom.xml"
    )
    frozen = {k: v for k, v in tree(site).items() if k.startswith(("archive/1/", "archive/2/"))}
    frozen_times = {k: v for k, v in mtimes(site).items() if k in frozen}
    assert len(frozen) == 8

    for n in range(11, 16):
        publish(db, settings, range(n, n + 1))
        result = build(db, settings, site)
        assert not result.full
        now_tree = tree(site)
        assert {k: now_tree[k] for k in frozen} == frozen
        assert {k: v for k, v in mtimes(site).items() if k in frozen} == frozen_times
        assert not any(str(p.relative_to(site)).startswith("archive/1") for p in result.written)
    # 15 posts: 3 current, pages 1-4 full, and no empty page 5
    assert len(check_feed_folder(site / "archive" / "4", 3)) == 3
    assert "next-archive" not in atom_links(site / "archive" / "4" / "atom.xml")
    assert not (site / "archive" / "5").exists()


def test_editing_an_archived_post_rewrites_its_page_only(
    db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    settings = with_limit(settings, 3)
    publish(db, settings, range(1, 11))
    build(db, settings, site)
    post = post_store.get_post(db, "post-2")
    save(db, settings, "post-2", date=post.published_at, title="Post 2, corrected", topics=["ITU"])
    result = build(db, settings, site)
    written = sorted(p.relative_to(site).as_posix() for p in result.written)
    assert written == [
        "archive/1/atom.xml",
        "archive/1/feed.json",
        "archive/1/feed.xml",
        "archive/1/index.html",
        "posts/post-2/index.html",
    ]
    build_site(db, settings, site.parent / "fresh", NOW)
    assert tree(site.parent / "fresh") == tree(site)


def test_a_backdated_post_moves_later_entries_and_the_result_matches_a_fresh_build(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    settings = with_limit(settings, 3)
    publish(db, settings, range(2, 12))
    out = tmp_path / "out"
    build(db, settings, out)
    save(db, settings, "post-1", date=day(1), topics=["IETF"])
    build(db, settings, out)
    assert check_feed_folder(out / "archive" / "1", 3) == [guid(settings, n) for n in (3, 2, 1)]
    build(db, settings, tmp_path / "fresh")
    assert tree(tmp_path / "fresh") == tree(out)
