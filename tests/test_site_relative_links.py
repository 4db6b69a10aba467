"""Links to the site's own pages are stored relative to ``site.base_url`` and made absolute when
feeds, pages and mail are written: after the base URL changes, the next build and the next
issue hold no reference to the old one. Bodies saved before (absolute) are converted once."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import feedparser
import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from policyfeed.cli import App, cli
from policyfeed.content.posts import absolute_links, site_relative_links
from policyfeed.content.urls import site_relative
from policyfeed.store import open_db
from policyfeed.store import posts as store
from policyfeed.store.migrations import MIGRATIONS

NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)
OLD = "https://old.example.org/policy/"
NEW = "https://policy.example.net/"
CONFIG = """\
[site]
title = "Public Policy"
base_url = "{base}"
timezone = "Europe/Zurich"

[digest]
mail_from = "policy-digest@example.org"
postal_address = "Public Policy team, 1775 Wiehle Avenue, Reston, VA 20190, USA"
schedule = "0 8 * * MON"
"""
BODY = (
    "<p>See <a href='posts/wcit/'>our WCIT post</a>, <a href='/policy/feed.xml'>the feed</a>, "
    f"<a href='{OLD}topics/ietf/'>IETF</a>, the <a href='https://old.example.org/shop/'>shop</a> "
    "(not the site: outside its folder) and <a href='https://www.itu.int/'>the ITU</a>."
    "<img src='https://www.itu.int/map.png' alt='A map'></p>"
)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def configure(folder: Path, base: str) -> None:
    (folder / "policyfeed.toml").write_text(CONFIG.format(base=base), encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(App, "now", lambda self: NOW)
    monkeypatch.setenv("POLICYFEED_SECRET", "a-secret-for-the-tests-only-0123456789")
    configure(tmp_path, OLD)
    ok("init")
    ok("subscribers", "add", "ann@example.org")
    return tmp_path


def add_post(slug: str, date: str, body: str = BODY) -> None:
    """A post on IETF with the links of BODY (the WCIT post it links is made first)."""
    (Path.cwd() / f"{slug}.html").write_text(body, encoding="utf-8")
    if slug != "wcit" and not (Path.cwd() / "wcit.html").exists():
        add_post("wcit", "2012-07-20", "<p>Ask your government.</p>")
    ok("posts", "add", "--title", slug.upper(), "--slug", slug, "--body-file", f"{slug}.html",
       "--date", date, "--new-topic", "IETF", "--publish")  # fmt: skip


def files_mentioning(folder: Path, text: str) -> list[str]:
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and text.encode() in path.read_bytes()
    )


def mailed(site: Path) -> list[str]:
    messages = []
    for path in sorted((site / "outbox" / "new").iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        messages.append(
            "\n".join(part.get_content() for part in message.walk() if not part.is_multipart())
        )
    return messages


def test_own_links_are_stored_relative_to_the_base_url_and_others_absolute(site: Path) -> None:
    add_post("acta", "2012-07-25")
    post = store.get_post(open_db(site / "posts.db"), "acta")
    assert 'href="./posts/wcit/"' in post.body_html
    assert 'href="./feed.xml"' in post.body_html
    assert 'href="./topics/ietf/"' in post.body_html
    assert 'href="https://old.example.org/shop/"' in post.body_html
    assert 'href="https://www.itu.int/"' in post.body_html
    assert "old.example.org/policy" not in post.body_html


def test_site_relative_is_only_for_urls_under_the_base_url() -> None:
    assert site_relative("https://old.example.org/policy/a/?q=1#x", OLD) == "./a/?q=1#x"
    assert site_relative("http://OLD.example.org:80/policy/", OLD.replace("https", "http")) == "./"
    assert site_relative("http://old.example.org/policy/a/", OLD) == "./a/"  # moving to https
    assert site_relative("https://old.example.org/policy-2/", OLD) is None
    assert site_relative("https://old.example.org:8443/policy/", OLD) is None
    assert site_relative("https://user@old.example.org/policy/", OLD) is None
    assert site_relative("mailto:policy@old.example.org", OLD) is None
    html = (
        '<a href="https://old.example.org/policy/a?x=1&amp;y=2">a</a>'
        '<img src="https://old.example.org/policy/i.png" alt="">'
        '<q cite="https://old.example.org/policy/about/#team">q</q><a href="#fn1">1</a>'
    )
    stored = site_relative_links(html, OLD)
    assert stored == (
        '<a href="./a?x=1&amp;y=2">a</a><img src="./i.png" alt="">'
        '<q cite="./about/#team">q</q><a href="#fn1">1</a>'
    )
    assert absolute_links(stored, NEW) == html.replace(OLD, NEW)


def test_after_the_base_url_changes_no_reference_to_the_old_one_remains(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_post("acta", "2012-07-25")
    ok("publish")
    ok("build")
    assert files_mentioning(site / "public", "old.example.org/policy")  # the old site, built
    assert all("old.example.org/policy" in text for text in mailed(site))

    configure(site, NEW)
    built = ok("build")
    assert "(full build)" in built  # the base URL is part of what every page depends on
    assert files_mentioning(site / "public", "old.example.org/policy") == []
    feed = feedparser.parse((site / "public" / "feed.xml").read_bytes())
    content = feed.entries[0].content[0].value
    assert f'href="{NEW}posts/wcit/"' in content and f'href="{NEW}topics/ietf/"' in content
    assert f'href="{NEW}feed.xml"' in content
    assert "https://old.example.org/shop/" in content  # not the site's: left as it was
    page = (site / "public" / "posts" / "acta" / "index.html").read_text(encoding="utf-8")
    assert f'href="{NEW}posts/wcit/"' in page

    # The next issue links the new address only.
    for path in (site / "outbox" / "new").iterdir():
        path.unlink()
    add_post("itu", "2012-08-01", "<p>After <a href='posts/acta/'>ACTA</a>.</p>")
    monkeypatch.setattr(App, "now", lambda self: datetime(2012, 8, 6, 12, 0, tzinfo=UTC))
    result = run("publish", "--json")
    assert json.loads(result.stdout)["status"] == "sent", result.output
    (text,) = mailed(site)
    assert "old.example.org/policy" not in text
    assert f"{NEW}posts/acta/" in text and f"{NEW}posts/itu/" in text


def test_a_post_whose_url_is_its_own_page_keeps_no_url(site: Path) -> None:
    ok("posts", "add", "--title", "WCIT", "--url", f"{OLD}posts/wcit/", "--publish",
       "--date", "2012-07-25")  # fmt: skip
    ok("posts", "add", "--title", "About", "--url", f"{OLD}about/", "--publish",
       "--date", "2012-07-25")  # fmt: skip
    db = open_db(site / "posts.db")
    assert store.get_post(db, "wcit").url is None
    assert store.get_post(db, "about").url == "./about/"
    configure(site, NEW)
    shown = json.loads(ok("posts", "show", "about", "--json"))
    assert shown["url"] == f"{NEW}about/"
    assert json.loads(ok("posts", "show", "wcit", "--json"))["url"] == f"{NEW}posts/wcit/"


def legacy_db(path: Path) -> None:
    """A database of the release before: bodies and urls saved absolute against the base URL
    of the time (here the one ``init`` used to write, then the real one)."""
    db = sqlite_utils.Database(path)
    MIGRATIONS.apply(db, stop_before="m019_site_relative_links")
    stamp = "2012-07-25T09:00:00Z"
    rows = [
        ("acta", f'<p><a href="{OLD}posts/wcit/">WCIT</a> <img src="{OLD}i.png" alt=""></p>',
         f"{OLD}posts/acta/"),
        ("wcit", '<p><a href="http://127.0.0.1:8000/posts/acta/">ACTA</a></p>', None),
        ("itu", '<p><a href="https://www.itu.int/">ITU</a></p>', "https://www.itu.int/x"),
    ]  # fmt: skip
    for slug, body, url in rows:
        db.execute(
            "INSERT INTO posts (slug, title, body_html, url, status, published_at, updated_at, "
            "created_at) VALUES (?, ?, ?, ?, 'published', ?, ?, ?)",
            [slug, slug.upper(), body, url, stamp, stamp, stamp],
        )
    db.conn.commit()
    db.conn.close()


def test_the_first_open_after_the_upgrade_converts_the_stored_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    legacy_db(tmp_path / "posts.db")
    configure(tmp_path, OLD)
    before = store.list_posts(open_db(tmp_path / "posts.db"))
    ok("posts", "list")
    db = open_db(tmp_path / "posts.db")
    after = {p.slug: p for p in store.list_posts(db)}
    assert (
        after["acta"].body_html
        == '<p><a href="./posts/wcit/">WCIT</a> <img src="./i.png" alt=""></p>'
    )
    assert after["acta"].url is None
    # Links to the address `init` used to write are the site's own too.
    assert after["wcit"].body_html == '<p><a href="./posts/acta/">ACTA</a></p>'
    assert after["itu"].body_html == '<p><a href="https://www.itu.int/">ITU</a></p>'
    assert after["itu"].url == "https://www.itu.int/x"
    # Readers see no change: the posts' last change stays.
    assert {p.slug: p.updated_at for p in before} == {s: p.updated_at for s, p in after.items()}
    assert not store.relink_pending(db)
    configure(tmp_path, NEW)
    ok("build")
    assert files_mentioning(tmp_path / "public", "old.example.org") == []
    assert files_mentioning(tmp_path / "public", "127.0.0.1") == []


def test_a_new_database_has_nothing_to_convert(tmp_path: Path) -> None:
    db = open_db(tmp_path / "new.db")
    assert not store.relink_pending(db)
