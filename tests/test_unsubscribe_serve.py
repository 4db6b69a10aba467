"""The unsubscribe endpoint of ``serve`` over real HTTP: the site's WSGI app under waitress on
127.0.0.1 (a port the OS picks), requests as a mail provider or a browser sends them."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from policyfeed.audience.tokens import make_token
from policyfeed.config import Settings
from policyfeed.store import open_db

SECRET = "serve-test-key-of-the-tests"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Site:
    url: str
    settings: Settings
    db_path: Path

    def request(self, method: str, path: str, body: bytes | None = None) -> Answer:
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())

    def token(self, subscriber_id: int) -> str:
        return make_token(SECRET, subscriber_id, self.settings.list_identifier)

    def status_of(self, subscriber_id: int) -> str:
        with sqlite3.connect(self.db_path) as conn:
            return str(
                conn.execute(
                    "SELECT status FROM subscribers WHERE id = ?", (subscriber_id,)
                ).fetchone()[0]
            )


@pytest.fixture
def site(settings: Settings, tmp_path: Path) -> Iterator[Site]:
    from waitress.server import create_server

    from policyfeed.web.app import make_app

    db_path = tmp_path / "site.db"
    db = open_db(db_path)
    with db.conn:
        db.conn.executemany(
            "INSERT INTO subscribers (email, status, created_at, updated_at) VALUES "
            "(?, 'active', '2012-07-01T00:00:00Z', '2012-07-01T00:00:00Z')",
            [("ada@example.org",), ("bob@example.org",)],
        )
    db.conn.close()
    out_dir = tmp_path / "public"
    out_dir.mkdir()
    (out_dir / "index.html").write_text("<!DOCTYPE html><title>Public Policy</title>")
    configured = dataclasses.replace(settings, secret=SECRET)
    server = create_server(make_app(configured, db_path, out_dir), host="127.0.0.1", port=0)
    stop = threading.Event()

    def serve() -> None:
        # waitress's own run() has no stop; polling in short rounds lets the test end it cleanly.
        while not stop.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.effective_port}", configured, db_path)
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()
        server.task_dispatcher.shutdown()


ONE_CLICK = b"List-Unsubscribe=One-Click"


def test_the_get_page_asks_for_confirmation_and_changes_nothing(site: Site) -> None:
    answer = site.request("GET", f"/unsubscribe?t={site.token(1)}")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<form method="post"' in answer.body
    assert b"<button" in answer.body
    assert site.status_of(1) == "active"


def test_the_one_click_post_unsubscribes_before_the_answer_arrives(site: Site) -> None:
    answer = site.request("POST", f"/unsubscribe?t={site.token(1)}", ONE_CLICK)
    assert answer.status == 200
    assert "Set-Cookie" not in answer.headers
    assert site.status_of(1) == "unsubscribed"  # read the moment the answer is in
    assert site.status_of(2) == "active"


def test_a_double_post_is_harmless_and_the_second_answer_says_already(site: Site) -> None:
    first = site.request("POST", f"/unsubscribe?t={site.token(1)}", ONE_CLICK)
    second = site.request("POST", f"/unsubscribe?t={site.token(1)}", ONE_CLICK)
    assert (first.status, second.status) == (200, 200)
    assert b"You are unsubscribed" in first.body
    assert b"You are already unsubscribed" in second.body
    assert site.status_of(1) == "unsubscribed"


def test_a_forged_token_is_answered_400_not_valid_and_changes_nothing(site: Site) -> None:
    forged_token = make_token("guessed key", 1, site.settings.list_identifier)
    forged = site.request("POST", f"/unsubscribe?t={forged_token}", ONE_CLICK)
    assert forged.status == 400
    assert b"This unsubscribe link is not valid" in forged.body
    assert b"You are unsubscribed" not in forged.body
    assert site.status_of(1) == "active"


def test_the_confirmation_button_posts_back_to_the_same_endpoint(site: Site) -> None:
    import re

    page = site.request("GET", f"/unsubscribe?t={site.token(2)}").body.decode()
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert action is not None
    answer = site.request("POST", action.group(1).replace("&amp;", "&"), b"")
    assert answer.status == 200
    assert site.status_of(2) == "unsubscribed"


def test_the_rest_of_the_site_is_still_served(site: Site) -> None:
    answer = site.request("GET", "/")
    assert answer.status == 200
    assert b"Public Policy" in answer.body
