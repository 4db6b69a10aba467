"""A renamed post keeps a redirect page at every slug it had since it was published: links in
sent digests, feed readers and other sites still lead to it. Static hosts get a page with a
meta refresh and rel=canonical; the app's own server answers those paths with a 301 and a
``Link: <…>; rel="canonical"`` header. Redirect pages are no posts: no feed or page lists them,
and ``check`` accepts them."""

from __future__ import annotations

import contextlib
import email
import http.client
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from policyfeed.cli import App, cli
from policyfeed.config import load_settings
from policyfeed.site.redirects import read_redirect
from policyfeed.store import open_db
from policyfeed.store.migrations import MIGRATIONS

NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)
BASE = "https://policy.example.org/"
CONFIG = f"""\
[site]
title = "Public Policy"
base_url = "{BASE}"
timezone = "Europe/Zurich"

[digest]
mail_from = "policy-digest@example.org"
mail_from_name = "Public Policy digest"
postal_address = "Public Policy team, 1775 Wiehle Avenue, Reston, VA 20190, USA"
schedule = "0 8 * * MON"
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(App, "now", lambda self: NOW)
    monkeypatch.setenv("POLICYFEED_SECRET", "a-secret-for-the-tests-only-0123456789")
    (tmp_path / "policyfeed.toml").write_text(CONFIG, encoding="utf-8")
    ok("init")
    ok("subscribers", "add", "ann@example.org")
    for slug, date in (("wcit", "2012-07-24"), ("acta", "2012-07-25")):
        ok("posts", "add", "--title", slug.upper(), "--slug", slug, "--new-topic", "ITU",
           "--body", f"<p>On {slug}.</p>", "--date", date, "--publish")  # fmt: skip
    return tmp_path


def public(site: Path, rel: str) -> bytes:
    return (site / "public" / rel).read_bytes()


def redirect_of(site: Path, slug: str) -> tuple[str, str] | None:
    path = site / "public" / "posts" / slug / "index.html"
    return read_redirect(path.read_bytes()) if path.is_file() else None


def mailed_links(site: Path) -> list[str]:
    links = []
    for path in sorted((site / "outbox" / "new").iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        links += re.findall(r"https://policy\.example\.org/posts/[a-z0-9-]+/", part.get_content())
    return links


@contextlib.contextmanager
def serving(site: Path) -> Iterator[int]:
    """The app behind ``serve``, under waitress on 127.0.0.1."""
    from waitress.server import create_server

    from policyfeed.web.app import make_app

    settings = load_settings(site / "policyfeed.toml", environ={"POLICYFEED_SECRET": "x" * 40})
    server = create_server(
        make_app(settings, site / "posts.db", site / "public"), host="127.0.0.1", port=0
    )
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield server.effective_port
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()
        server.task_dispatcher.shutdown()


def get(port: int, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_a_mailed_posts_old_link_leads_to_it_after_a_rename(site: Path) -> None:
    result = run("publish")
    assert result.exit_code == 0, result.output
    old_link = f"{BASE}posts/wcit/"
    assert old_link in mailed_links(site)
    assert "(was wcit)" in ok("posts", "edit", "wcit", "--slug", "wcit-12")
    ok("build")

    # A static host serves the page at the old path: a refresh to the new one, and canonical.
    page = public(site, "posts/wcit/index.html").decode()
    assert '<meta http-equiv="refresh" content="0; url=../wcit-12/">' in page
    assert f'<link rel="canonical" href="{BASE}posts/wcit-12/">' in page
    assert '<meta name="robots" content="noindex">' in page
    assert b"On wcit." in public(site, "posts/wcit-12/index.html")
    assert redirect_of(site, "wcit") == ("posts/wcit-12/", f"{BASE}posts/wcit-12/")

    # No feed, index, topic or archive page lists it: they link the post at its new slug.
    for rel in ("feed.xml", "atom.xml", "feed.json", "index.html", "topics/itu/feed.xml",
                "topics/itu/index.html", "feeds.opml"):  # fmt: skip
        assert b"posts/wcit/" not in public(site, rel), rel
    assert b"posts/wcit-12/" in public(site, "feed.xml")

    # check accepts the site with its redirect page.
    checked = run("check")
    assert checked.exit_code == 0, checked.output
    assert "posts/wcit/" not in checked.output

    # The app's own server answers the old path with a 301 and the canonical Link header.
    path = old_link.removeprefix(BASE.rstrip("/"))
    with serving(site) as port:
        moved = get(port, path)
        assert moved.status == 301
        assert moved.headers["Location"].endswith("/posts/wcit-12/")
        assert moved.headers["Link"] == f'<{BASE}posts/wcit-12/>; rel="canonical"'
        assert get(port, "/posts/wcit-12/").status == 200


def test_every_old_slug_points_at_the_newest_and_a_slug_taken_back_is_the_page(site: Path) -> None:
    ok("build")
    ok("posts", "edit", "wcit", "--slug", "wcit-12")
    ok("build")
    ok("posts", "edit", "wcit-12", "--slug", "wcit-dubai")
    ok("build")
    assert redirect_of(site, "wcit") == ("posts/wcit-dubai/", f"{BASE}posts/wcit-dubai/")
    assert redirect_of(site, "wcit-12") == ("posts/wcit-dubai/", f"{BASE}posts/wcit-dubai/")
    shown = ok("posts", "show", "wcit-dubai")
    assert "was:       wcit, wcit-12 (redirect pages lead here)\n" in shown
    # Renamed back: its first slug is its page again, the others point there.
    ok("posts", "edit", "wcit-dubai", "--slug", "wcit")
    ok("build")
    assert redirect_of(site, "wcit") is None
    assert b"On wcit." in public(site, "posts/wcit/index.html")
    assert redirect_of(site, "wcit-dubai") == ("posts/wcit/", f"{BASE}posts/wcit/")
    assert redirect_of(site, "wcit-12") == ("posts/wcit/", f"{BASE}posts/wcit/")
    assert "was:       wcit-12, wcit-dubai (redirect pages lead here)\n" in ok(
        "posts", "show", "wcit"
    )


def test_redirects_go_with_the_post_and_come_back_with_it(site: Path) -> None:
    ok("posts", "edit", "acta", "--slug", "acta-tppa")
    ok("build")
    assert redirect_of(site, "acta") is not None
    ok("posts", "unpublish", "acta-tppa")
    ok("build")
    assert not (site / "public" / "posts" / "acta").exists()  # it would lead to a 404
    assert not (site / "public" / "posts" / "acta-tppa").exists()
    ok("posts", "publish", "acta-tppa")
    ok("build")
    assert redirect_of(site, "acta") == ("posts/acta-tppa/", f"{BASE}posts/acta-tppa/")
    ok("posts", "remove", "acta-tppa", "--yes")
    ok("build")
    assert not (site / "public" / "posts" / "acta").exists()


def test_a_new_post_at_an_old_slug_is_shown_there(site: Path) -> None:
    ok("posts", "edit", "acta", "--slug", "acta-tppa")
    ok("build")
    ok("posts", "add", "--title", "ACTA again", "--slug", "acta", "--body", "<p>New.</p>",
       "--date", "2012-07-28", "--publish")  # fmt: skip
    ok("build")
    assert redirect_of(site, "acta") is None
    assert b"New." in public(site, "posts/acta/index.html")
    full = site / "full"
    ok("build", "--out", str(full), "--full")
    assert (full / "posts" / "acta" / "index.html").read_bytes() == public(
        site, "posts/acta/index.html"
    )


def test_renames_made_before_the_upgrade_get_their_redirects(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    MIGRATIONS.apply(db, stop_before="m020_old_slugs")
    stamp = "2012-07-25T09:00:00Z"
    db.execute(
        "INSERT INTO posts (slug, title, status, published_at, updated_at, created_at) "
        "VALUES ('wcit', 'WCIT', 'published', ?, ?, ?)",
        [stamp, stamp, stamp],
    )
    db.execute("UPDATE posts SET slug = 'wcit-12' WHERE slug = 'wcit'")
    db.execute("UPDATE posts SET slug = 'wcit-dubai' WHERE slug = 'wcit-12'")
    db.execute(
        "INSERT INTO posts (slug, title, status, updated_at, created_at) "
        "VALUES ('draft', 'Draft', 'draft', ?, ?)",
        [stamp, stamp],
    )
    db.execute("UPDATE posts SET slug = 'draft-2' WHERE slug = 'draft'")  # never public
    db.conn.commit()
    db.conn.close()
    upgraded = open_db(path)
    rows = upgraded.execute("SELECT slug, post_id FROM post_slugs ORDER BY slug").fetchall()
    assert rows == [("wcit", 1), ("wcit-12", 1)]
    upgraded.conn.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_a_redirect_page_is_never_the_post_page_whose_contrast_check_computes(site: Path) -> None:
    from policyfeed.check.run import contrast_specimens

    ok("posts", "edit", "acta", "--slug", "trade-agreements")
    ok("build")
    out = site / "public"
    listing = {p.relative_to(out).as_posix(): None for p in out.rglob("*.html")}
    posts = sorted(rel for rel in listing if rel.startswith("posts/"))
    assert posts[0] == "posts/acta/index.html"  # first of the posts by name, and a redirect
    specimens = contrast_specimens(out, listing)
    assert posts[1] == "posts/trade-agreements/index.html" and posts[1] in specimens
    assert posts[0] not in specimens


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ("Moved", "This post has moved:", "read it at its new address")),
        ("fr", ("Déplacé", "Cet article a déménagé :", "lisez-le à sa nouvelle adresse")),
        ("es", ("Trasladado", "Este artículo se ha trasladado:", "léalo en su nueva dirección")),
        ("ar", ("نُقل", "نُقل هذا المقال:", "اقرأه في عنوانه الجديد")),
    ],
)
def test_a_redirect_page_speaks_the_sites_language(language: str, words: tuple[str, ...]) -> None:
    """A reader who follows an old link of a French site is told in French where it went."""
    import dataclasses

    from policyfeed.config import Settings
    from policyfeed.site.redirects import redirect_page

    settings = dataclasses.replace(
        Settings(), base_url="https://policy.example.org/", title="Public Policy",
        language=language,
    )  # fmt: skip
    page = redirect_page(settings, "new-slug")
    for word in words:
        assert word in page, (language, word)
    assert f'<html lang="{language}"' in page
    assert read_redirect(page.encode("utf-8")) == (
        "posts/new-slug/", "https://policy.example.org/posts/new-slug/"
    )  # fmt: skip
