"""The editors' preview in a real browser (Debian's Chromium, driven by Playwright) on a real
``policyfeed serve`` (waitress) on 127.0.0.1: an editor opens /preview/, clicks to a draft, to a
chapter's HTML and to the text part, at a phone's 375px and a desktop's 800px, under the app's
Content-Security-Policy. A console error or a page wider than its viewport fails."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest_support import NOW, add_post
from policyfeed.config import load_settings
from policyfeed.digest.issues import create_issue, get_issue
from policyfeed.digest.sample import sample_unsubscribe_url
from policyfeed.digest.screenshot import CHROMIUM, chromium
from policyfeed.store import open_db

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]
ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "policyfeed.toml"
LISTENING = re.compile(r"Serving .* at http://127\.0\.0\.1:(\d+)/")
WIDTHS = (375, 800)


def environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYFEED_")}
    env.update(
        POLICYFEED_CONFIG=str(CONFIG),
        POLICYFEED_DB=str(folder / "posts.db"),
        POLICYFEED_OUTPUT_DIR=str(folder / "public"),
        POLICYFEED_SECRET="preview-browser-key",
    )
    return env


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, pristine_demo_db: Path
) -> Iterator[tuple[str, str]]:
    """``policyfeed serve`` on 127.0.0.1 (a port the OS picks) over a copy of the demo database
    holding draft issue 1 and a post waiting for the next; yields its URL and issue 1's subject."""
    folder = tmp_path_factory.mktemp("preview-served")
    shutil.copyfile(pristine_demo_db, folder / "posts.db")
    (folder / "public").mkdir()
    settings = load_settings(CONFIG, environ={}, cwd=folder)
    db = open_db(folder / "posts.db")
    assert create_issue(db, settings, period="2012-07-30T08:00", now=NOW) is not None
    add_post(db, settings, "waiting-post", title="A post still waiting")
    subject = get_issue(db, 1).subject
    db.conn.close()
    command = [sys.executable, "-m", "policyfeed", "serve", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        command, env=environment(folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port, seen, deadline = 0, [], time.monotonic() + 60
        while time.monotonic() < deadline and not port:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if match := LISTENING.search(line):
                port = int(match.group(1))
        assert port, f"serve did not start: {''.join(seen)}"
        preview_line = process.stdout.readline()
        assert preview_line.startswith(f"Editors' preview: http://127.0.0.1:{port}/preview/ ")
        yield f"http://127.0.0.1:{port}", subject
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def page(browser: Any, served: tuple[str, str], request: pytest.FixtureRequest) -> Iterator[Any]:
    url = served[0]
    context = browser.new_context(viewport={"width": request.param, "height": 800})
    try:
        page = context.new_page()
        # Only the app; the demo posts' images elsewhere are not fetched.
        page.route(
            "**/*",
            lambda route: route.continue_() if route.request.url.startswith(url) else route.abort(),
        )
        page.errors = []  # type: ignore[attr-defined]
        page.on(
            "console",
            lambda m: page.errors.append(m.text) if m.type == "error" else None,  # type: ignore[attr-defined]
        )
        page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
        yield page
    finally:
        context.close()


def fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def blocked_images(page: Any) -> list[str]:
    """Console errors other than the demo's images elsewhere, which the test refuses to fetch."""
    return [e for e in page.errors if "net::ERR_FAILED" not in e]


def test_an_editor_clicks_from_the_list_to_a_chapters_html_and_its_text_part(
    page: Any, served: tuple[str, str]
) -> None:
    url, subject = served
    page.goto(f"{url}/preview/")
    assert page.locator("h1").inner_text() == "Preview of the digest"
    assert subject in page.locator("tr#issue-1").inner_text()
    assert page.get_by_role("link", name="Issue 2 (not made yet)", exact=False).count() == 1
    assert fits(page)

    page.get_by_role("link", name="Issue 1", exact=True).click()
    page.wait_for_load_state()
    assert page.url == f"{url}/preview/issues/1/"
    assert page.locator("h1").inner_text() == "Issue 1"
    vancouver = page.locator("tr#variant-vancouver")
    assert "Vancouver Chapter" in vancouver.inner_text()
    assert "% of 102,000" in vancouver.inner_text()
    assert fits(page)

    vancouver.get_by_role("link", name="HTML").click()
    page.wait_for_load_state()
    assert page.url == f"{url}/preview/issues/1/vancouver.html"
    assert "Vancouver Chapter" in page.locator("body").inner_text()
    assert page.title() != ""

    page.go_back()
    page.wait_for_load_state()
    page.locator("tr#variant-vancouver").get_by_role("link", name="Text").click()
    page.wait_for_load_state()
    assert page.url == f"{url}/preview/issues/1/vancouver.txt"
    text = page.locator("body").inner_text()
    assert "Vancouver Chapter" in text
    settings = load_settings(CONFIG, environ={})
    assert sample_unsubscribe_url(settings) in text  # the sample member's link, no placeholder
    assert "%%" not in text
    assert blocked_images(page) == []


def test_the_next_issue_not_made_yet_shows_its_waiting_post(
    page: Any, served: tuple[str, str]
) -> None:
    url, _ = served
    page.goto(f"{url}/preview/")
    page.get_by_role("link", name="Issue 2 (not made yet)", exact=False).click()
    page.wait_for_load_state()
    assert page.url == f"{url}/preview/next/"
    assert "A post still waiting" in page.locator("body").inner_text()
    page.locator("tr#variant-all").get_by_role("link", name="Text").click()
    page.wait_for_load_state()
    assert "A post still waiting" in page.locator("body").inner_text()
    assert blocked_images(page) == []
