"""The editors' preview behind the example nginx and Caddy configurations, run for real in front
of the app as ``policyfeed serve --host 127.0.0.1`` makes it (waitress), with their ``/preview/``
blocks uncommented: the proxy connects from 127.0.0.1, and still the loopback rule never opens
the preview to the proxy's clients, even with ``web.trusted_proxies`` forgotten (0); with the
password the preview works through the proxy, and only with it.

Skipped where nginx or caddy is not installed (``.ci/run`` installs both)."""

from __future__ import annotations

import base64
import dataclasses
import http.client
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

import test_web_proxies
from policyfeed.config import Settings
from policyfeed.digest.issues import create_issue
from policyfeed.web.app import make_app
from policyfeed.web.preview import serve_endpoints
from policyfeed.web.server import create_server
from site_support import NOW
from test_web_proxies import Front, caddy, nginx  # noqa: F401 (fixtures)

PASSWORD = "correct horse battery staple"
DOCS = Path(__file__).resolve().parent.parent / "docs"


def uncommented_docs(target: Path) -> Path:
    """A copy of docs/ with the examples' ``/preview/`` blocks uncommented."""
    shutil.copytree(DOCS, target)
    conf = target / "nginx" / "policyfeed.conf"
    text = conf.read_text()
    block = text[text.index("    # location /preview/ {") :]
    block = block[: block.index("    # }\n") + len("    # }\n")]
    conf.write_text(text.replace(block, block.replace("    # ", "    ")))
    caddyfile = target / "caddy" / "Caddyfile"
    text = caddyfile.read_text()
    block = text[text.index("\t# handle /preview/* {") :]
    block = block[: block.index("\t# }\n") + len("\t# }\n")]
    caddyfile.write_text(text.replace(block, block.replace("\t# ", "\t")))
    return target


@pytest.fixture(params=[0, 1], ids=["trusted_proxies=0", "trusted_proxies=1"])
def trusted(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture(params=["", PASSWORD], ids=["no-password", "password"])
def password(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app_port(
    demo_db: sqlite_utils.Database,
    demo_db_path: Path,
    settings: Settings,
    tmp_path: Path,
    trusted: int,
    password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[int]:
    """The app as ``serve --host 127.0.0.1`` makes it, with draft issue 1; the proxy fixtures of
    test_web_proxies (which ask for this one first) read the examples from the changed copy."""
    monkeypatch.setattr(test_web_proxies, "DOCS", uncommented_docs(tmp_path / "docs"))
    configured = dataclasses.replace(
        settings,
        secret="proxy-key-of-the-tests",
        trusted_proxies=trusted,
        preview_password=password,
    )
    assert create_issue(demo_db, configured, period="2012-07-30T08:00", now=NOW) is not None
    folder = tmp_path / "public"
    folder.mkdir()
    app = make_app(
        configured, demo_db_path, folder, endpoints=serve_endpoints(configured, "127.0.0.1")
    )
    server = create_server(app, configured, "127.0.0.1", 0)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()
        server.task_dispatcher.shutdown()


@pytest.fixture(params=["nginx", "caddy"])
def front(request: pytest.FixtureRequest) -> Front:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def direct(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def authorization(secret: str) -> str:
    return "Basic " + base64.b64encode(f"editor:{secret}".encode()).decode()


def test_through_the_proxy_this_machines_rule_never_applies(
    front: Front, app_port: int, password: str, trusted: int
) -> None:
    # Straight to the app from this machine: open without a proxy configured (so it is the
    # proxy that makes the difference), and not with one.
    closed = 401 if password else 404
    assert direct(app_port, "/preview/issues/1/") == (200 if trusted == 0 else closed)
    for path in ("/preview/", "/preview/issues/1/", "/preview/issues/1/all.html"):
        answer = front.request("GET", path)
        assert answer.status == closed, (path, answer.status)
        assert b"Issue 1" not in answer.body and b"Public Policy #1" not in answer.body
        assert answer.headers.get("cache-control", "") in ("no-store", "")


@pytest.mark.parametrize("password", [PASSWORD], ids=["password"])
def test_through_the_proxy_the_password_opens_it_and_only_the_right_one(
    front: Front, app_port: int, password: str
) -> None:
    opened = front.request("GET", "/preview/issues/1/", Authorization=authorization(PASSWORD))
    assert opened.status == 200 and b"Issue 1" in opened.body
    assert opened.headers["cache-control"] == "no-store"
    text = front.request("GET", "/preview/issues/1/all.txt", Authorization=authorization(PASSWORD))
    assert text.status == 200 and text.headers["content-type"] == "text/plain; charset=utf-8"
    wrong = front.request("GET", "/preview/", Authorization=authorization("not the password"))
    assert wrong.status == 401
    assert wrong.headers["www-authenticate"].startswith('Basic realm="')
