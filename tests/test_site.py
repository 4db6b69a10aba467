"""`build_site` on the demo site: the files, their feeds and pages, determinism, future posts."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import lxml.etree
import lxml.html
import pytest
import sqlite_utils
from click.testing import CliRunner

from policyfeed.cli import cli
from policyfeed.config import Settings
from policyfeed.errors import ConflictError
from policyfeed.site.build import build_site
from policyfeed.site.redirects import read_redirect
from policyfeed.store import posts as post_store
from site_support import NOW, check_feed_folder, day, mtimes, parse_feed, save, tree

DEMO_TOPICS = {
    "ietf": 1,
    "intellectual-property": 2,
    "internet-governance": 2,
    "itu-wcit": 2,
    "trade-agreements": 1,
}
FEED_TYPES = ["application/rss+xml", "application/atom+xml", "application/feed+json"]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The output folder (beside, not around, the test database)."""
    return tmp_path / "site"


def build(db: sqlite_utils.Database, settings: Settings, out: Path, **kw: object) -> object:
    return build_site(db, settings, out, kw.pop("now", NOW), **kw)  # type: ignore[arg-type]


def test_the_demo_site_has_feeds_pages_and_opml(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    result = build(demo_db, settings, tmp_path / "out")
    files = set(tree(tmp_path / "out"))
    assert {"feed.xml", "atom.xml", "feed.json", "feeds.opml", "index.html"} <= files
    for slug in DEMO_TOPICS:
        assert {
            f"topics/{slug}/{name}" for name in ("index.html", "feed.xml", "atom.xml", "feed.json")
        } <= files
    posts = [p for p in files if p.startswith("posts/")]
    assert len(posts) == 5 and all(p.endswith("/index.html") for p in posts)
    assert not any(p.startswith("archive/") for p in files)  # five posts fit in one feed
    assert result.posts == 5 and result.full  # type: ignore[attr-defined]


def test_every_feed_parses_with_the_same_ids_in_all_three_formats(
    demo_db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    build(demo_db, settings, site)
    ids = check_feed_folder(site, 5)
    guids = [p.guid for p in post_store.list_posts(demo_db, status="published")]
    assert ids == guids  # newest first, the stable guid as id
    for slug, count in DEMO_TOPICS.items():
        assert set(check_feed_folder(site / "topics" / slug, count)) <= set(ids)


def test_feed_updated_is_the_newest_post_change_never_the_build_time(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    build(demo_db, settings, tmp_path / "a", now=NOW)
    build(demo_db, settings, tmp_path / "b", now=NOW + timedelta(days=400))
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    newest = max(p.updated_at for p in post_store.list_posts(demo_db, status="published"))
    atom = parse_feed((tmp_path / "a" / "atom.xml").read_bytes())
    assert atom.feed.updated == newest.isoformat()


def test_building_twice_rewrites_nothing_and_a_fresh_build_is_byte_identical(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(demo_db, settings, out)
    before = mtimes(out)
    again = build(demo_db, settings, out)
    assert again.written == [] and again.removed == []  # type: ignore[attr-defined]
    assert mtimes(out) == before
    forced = build(demo_db, settings, out, full=True)
    assert forced.written == [] and mtimes(out) == before  # type: ignore[attr-defined]
    build(demo_db, settings, tmp_path / "fresh")
    assert tree(tmp_path / "fresh") == tree(out)


def test_posts_dated_after_now_are_left_out_until_their_time(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    save(demo_db, settings, "scheduled", date=NOW + timedelta(days=2), topics=["IETF"])
    out = tmp_path / "out"
    build(demo_db, settings, out)
    assert not (out / "posts" / "scheduled").exists()
    assert len(check_feed_folder(out, 5)) == 5
    assert len(check_feed_folder(out / "topics" / "ietf", 1)) == 1

    later = NOW + timedelta(days=3)
    result = build(demo_db, settings, out, now=later)
    assert not result.full  # type: ignore[attr-defined]
    assert (out / "posts" / "scheduled" / "index.html").exists()
    assert check_feed_folder(out, 6)[0].endswith("posts/scheduled")
    assert len(check_feed_folder(out / "topics" / "ietf", 2)) == 2
    build(demo_db, settings, tmp_path / "fresh", now=later)
    assert tree(tmp_path / "fresh") == tree(out)

    build(demo_db, settings, out, now=NOW)  # the clock went back: the post is hidden again
    assert not (out / "posts" / "scheduled").exists()
    assert len(check_feed_folder(out, 5)) == 5


def links(page: Path, rel: str) -> list[tuple[str, str]]:
    doc = lxml.html.fromstring(page.read_bytes())
    return [(el.get("type"), el.get("href")) for el in doc.iterfind(f".//link[@rel='{rel}']")]


def test_pages_advertise_their_feeds_for_autodiscovery(
    demo_db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    build(demo_db, settings, site)
    base = settings.base_url
    home = [(t, f"{base}{n}") for t, n in home_names()]
    assert links(site / "index.html", "alternate") == home
    topic = links(site / "topics" / "ietf" / "index.html", "alternate")
    assert topic[:3] == [(t, f"{base}topics/ietf/{n}") for t, n in home_names()]
    assert topic[3:] == home
    for page in (site / "posts").glob("*/index.html"):
        assert links(page, "alternate") == home
    for _, href in topic + home:  # every advertised feed exists
        assert (site / href.removeprefix(base)).is_file()


def home_names() -> list[tuple[str, str]]:
    return list(zip(FEED_TYPES, ("feed.xml", "atom.xml", "feed.json"), strict=True))


def test_each_post_has_a_page_at_its_permalink_with_a_canonical_link(
    demo_db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    build(demo_db, settings, site)
    for post in post_store.list_posts(demo_db, status="published"):
        page = site / "posts" / post.slug / "index.html"
        doc = lxml.html.fromstring(page.read_bytes())
        assert links(page, "canonical") == [(None, post.permalink(settings.base_url))]
        assert doc.findtext(".//h1") == post.title
        topic_links = {a.get("href") for a in doc.iterfind(".//a") if "topics/" in a.get("href")}
        assert topic_links == {f"../../topics/{t.slug}/" for t in post.topics}


def test_index_lists_the_newest_posts_and_links_every_topic(
    demo_db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    build(demo_db, settings, site)
    doc = lxml.html.fromstring((site / "index.html").read_bytes())
    titles = [h.text_content() for h in doc.iterfind(".//article/h2")]
    assert titles == [p.title for p in post_store.list_posts(demo_db, status="published")]
    hrefs = {a.get("href") for a in doc.iterfind(".//ul[@class='topics']//a")}
    assert hrefs == {f"topics/{slug}/" for slug in DEMO_TOPICS}
    for href in hrefs:  # relative links resolve inside the built site
        assert (site / href / "index.html").is_file()


def test_opml_lists_the_site_feed_the_digest_feed_and_every_topic_feed(
    demo_db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    build(demo_db, settings, site)
    root = lxml.etree.fromstring((site / "feeds.opml").read_bytes())
    urls = [o.get("xmlUrl") for o in root.iterfind(".//outline[@type='rss']")]
    base = settings.base_url
    assert urls == [f"{base}feed.xml", f"{base}issues/feed.xml"] + [
        f"{base}topics/{slug}/feed.xml"
        for slug in (
            "ietf",
            "itu-wcit",
            "intellectual-property",
            "internet-governance",
            "trade-agreements",
        )
    ]
    for url in urls:
        assert (site / url.removeprefix(base)).is_file()


def test_an_empty_database_builds_a_valid_empty_site(
    db: sqlite_utils.Database, settings: Settings, site: Path
) -> None:
    build(db, settings, site)
    assert check_feed_folder(site, 0) == []
    assert json.loads((site / "feed.json").read_bytes())["items"] == []
    assert "No posts yet" in (site / "index.html").read_text()


def test_unpublishing_and_deleting_posts_remove_their_pages_and_renaming_leaves_a_redirect(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(demo_db, settings, out)
    post_store.set_status(
        demo_db,
        "public-policy-guests-at-ietf-84-vancouver",
        "draft",
        now=NOW,
        domain=settings.domain,
    )
    acta = post_store.get_post(demo_db, "acta-and-tppa-a-coincidence-worth-exploring")
    save(
        demo_db,
        settings,
        "acta-and-tppa",
        post_id=acta.id,
        title=acta.title,
        date=acta.published_at,
        topics=["Trade agreements"],
    )
    post_store.delete_post(demo_db, "beijing-treaty-on-audiovisual-performances")
    result = build(demo_db, settings, out)
    assert not result.full  # type: ignore[attr-defined]
    pages = sorted(p.parent.name for p in (out / "posts").glob("*/index.html"))
    assert pages == [
        "acta-and-tppa",
        "acta-and-tppa-a-coincidence-worth-exploring",  # the old slug: a redirect page
        "itu-council-refers-internet-issues-to-wtsa",
        "wcit-preparation-ask-your-government",
    ]
    old = (
        out / "posts" / "acta-and-tppa-a-coincidence-worth-exploring" / "index.html"
    ).read_bytes()
    assert read_redirect(old) == ("posts/acta-and-tppa/", settings.absolute("posts/acta-and-tppa/"))
    assert not (out / "topics" / "ietf").exists()  # its only post is gone
    assert not (out / "topics" / "intellectual-property").exists()
    assert len(check_feed_folder(out, 3)) == 3
    build(demo_db, settings, tmp_path / "fresh")
    assert tree(tmp_path / "fresh") == tree(out)


def test_leftovers_of_an_earlier_site_are_removed_by_a_full_build(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    for rel in ("posts/old-post/index.html", "topics/old/feed.xml", "archive/7/atom.xml"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("left from another database")
    (out / "robots.txt").write_text("User-agent: *\n")
    build(demo_db, settings, out, force=True)  # without --force the folder is refused
    assert not (out / "posts" / "old-post").exists()
    assert not (out / "topics" / "old").exists()
    assert not (out / "archive").exists()
    assert (out / "robots.txt").read_text() == "User-agent: *\n"  # not ours: kept


def test_cli_build_writes_the_site_and_says_what_it_did(demo_db_path: Path, tmp_path: Path) -> None:
    config = Path(__file__).resolve().parent.parent / "policyfeed.toml"
    runner = CliRunner()
    args = [
        "--db",
        str(demo_db_path),
        "--config",
        str(config),
        "build",
        "--out",
        str(tmp_path / "site"),
    ]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert first.output.startswith(f"Built {tmp_path / 'site'}: 5 posts, ")
    assert first.output.rstrip().endswith("(full build)")
    second = runner.invoke(cli, args)
    assert second.exit_code == 0
    assert second.output == f"Built {tmp_path / 'site'}: 5 posts, 0 files written, 0 removed\n"
    assert "Example:" in runner.invoke(cli, ["build", "--help"]).output


def test_new_settings_templates_or_a_lost_state_mean_a_full_build_that_matches_a_fresh_one(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    import dataclasses

    out = tmp_path / "out"
    build(demo_db, settings, out)
    renamed = dataclasses.replace(settings, title="Internet Policy")
    result = build(demo_db, renamed, out)
    assert result.full  # type: ignore[attr-defined]
    assert "<title>Internet Policy</title>" in (out / "feed.xml").read_text()
    build(demo_db, renamed, tmp_path / "fresh")
    assert tree(tmp_path / "fresh") == tree(out)

    overrides = tmp_path / "templates" / "site"
    overrides.mkdir(parents=True)
    (overrides / "post.html").write_text(
        '{% extends "site/base.html" %}{% block content %}<h1 class="mine">{{ post.title }}</h1>'
        "{% endblock %}"
    )
    themed = dataclasses.replace(renamed, templates_dir=tmp_path / "templates")
    assert build(demo_db, themed, out).full  # type: ignore[attr-defined]
    page = (out / "posts" / "public-policy-guests-at-ietf-84-vancouver" / "index.html").read_text()
    assert '<h1 class="mine">' in page

    with demo_db.conn:
        demo_db.execute("UPDATE build_state SET data = '{not json' WHERE name = 'site'")
    assert build(demo_db, themed, out).full  # type: ignore[attr-defined]
    for page in out.rglob("index.html"):  # a folder emptied by hand: its state is stale
        page.unlink()
    assert build(demo_db, themed, out).full  # type: ignore[attr-defined]
    build(demo_db, themed, tmp_path / "themed")
    assert tree(tmp_path / "themed") == tree(out)


def test_another_database_built_into_the_same_folder_replaces_the_site_only_when_forced(
    demo_db: sqlite_utils.Database, db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(demo_db, settings, out)
    save(db, settings, "only-post", date=day(20), topics=["Elsewhere"])
    before = tree(out)
    with pytest.raises(ConflictError, match="holds files that this database did not build"):
        build(db, settings, out)
    assert tree(out) == before
    result = build(db, settings, out, force=True)
    assert result.full  # type: ignore[attr-defined]
    assert sorted(p.parent.name for p in (out / "posts").glob("*/index.html")) == ["only-post"]
    assert sorted(p.name for p in (out / "topics").iterdir()) == ["elsewhere"]
    build(db, settings, tmp_path / "fresh")
    assert tree(tmp_path / "fresh") == tree(out)
