"""The whole journey of a reader, as a person makes it: a real ``policyfeed serve`` (waitress) and a
real SMTP relay (aiosmtpd) on 127.0.0.1, and Debian's Chromium driven by Playwright.

Sign up in a built page's box, get the confirmation, follow it, get the welcome, open the
preferences from it, move to another chapter, see the next issue arrive as that chapter's
variant, unsubscribe from the preferences, subscribe again. Every page on the way passes axe-core
(WCAG 2 A and AA rules: labels, lang, contrast, landmarks…), in light and dark mode, and the
box is used with the keyboard in the order it reads.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from policyfeed.digest.screenshot import CHROMIUM, chromium
from smtp_server import SmtpSink

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]
ROOT = Path(__file__).resolve().parent.parent
WAIT = 30.0  # seconds: every wait below is bounded by this
NEW_MEMBER = "nina.ortiz@example.net"
SITE = "https://policy.example.org/"  # the demo's base_url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"waited {WAIT:.0f} s for {what}")


class Journey:
    def __init__(self, folder: Path, relay: SmtpSink, demo_db: Path) -> None:
        self.folder = folder
        self.relay = relay
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.db = folder / "posts.db"
        shutil.copyfile(demo_db, self.db)
        self.taken: dict[tuple[str, str], int] = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("POLICYFEED_")},
            **relay.environ(),
            "POLICYFEED_SECRET": "journey-secret-of-the-tests",
            "POLICYFEED_OUTPUT_DIR": str(folder / "public"),
            "POLICYFEED_OUTBOX_DIR": str(folder / "outbox"),
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "policyfeed", "--db", str(self.db), "--config",
             str(ROOT / "policyfeed.toml"), *args],
            env=self.env, cwd=self.folder, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    def serve(self) -> subprocess.Popen[str]:
        server = subprocess.Popen(
            [sys.executable, "-m", "policyfeed", "--db", str(self.db), "--config",
             str(ROOT / "policyfeed.toml"), "-v", "serve", "--host", "127.0.0.1", "--port",
             str(self.port)],
            env=self.env, cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(self.url + "healthz", timeout=2) as answer:
                    return bool(answer.status == 200)
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                return False

        wait_for("policyfeed serve to answer", healthy)
        return server

    def messages_to(self, address: str) -> list[EmailMessage]:
        found = []
        for received in list(self.relay.messages):
            if address in (r.lower() for r in received.rcpt_tos):
                message = email.message_from_bytes(received.data, policy=policy.default)
                assert isinstance(message, EmailMessage)
                found.append(message)
        return found

    def next_message(self, address: str, subject: str) -> EmailMessage:
        """The next message to ``address`` whose subject starts so (waiting for it)."""
        key = (address, subject)
        taken = self.taken.get(key, 0)
        wait_for(f"{subject!r} to reach {address}", lambda: len(self._matching(*key)) > taken)
        self.taken[key] = taken + 1
        return self._matching(*key)[taken]

    def _matching(self, address: str, subject: str) -> list[EmailMessage]:
        return [m for m in self.messages_to(address) if m["Subject"].startswith(subject)]

    def status_of(self, address: str) -> tuple[str, str | None]:
        with sqlite3.connect(self.db) as conn:
            row = conn.execute(
                "SELECT s.status, c.slug FROM subscribers s LEFT JOIN chapters c "
                "ON c.id = s.chapter_id WHERE s.email = ?",
                (address,),
            ).fetchone()
        return (row[0], row[1]) if row else ("none", None)

    def topics_of(self, address: str) -> list[str]:
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT t.slug FROM subscriber_topics st JOIN topics t ON t.id = st.topic_id "
                "JOIN subscribers s ON s.id = st.subscriber_id WHERE s.email = ? ORDER BY t.slug",
                (address,),
            ).fetchall()
        return [row[0] for row in rows]


def link(message: EmailMessage, url: str, path: str) -> str:
    """The message's link to ``path``, on the local server: the site's public address (the
    demo's, which publish's checks accept) is served here by ``policyfeed serve``."""
    part = message.get_body(("plain",))
    assert part is not None
    found = re.search(re.escape(SITE + path) + r"\?t=[A-Za-z0-9._~%-]+", str(part.get_content()))
    assert found, f"no {path} link in {message['Subject']!r}"
    return url + found.group(0)[len(SITE) :]


@pytest.fixture
def journey(tmp_path: Path, pristine_demo_db: Path) -> Iterator[Journey]:
    with SmtpSink() as relay:
        yield Journey(tmp_path, relay, pristine_demo_db)


def check_accessible(page: Any) -> None:
    """axe-core's WCAG 2 A/AA rules find nothing; the page says its language."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(
        page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}}
    )
    assert results.violations_count == 0, f"{page.url}:\n{results.generate_snapshot()}"
    assert page.evaluate("document.documentElement.lang") == "en"


def heading(page: Any) -> str:
    return str(page.locator("h1").first.inner_text())


def test_a_reader_signs_up_confirms_moves_chapter_picks_topics_gets_issues_leaves_and_returns(
    journey: Journey,
) -> None:
    journey.cli("build")
    server = journey.serve()
    try:
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 800, "height": 900})
            page = context.new_page()
            # Only the app; the demo posts' images elsewhere are not fetched.
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(journey.url)
                    else route.abort()
                ),
            )
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            _journey(journey, page)
            assert errors == []
            context.close()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=WAIT)
        print(output)
        with sqlite3.connect(journey.db) as conn:
            print(conn.execute("SELECT kind, status, last_error FROM notices").fetchall())


