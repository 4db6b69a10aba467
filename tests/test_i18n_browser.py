"""Arabic in a real browser (Debian's Chromium through Playwright): the digest of an Arabic
chapter and its members' pages read right to left, mirrored, at a phone's 375px and a desktop's
800px, with nothing wider than the viewport."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from digest_support import demo_issue, make_issue, make_post
from policyfeed.config import Settings
from policyfeed.digest.render import render_issue
from policyfeed.digest.screenshot import CHROMIUM, chromium, offline_page
from policyfeed.model import ChapterVariant, Topic
from policyfeed.templating import render_template

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]
WIDTHS = (375, 800)
CAIRO = ChapterVariant(slug="cairo", name="فرع القاهرة", intro="ما يعنيه ذلك لنا.", language="ar")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def measure(browser: Any, html: str, width: int, script: str) -> Any:
    with offline_page(browser, width) as page:
        page.set_content(html, wait_until="load")
        return page.evaluate(script)


LAYOUT = """() => {
  const box = (selector) => {
    const element = document.querySelector(selector);
    if (!element) return null;
    const r = element.getBoundingClientRect();
    return {left: r.left, right: r.right};
  };
  const style = (selector) => {
    const element = document.querySelector(selector);
    return element ? getComputedStyle(element) : null;
  };
  const text = (selector) => {
    // Where the words of an element are, not its block (which spans the line either way).
    const element = document.querySelector(selector);
    if (!element) return null;
    const range = document.createRange();
    range.selectNodeContents(element);
    const r = range.getBoundingClientRect();
    const outer = element.getBoundingClientRect();
    return {leftGap: r.left - outer.left, rightGap: outer.right - r.right};
  };
  const note = style('.note-box');
  return {
    scroll: document.documentElement.scrollWidth,
    direction: getComputedStyle(document.body).direction,
    noteRight: note ? note.borderRightWidth : null,
    noteLeft: note ? note.borderLeftWidth : null,
    label: text('.note-label'),
    meta: text('.issue-meta'),
    h1: text('h1'),
  };
}"""


def arabic_digest(settings: Settings, demo_db: Any) -> str:
    issue, posts = demo_issue(demo_db, settings)
    issue = dataclasses.replace(issue, note="**كلمة المحرر** هنا، مع [رابط](https://example.org/).")
    return render_issue(issue, posts, settings, chapter=CAIRO).html


@pytest.mark.parametrize("width", WIDTHS)
def test_an_arabic_digest_reads_right_to_left_without_overflow(
    browser, demo_db, settings, width
) -> None:
    found = measure(browser, arabic_digest(settings, demo_db), width, LAYOUT)

    assert found["direction"] == "rtl"
    assert found["scroll"] <= width
    # Mirrored: the note's bar on the right; the fixed words start at the right.
    assert (found["noteRight"], found["noteLeft"]) == ("4px", "0px")
    for where in ("label", "meta"):
        assert found[where]["rightGap"] < 1 < found[where]["leftGap"], (where, found[where])


@pytest.mark.parametrize("width", WIDTHS)
def test_an_arabic_digest_of_long_arabic_posts_fits(browser, settings, width) -> None:
    posts = [
        make_post(
            f"p{n}",
            title="حوكمة الإنترنت للجميع " * 3,
            body_html=(
                "<blockquote>" + "الإنترنت للجميع " * 40 + "</blockquote><ul><li>بند</li></ul>"
            ),
            topics=[Topic("ig", "حوكمة الإنترنت")],
        )
        for n in range(3)
    ]
    html = render_issue(make_issue(note="ملاحظة " * 50), posts, settings, chapter=CAIRO).html

    found = measure(browser, html, width, LAYOUT)

    assert found["direction"] == "rtl" and found["scroll"] <= width


def web_page(settings: Settings, name: str, **context: Any) -> str:
    site = {"title": "السياسة العامة", "description": "", "url": "https://example.org/",
            "language": "ar", "dir": "rtl"}  # fmt: skip
    values = {
        "root": "/", "feeds": [], "csrf": "x", "action": "/x", "token": "x", "note": "",
        "error": "", "link_page": "/preferences/link",
        "signup": {"chapters": [{"slug": "cairo", "name": "القاهرة"}], "consent_text": "موافقة."},
        "values": {"email": "", "name": "", "chapter": ""},
        "topics": [{"slug": "itu", "name": "الاتحاد الدولي للاتصالات"},
                   {"slug": "trade", "name": "الاتفاقيات التجارية"}],
        **context,
    }  # fmt: skip
    return render_template(settings, f"web/{name}", language="ar", site=site, **values)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    ("name", "context"),
    [
        ("preferences.html", {"member": {"email": "a@example.org", "name": "", "chapter": "cairo",
                                         "status": "active", "topics": ["trade"]}}),
        ("preferences.html", {"member": {"email": "a@example.org", "name": "", "chapter": "",
                                         "status": "unsubscribed", "topics": []}}),
        ("unsubscribe.html", {}),
        ("subscribe.html", {"error": "عنوان غير صالح."}),
        ("unsubscribe_invalid.html", {"contact": "editor@example.org", "preferences_link": "/p"}),
    ],
)  # fmt: skip
def test_arabic_pages_read_right_to_left_without_overflow(
    browser, settings, width, name, context
) -> None:
    found = measure(browser, web_page(settings, name, **context), width, LAYOUT)

    assert found["direction"] == "rtl"
    assert found["scroll"] <= width, f"{name} scrolls sideways at {width}px"
    # The heading starts at the right edge of its column.
    assert found["h1"]["rightGap"] < 1 < found["h1"]["leftGap"], found["h1"]
