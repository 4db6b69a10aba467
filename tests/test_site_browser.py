"""The site's pages in a real browser (headless Debian Chromium, Playwright) at a phone's 375px
and a desktop's 1200px: a post's tables, quotations, code and figures look as they do in the
digest, and nothing makes the page scroll sideways."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from digest_support import demo_issue
from policyfeed.config import Settings
from policyfeed.digest.screenshot import CHROMIUM, chromium, offline_page
from policyfeed.site.build import build_site
from site_support import NOW, day, save

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]
WIDTHS = (375, 1200)
RICH_BODY = (
    "<p>The agenda, with <code>dig +dnssec example.org</code> to try at home:</p>"
    "<table><tr><th>Session</th><th>Room</th>"
    + "".join(f"<th>Column{i}</th>" for i in range(20))
    + "</tr><tr><td>Plenary</td><td>Liffey A</td>"
    + "".join(f"<td>Value{i}</td>" for i in range(20))
    + "</tr></table>"
    "<blockquote><p>The Internet is for everyone.</p></blockquote>"
    f"<pre><code>$ dig +dnssec {'very-long-name.' * 12}example.org</code></pre>"
    "<figure><img src='https://example.org/chart.png' width='1400' height='700' alt='A chart'>"
    "<figcaption>Members by region</figcaption></figure>"
)
STYLES = """() => {
  const style = (selector, property) =>
    getComputedStyle(document.querySelector(selector)).getPropertyValue(property);
  return {
    table: style("article table", "border-collapse"),
    cell: style("article td", "border-top-style"),
    header: style("article th", "border-top-style"),
    quote: style("article blockquote", "border-left-style"),
    pre: style("article pre", "background-color"),
    page: style("article", "background-color"),
    code: style("article p code", "font-family"),
    caption: style("article figcaption", "font-size"),
    text: style("article p:not(.meta)", "font-size"),
    figure: style("article figure", "margin-left"),
  };
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def rich_site(demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path) -> Path:
    save(demo_db, settings, "rich", date=day(26), body=RICH_BODY, title="A rich post")
    demo_issue(demo_db, settings, approved=True)
    out = tmp_path / "public"
    build_site(demo_db, settings, out, NOW)
    return out


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("rel", ["posts/rich/index.html", "issues/1/index.html"])
def test_a_posts_tables_quotes_code_and_figures_are_styled_like_the_digests(
    browser: Any, rich_site: Path, width: int, rel: str
) -> None:
    with offline_page(browser, width) as page:
        page.set_content((rich_site / rel).read_text(), wait_until="load")
        styles = page.evaluate(STYLES)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")

    assert styles["table"] == "collapse"
    assert styles["cell"] == styles["header"] == "solid"
    assert styles["quote"] == "solid"
    assert styles["pre"] != styles["page"]  # a shaded block, as in the email
    assert "monospace" in styles["code"]
    assert float(styles["caption"][:-2]) < float(styles["text"][:-2])
    assert styles["figure"] == "0px"  # not the browser's 40px indent, too much on a phone
    assert scroll_width <= width


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("rel", ["index.html", "topics/ietf/index.html", "issues/1/index.html"])
def test_the_sites_pages_fit_the_viewport(
    browser: Any, rich_site: Path, width: int, rel: str
) -> None:
    with offline_page(browser, width) as page:
        page.set_content((rich_site / rel).read_text(), wait_until="load")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
