"""The pages of the web app in a real browser (Debian's Chromium, driven by Playwright), served by
waitress on 127.0.0.1: the unsubscribe pages a member sees, with the app's Content-Security-Policy
in force, at a phone's 375px and a desktop's 800px. A console error (a CSP violation among them)
or a page wider than its viewport fails."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from policyfeed.audience.tokens import make_token
from policyfeed.config import Settings
from policyfeed.digest.screenshot import CHROMIUM, chromium
from policyfeed.site.build import build_site
from policyfeed.web.app import make_app
from policyfeed.web.server import create_server
from site_support import NOW

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]
SECRET = "browser-key-of-the-tests"
WIDTHS = (375, 800)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@dataclasses.dataclass
class Site:
    url: str
    settings: Settings
    db_path: Path

    def token(self, subscriber_id: int) -> str:
        return make_token(SECRET, subscriber_id, self.settings.list_identifier)

    def status_of(self, subscriber_id: int) -> str:
        with sqlite3.connect(self.db_path) as conn:
            row = conn.execute("SELECT status FROM subscribers WHERE id = ?", (subscriber_id,))
            return str(row.fetchone()[0])

    def first_member(self) -> int:
        with sqlite3.connect(self.db_path) as conn:
            row = conn.execute("SELECT min(id) FROM subscribers WHERE status = 'active'")
            return int(row.fetchone()[0])


@pytest.fixture
def site(
    demo_db: sqlite_utils.Database, demo_db_path: Path, settings: Settings, tmp_path: Path
) -> Iterator[Site]:
    configured = dataclasses.replace(settings, secret=SECRET)
    folder = tmp_path / "public"
    build_site(demo_db, configured, folder, NOW)
    server = create_server(make_app(configured, demo_db_path, folder), configured, "127.0.0.1", 0)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.effective_port}", configured, demo_db_path)
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()
        server.task_dispatcher.shutdown()


@pytest.fixture(params=WIDTHS, ids=[f"{w}px" for w in WIDTHS])
def page(browser: Any, site: Site, request: pytest.FixtureRequest) -> Iterator[Any]:
    width = request.param
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        # Only the app on 127.0.0.1; the demo posts' images elsewhere are not fetched.
        page.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url.startswith(site.url) else route.abort()
            ),
        )
        page.errors = []  # type: ignore[attr-defined]
        page.on(
            "console",
            lambda message: (
                page.errors.append(message.text)  # type: ignore[attr-defined]
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
        yield page
    finally:
        context.close()


def fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def csp_violations(page: Any) -> list[str]:
    return [e for e in page.errors if "Content Security Policy" in e or "Refused" in e]


def test_a_member_unsubscribes_with_the_button(page: Any, site: Site) -> None:
    member = site.first_member()
    page.goto(f"{site.url}/unsubscribe?t={site.token(member)}")
    assert page.title().startswith("Unsubscribe")
    assert page.locator("h1").inner_text() == f"Unsubscribe from {site.settings.title}?"
    assert site.status_of(member) == "active"  # seeing the page changes nothing
    assert fits(page)
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "You are unsubscribed"
    assert site.status_of(member) == "unsubscribed"
    assert fits(page)
    # The site's own look: its title links home, its feeds are in the footer.
    assert page.locator("a.site-title").inner_text() == site.settings.title
    assert page.get_by_role("link", name="Atom").count() == 1
    assert csp_violations(page) == [] and page.errors == []


def test_a_member_who_left_is_told_so(page: Any, site: Site) -> None:
    member = site.first_member()
    link = f"{site.url}/unsubscribe?t={site.token(member)}"
    page.goto(link)
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_load_state()
    page.goto(link)
    assert page.locator("h1").inner_text() == "You are already unsubscribed"
    assert page.get_by_role("button").count() == 0
    assert page.errors == []


def test_a_mangled_link_says_it_is_not_valid_and_how_to_leave(page: Any, site: Site) -> None:
    member = site.first_member()
    mangled = site.token(member)[:-4]  # a mail program cut it short
    page.goto(f"{site.url}/unsubscribe?t={mangled}")
    assert page.locator("h1").inner_text() == "This unsubscribe link is not valid"
    contact = page.get_by_role("link", name=site.settings.editor_email)
    assert (
        contact.get_attribute("href") == f"mailto:{site.settings.editor_email}?subject=Unsubscribe"
    )
    assert page.get_by_role("button").count() == 0
    assert site.status_of(member) == "active"
    assert fits(page)
    # The 400 itself is a console error in Chromium; nothing else is.
    assert csp_violations(page) == []


def test_the_sites_pages_load_under_the_apps_policy(page: Any, site: Site) -> None:
    for path in ("/", "/posts/public-policy-guests-at-ietf-84-vancouver/", "/no-such-page"):
        page.goto(site.url + path)
        assert fits(page), path
    assert csp_violations(page) == []
