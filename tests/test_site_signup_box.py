"""Every page of the site and of the issue archive carries the subscribe box (posting to the web
app's /subscribe, absolute) and links to the past issues."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lxml.html
import pytest
import sqlite_utils

from policyfeed.audience.subscribers import add_chapter
from policyfeed.config import Settings
from policyfeed.publish import publish
from policyfeed.site.build import build_site
from site_support import NOW


def pages(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("index.html"))


@pytest.fixture
def built(demo_db: sqlite_utils.Database, settings: Settings) -> Path:
    publish(demo_db, settings, now=NOW)  # the site and an issue in the archive
    return settings.output_dir


def test_every_page_has_the_box_and_a_link_to_the_past_issues(built: Path) -> None:
    found = pages(built)
    kinds = {
        p.relative_to(built).parts[0] if len(p.relative_to(built).parts) > 1 else "" for p in found
    }
    assert {"", "posts", "topics", "issues"} <= kinds
    assert (built / "issues" / "1" / "index.html") in found
    for page in found:
        doc = lxml.html.parse(str(page)).getroot()
        [form] = doc.cssselect("aside.signup form")
        assert form.get("method") == "post", page
        assert form.get("action") == "/subscribe", page  # the app on the site's host
        names = [i.get("name") for i in form.cssselect("input, select")]
        assert names == ["box", "email", "name", "chapter", "website"], page
        for field in form.cssselect("input:not([type=hidden]), select"):
            labels = doc.cssselect(f'label[for="{field.get("id")}"]')
            assert len(labels) == 1, (page, field.get("name"))
        options = [o.get("value") for o in form.cssselect("option")]
        assert options == ["", "switzerland", "vancouver"], page
        links = [a.get("href") for a in doc.cssselect("a")]
        assert any(h and h.rstrip("/").endswith("issues") for h in links), page


def test_the_box_posts_to_the_configured_app(
    demo_db: sqlite_utils.Database, settings: Settings
) -> None:
    configured = dataclasses.replace(settings, app_url="https://members.example.org/app/")
    build_site(demo_db, configured, configured.output_dir, NOW)
    doc = lxml.html.parse(str(configured.output_dir / "index.html")).getroot()
    assert doc.cssselect("aside.signup form")[0].get("action") == (
        "https://members.example.org/app/subscribe"
    )


def test_a_new_chapter_reaches_every_page_at_the_next_build(
    built: Path, demo_db: sqlite_utils.Database, settings: Settings
) -> None:
    add_chapter(demo_db, slug="geneva", name="Geneva Chapter")
    result = build_site(demo_db, settings, built, NOW)
    assert result.full
    for page in pages(built):
        assert '<option value="geneva">Geneva Chapter</option>' in page.read_text(), page


def test_without_the_sign_up_there_is_no_box(
    demo_db: sqlite_utils.Database, settings: Settings
) -> None:
    configured = dataclasses.replace(settings, signup_enabled=False)
    publish(demo_db, configured, now=NOW)
    for page in pages(configured.output_dir):
        assert '<aside class="card signup"' not in page.read_text(), page
        assert "/subscribe" not in page.read_text(), page


def test_an_overridden_box_is_the_sites_on_every_page_at_its_own_depth(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    """The box is rendered once per folder depth, not per page: an override that links with
    ``root`` still gets each page's own path to the root."""
    folder = tmp_path / "overrides" / "site"
    folder.mkdir(parents=True)
    (folder / "_subscribe_box.html").write_text(
        # (The digest's archive pages have no ``root``.)
        '<aside class="mine"><a href="{% if root is defined %}{{ root }}{% endif %}issues/">'
        "{{ site.title }}</a></aside>\n",
        encoding="utf-8",
    )
    custom = dataclasses.replace(settings, templates_dir=tmp_path / "overrides")
    build_site(demo_db, custom, custom.output_dir, NOW)
    found = [p for p in pages(custom.output_dir) if "issues" not in p.parts]
    assert {len(p.relative_to(custom.output_dir).parts) for p in found} >= {1, 3}
    for page in found:
        depth = len(page.relative_to(custom.output_dir).parts) - 1
        doc = lxml.html.parse(str(page)).getroot()
        [link] = doc.cssselect("aside.mine a")
        assert link.get("href") == "../" * depth + "issues/", page
        assert link.text == custom.title, page
