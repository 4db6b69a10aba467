"""The digest in a real browser: headless Chromium (Debian's), driven by Playwright, at a phone's
375px and a desktop's 800px. A page wider than its viewport scrolls sideways: a failure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from digest_support import demo_issue, make_issue, make_post, render_demo
from policyfeed.digest.render import render_issue
from policyfeed.digest.screenshot import CHROMIUM, chromium, demo_digest_html, offline_page
from policyfeed.model import Topic
from policyfeed.site.issue_archive import write_issue_archive

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]
WIDTHS = (375, 800)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def page_width(browser: Any, html: str, width: int, **options: Any) -> int:
    with offline_page(browser, width, **options) as page:
        page.set_content(html, wait_until="load")
        return int(page.evaluate("document.documentElement.scrollWidth"))


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_digest_fits_the_viewport(browser, demo_db, settings, width) -> None:
    digest = render_demo(demo_db, settings)

    assert page_width(browser, digest.html, width) <= width


@pytest.mark.parametrize("width", WIDTHS)
def test_a_digest_of_awkward_posts_fits_the_viewport(browser, settings, width) -> None:
    long_url = "https://www.itu.int/en/wcit-12/Pages/" + "very-long-path-segment-" * 8
    wide_table = "<table><tr>" + "".join(f"<td>Column{i}</td>" for i in range(30)) + "</tr></table>"
    posts = [
        make_post(
            "awkward",
            title="A title with an unbreakable word " + "Telecommunications" * 6,
            body_html=(
                f"<p>See <a href='{long_url}'>{long_url}</a></p>"
                "<p><img src='https://example.org/chart.png' width='1400' height='700'></p>"
                f"{wide_table}<pre>{'x' * 300}</pre>"
            ),
        ),
        make_post(
            "rtl",
            title="حوكمة الإنترنت للجميع 🌍",
            body_html="<p dir='rtl'>" + "الإنترنت للجميع " * 30 + "</p>",
            topics=[Topic("ig", "Internet governance")],
        ),
    ]

    digest = render_issue(make_issue(note="A note with " + "x" * 200), posts, settings)

    assert page_width(browser, digest.html, width) <= width


def test_a_digest_too_large_for_full_posts_fits_the_viewport_as_summaries(browser, settings):
    body = "<p>" + "Internet governance needs everyone at the table. " * 20 + "</p>"
    digest = render_issue(make_issue(), [make_post("huge", body_html=body * 300)], settings)

    assert digest.summaries_only
    assert page_width(browser, digest.html, 375) <= 375


def test_dark_mode_recolours_the_digest_despite_the_inlined_styles(browser, demo_db, settings):
    digest = render_demo(demo_db, settings)
    script = "getComputedStyle(document.querySelector('table.container')).backgroundColor"

    colours = {}
    for scheme in ("light", "dark"):
        with offline_page(browser, 800, color_scheme=scheme) as page:
            page.set_content(digest.html, wait_until="load")
            colours[scheme] = page.evaluate(script)

    assert colours == {"light": "rgb(255, 255, 255)", "dark": "rgb(28, 33, 40)"}


@pytest.mark.parametrize("width", WIDTHS)
def test_the_web_version_fits_the_viewport(browser, demo_db, settings, tmp_path, width) -> None:
    demo_issue(demo_db, settings, approved=True)
    write_issue_archive(demo_db, settings, tmp_path / "public")
    html = (tmp_path / "public" / "issues" / "1" / "index.html").read_text(encoding="utf-8")

    assert page_width(browser, html, width) <= width


def test_the_docs_screenshot_digest_is_the_demos_first_issue(demo_db_path, settings) -> None:
    html = demo_digest_html(demo_db_path, settings)

    assert "Issue 1 · 30 July 2012" in html
    assert 'href="https://policy.example.org/unsubscribe"' in html


def test_the_web_version_of_awkward_posts_fits_a_phone(browser, db, settings, tmp_path) -> None:
    from digest_support import NOW, add_post, approved_issue

    wide_table = "<table><tr>" + "".join(f"<td>Column{i}</td>" for i in range(30)) + "</tr></table>"
    add_post(
        db,
        settings,
        "awkward",
        title="Unbreakable " + "Telecommunications" * 6,
        body=f"{wide_table}<p>{'x' * 300}</p><img src='https://example.org/a.png' width='1400'>",
    )
    approved_issue(db, settings, period="week-1", now=NOW)
    write_issue_archive(db, settings, tmp_path / "public")
    html = (tmp_path / "public" / "issues" / "1" / "index.html").read_text(encoding="utf-8")

    assert page_width(browser, html, 375) <= 375
