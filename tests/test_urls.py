"""URLs from the wider world: a post URL with spaces or a non-ASCII host or path went out raw
(W3C InvalidUriChar, UriNotIri); ``tel:`` and ``ftp:`` links lost their href; ``<noscript>``
showed as literal text; ``site.icon`` and ``site.logo`` resolved one way in the site feeds and
another in the issue feeds when ``base_url`` has a path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import feedparser
import pytest
import sqlite_utils

from policyfeed.config import Settings
from policyfeed.content.posts import sanitize_html
from policyfeed.content.urls import site_url, to_uri
from policyfeed.site.build import build_site
from policyfeed.store import posts as post_store
from site_support import NOW, day, save

URI_CHARS = set(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://example.org/a b", "https://example.org/a%20b"),
        (
            "https://bücher.example/straße?q=ü#frag ment",
            "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC#frag%20ment",
        ),
        ("https://example.org/already%20encoded/", "https://example.org/already%20encoded/"),
        ("https://example.org/100%/", "https://example.org/100%25/"),
        ("https://EXAMPLE.org:8443/x", "https://example.org:8443/x"),
        ("https://example.org/a|b<c>", "https://example.org/a%7Cb%3Cc%3E"),
        ("https://example.org/", "https://example.org/"),
    ],
)
def test_to_uri_makes_a_uri_of_an_iri_or_a_sloppy_url(given: str, expected: str) -> None:
    assert to_uri(given) == expected
    assert set(to_uri(given)) <= URI_CHARS
    assert to_uri(expected) == expected  # once is enough


def test_a_post_url_is_normalised_on_the_way_in(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    save(db, settings, "elsewhere", date=day(20), url="https://bücher.example/a post/ü")
    post = post_store.get_post(db, "elsewhere")
    assert post.url == "https://xn--bcher-kva.example/a%20post/%C3%BC"
    build_site(db, settings, tmp_path / "out", NOW)
    parsed = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes())
    assert parsed.entries[0].link == post.url


def test_tel_and_ftp_links_keep_their_href_and_noscript_is_dropped() -> None:
    html = sanitize_html(
        '<p><a href="tel:+41-22-807-1444">call</a> <a href="ftp://ftp.example.org/f.txt">get</a>'
        ' <a href="javascript:alert(1)">no</a></p><noscript><p>Enable <b>JS</b></p></noscript>',
        "https://policy.example.org/",
    )
    assert '<a href="tel:+41-22-807-1444"' in html
    assert '<a href="ftp://ftp.example.org/f.txt"' in html
    assert "javascript" not in html
    assert "noscript" not in html and "&lt;" not in html and "Enable" not in html


def test_icon_and_logo_resolve_the_same_in_site_and_issue_feeds(
    db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    site = dataclasses.replace(
        settings, base_url="https://example.org/policy/", icon="img/icon.png", logo="/logo.png"
    )
    assert site_url(site, "img/icon.png") == "https://example.org/policy/img/icon.png"
    assert site_url(site, "/logo.png") == "https://example.org/logo.png"
    assert site_url(site, "https://cdn.example/x y.png") == "https://cdn.example/x%20y.png"
    save(db, site, "one", date=day(20))
    out = tmp_path / "out"
    build_site(db, site, out, NOW)
    for folder in ("", "issues/"):
        feed = feedparser.parse((out / folder / "atom.xml").read_bytes()).feed
        assert (feed.icon, feed.logo) == (
            "https://example.org/policy/img/icon.png",
            "https://example.org/logo.png",
        ), folder