def _journey(journey: Journey, page: Any) -> None:
    url = journey.url
    # 1. The box on a post's page, with the keyboard in reading order.
    page.goto(url + "posts/public-policy-guests-at-ietf-84-vancouver/")
    check_accessible(page)
    page.focus("#box-email")
    page.keyboard.type(NEW_MEMBER)
    order = []
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    assert order == ["box-name", "box-chapter", "BUTTON"]  # the honeypot is never reached
    page.fill("#box-name", "Nina Ortiz")
    page.select_option("#box-chapter", "switzerland")
    page.click("aside.signup button")
    assert heading(page) == "Check your inbox"
    check_accessible(page)
    assert journey.status_of(NEW_MEMBER) == ("pending", "switzerland")

    # 2. The confirmation: opening the link changes nothing, the button confirms.
    confirmation = journey.next_message(NEW_MEMBER, "Please confirm your subscription")
    page.goto(link(confirmation, url, "confirm"))
    assert heading(page) == "Confirm your subscription"
    check_accessible(page)
    assert journey.status_of(NEW_MEMBER)[0] == "pending"
    page.click("text=Yes, subscribe me")
    assert heading(page) == "You are subscribed"
    check_accessible(page)
    assert journey.status_of(NEW_MEMBER) == ("active", "switzerland")

    # 3. The welcome, and the preferences page from it: another chapter.
    welcome = journey.next_message(NEW_MEMBER, "Welcome to Public Policy")
    page.goto(link(welcome, url, "preferences"))
    assert heading(page) == "Your preferences"
    check_accessible(page)
    page.select_option("#preferences-chapter", "vancouver")
    page.click("text=Save changes")
    assert page.locator('[role="status"]').inner_text() == "Your changes are saved."
    assert journey.status_of(NEW_MEMBER) == ("active", "vancouver")

    # 4. The next issue is that chapter's variant.
    journey.cli("publish")
    digest = journey.next_message(NEW_MEMBER, "Public Policy #1")
    html_part = digest.get_body(("html",))
    assert html_part is not None
    body = str(html_part.get_content())
    assert "Vancouver Chapter" in body and "IETF 84" in body
    assert "ITU Council" not in body  # the Switzerland chapter's post

    # 4b. Her own topics, ticked on the preferences page (reached from the digest): the next
    # issue brings only their posts, even one on a topic her chapter follows.
    page.goto(link(digest, url, "preferences"))
    topics = page.locator("fieldset.topics-choice")
    assert topics.locator("legend").inner_text() == "Topics"
    assert page.get_by_label("IETF").is_checked() is False
    page.get_by_label("ITU / WCIT").check()
    page.get_by_label("Trade agreements").check()
    page.click("text=Save changes")
    assert page.locator('[role="status"]').inner_text() == "Your changes are saved."
    assert page.get_by_label("ITU / WCIT").is_checked()
    assert page.get_by_label("Trade agreements").is_checked()
    assert not page.get_by_label("IETF").is_checked()
    check_accessible(page)
    assert journey.topics_of(NEW_MEMBER) == ["itu-wcit", "trade-agreements"]
    for title, topic in (
        ("WCIT opens in Dubai", "ITU / WCIT"),
        ("IETF 85 in Atlanta", "IETF"),  # a topic of her chapter, not one she ticked
        ("Another TPP round", "Trade agreements"),
    ):
        journey.cli("posts", "add", "--title", title, "--body", f"<p>{title}.</p>",
                    "--topic", topic, "--publish")  # fmt: skip
    journey.cli("issue", "new", "--period", "topics-week")
    journey.cli("publish", "--period", "topics-week")
    chosen = journey.next_message(NEW_MEMBER, "Public Policy #2")
    chosen_part = chosen.get_body(("html",))
    assert chosen_part is not None
    chosen_body = str(chosen_part.get_content())
    assert "WCIT opens in Dubai" in chosen_body and "Another TPP round" in chosen_body
    assert "IETF 85" not in chosen_body
    assert "Vancouver Chapter" in chosen_body  # still her chapter's variant

    # 5. Unsubscribe from the preferences (reached from the digest), then come back.
    page.goto(link(digest, url, "preferences"))
    page.click("text=Unsubscribe")
    assert "You are unsubscribed" in page.locator('[role="status"]').inner_text()
    assert journey.status_of(NEW_MEMBER)[0] == "unsubscribed"
    check_accessible(page)
    page.click("text=Subscribe again")
    assert "follow its link" in page.locator('[role="status"]').inner_text()
    assert journey.status_of(NEW_MEMBER)[0] == "unsubscribed"
    again = journey.next_message(NEW_MEMBER, "Please confirm your subscription")
    page.goto(link(again, url, "confirm"))
    page.click("text=Yes, subscribe me")
    assert heading(page) == "You are subscribed"
    assert journey.status_of(NEW_MEMBER)[0] == "active"
    journey.next_message(NEW_MEMBER, "Welcome to Public Policy")

    # 6. In dark mode, and at a phone's width, the pages hold too.
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 375, "height": 800})
    for path in ("", "issues/", "subscribe", "preferences/link"):
        page.goto(url + path)
        check_accessible(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path

    # Exactly the messages the journey asked for, each once.
    subjects = sorted(m["Subject"] for m in journey.messages_to(NEW_MEMBER))
    assert subjects == [
        "Please confirm your subscription to Public Policy",
        "Please confirm your subscription to Public Policy",
        digest["Subject"],
        chosen["Subject"],
        "Welcome to Public Policy",
        "Welcome to Public Policy",
    ]
