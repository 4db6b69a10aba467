"""RFC 5005 archived feeds: history beyond the feed limit, and archive pages that stay put."""

from __future__ import annotations

import json
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


def test_editing_an_archived_post_rewrites_its_pages_only(
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
        # and the page of its topic's archive that holds it (ITU: 2 4 archived, 6 8 10 current)
        "topics/itu/archive/1/atom.xml",
        "topics/itu/archive/1/feed.json",
        "topics/itu/archive/1/feed.xml",
        "topics/itu/archive/1/index.html",
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


def follow(site: Path, base: str, start: str) -> list[str]:
    """The ids of every entry reached from the Atom document at ``start`` through prev-archive,
    newest first, checking each archive page's fh:archive and rel=current on the way."""
    seen: list[str] = []
    url = base + start
    while url:
        path = site / url.removeprefix(base)
        seen += check_feed_folder(path.parent)
        links = atom_links(path)
        if url != base + start:
            assert is_archive(path), url
            assert links["current"] == base + start
            assert is_archive(path.with_name("feed.xml")), url
            assert rss_links(path.with_name("feed.xml"))["current"] == base + start.replace(
                "atom.xml", "feed.xml"
            )
        else:
            assert not is_archive(path)
        url = links.get("prev-archive", "")
    return seen


def test_a_topic_feed_keeps_its_history_in_its_own_archive_pages(
    db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    settings = with_limit(settings, 2)
    publish(db, settings, range(1, 11))  # IETF: 1 3 5 7 9, ITU: 2 4 6 8 10
    build(db, settings, site)
    base = settings.base_url

    ietf = site / "topics" / "ietf"
    assert check_feed_folder(ietf, 2) == [guid(settings, n) for n in (9, 7)]
    assert sorted(p.name for p in (ietf / "archive").iterdir()) == ["1", "2"]
    assert check_feed_folder(ietf / "archive" / "1", 2) == [guid(settings, n) for n in (3, 1)]
    assert check_feed_folder(ietf / "archive" / "2", 1) == [guid(settings, 5)]
    assert atom_links(ietf / "atom.xml")["prev-archive"] == f"{base}topics/ietf/archive/2/atom.xml"
    assert json.loads((ietf / "feed.json").read_bytes())["next_url"] == (
        f"{base}topics/ietf/archive/2/feed.json"
    )
    assert follow(site, base, "topics/ietf/atom.xml") == [
        guid(settings, n) for n in (9, 7, 5, 3, 1)
    ]
    assert follow(site, base, "topics/itu/atom.xml") == [
        guid(settings, n) for n in (10, 8, 6, 4, 2)
    ]
    assert atom_links(ietf / "archive" / "1" / "atom.xml")["next-archive"] == (
        f"{base}topics/ietf/archive/2/atom.xml"
    )
    assert "next-archive" not in atom_links(ietf / "archive" / "2" / "atom.xml")


def test_a_topic_page_links_its_archive_and_each_archive_page_its_neighbours(
    db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    settings = with_limit(settings, 2)
    publish(db, settings, range(1, 11))
    build(db, settings, site)
    assert 'href="archive/2/"' in (site / "topics" / "ietf" / "index.html").read_text()
    page = (site / "topics" / "ietf" / "archive" / "1" / "index.html").read_text()
    assert "<h1>IETF: archive, page 1</h1>" in page
    assert 'href="../2/"' in page and "../1/" not in page
    assert [f"Post post-{n}" in page for n in (3, 1)] == [True, True]
    assert 'href="../../../../posts/post-3/"' in page  # links resolve from two folders deeper
    assert f'href="{settings.base_url}topics/ietf/feed.xml"' in page  # the topic's feeds
    newest = (site / "topics" / "ietf" / "archive" / "2" / "index.html").read_text()
    assert 'href="../../"' in newest  # back to the topic's page


def test_a_topic_archive_page_with_a_newer_page_never_changes_as_posts_arrive(
    db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    settings = with_limit(settings, 2)
    publish(db, settings, range(1, 13))  # IETF: 1 3 5 7 9 11: two full pages
    build(db, settings, site)
    frozen = {k: v for k, v in tree(site).items() if k.startswith("topics/ietf/archive/1/")}
    frozen_times = {k: v for k, v in mtimes(site).items() if k in frozen}
    assert len(frozen) == 4
    for n in range(13, 20):
        publish(db, settings, range(n, n + 1))
        result = build(db, settings, site)
        assert not result.full
        now_tree = tree(site)
        assert {k: now_tree[k] for k in frozen} == frozen
        assert {k: v for k, v in mtimes(site).items() if k in frozen} == frozen_times
        fresh = site.parent / f"fresh-{n}"
        build_site(db, settings, fresh, NOW)
        assert tree(fresh) == now_tree
    # IETF: 1 3 ... 19, ten posts: 19 and 17 current, pages 1-4 full, and no empty page 5
    assert len(check_feed_folder(site / "topics" / "ietf" / "archive" / "4", 2)) == 2
    assert not (site / "topics" / "ietf" / "archive" / "5").exists()


def test_a_post_taken_out_of_a_topic_leaves_its_archive_and_the_rest_moves_up(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    settings = with_limit(settings, 2)
    out = tmp_path / "out"
    publish(db, settings, range(1, 11))
    build(db, settings, out)
    post = post_store.get_post(db, "post-3")
    save(db, settings, "post-3", date=post.published_at, topics=["ITU"])  # IETF: 1 5 7 9
    result = build(db, settings, out)
    assert not result.full
    ietf = out / "topics" / "ietf"
    assert check_feed_folder(ietf / "archive" / "1", 2) == [guid(settings, n) for n in (5, 1)]
    assert not (ietf / "archive" / "2").exists()
    assert "prev-archive" not in atom_links(ietf / "archive" / "1" / "atom.xml")
    assert "next-archive" not in atom_links(ietf / "archive" / "1" / "atom.xml")
    build(db, settings, tmp_path / "fresh")
    assert tree(tmp_path / "fresh") == tree(out)


def test_a_topic_that_loses_its_posts_loses_its_archive_pages(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    settings = with_limit(settings, 1)
    out = tmp_path / "out"
    publish(db, settings, range(1, 7))
    build(db, settings, out)
    assert (out / "topics" / "ietf" / "archive" / "2" / "atom.xml").is_file()
    for n in (1, 3, 5):
        post_store.delete_post(db, f"post-{n}")
    build(db, settings, out)
    assert not (out / "topics" / "ietf").exists()
    build(db, settings, tmp_path / "fresh")
    assert tree(tmp_path / "fresh") == tree(out)


def test_a_full_build_removes_topic_archive_pages_left_by_an_earlier_build(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    publish(db, with_limit(settings, 1), range(1, 7))
    build(db, with_limit(settings, 1), out)
    assert (out / "topics" / "itu" / "archive" / "2").is_dir()
    build(db, with_limit(settings, 3), out)  # other settings: a full build
    assert not (out / "topics" / "itu" / "archive").exists()
    build(db, with_limit(settings, 3), tmp_path / "fresh")
    assert tree(tmp_path / "fresh") == tree(out)
