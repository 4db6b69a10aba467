"""The example nginx and Caddy configurations (docs/nginx/, docs/caddy/), run for real in front
of the app under waitress: the proxy serves the files itself with the app's headers and media
types, passes only the endpoints, refuses hidden files, symlinks out and large bodies, and the
app sees the client's address through ``web.trusted_proxies = 1`` and not one a client made up.

Skipped where nginx or caddy is not installed (``.ci/run`` installs both)."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlite_utils
from werkzeug.wrappers import Request, Response

from policyfeed.config import Settings
from policyfeed.site.build import build_site
from policyfeed.web.app import Endpoint, WebContext, make_app
from policyfeed.web.server import create_server
from site_support import NOW

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
CADDY = shutil.which("caddy")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Front:
    port: int
    folder: Path

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            sent = {k.replace("_", "-"): v for k, v in headers.items()}
            if body is not None:
                sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return Answer(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            conn.close()


def swap(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced, which must be there (the example changed otherwise)."""
    assert old in text, f"the example no longer has {old!r}"
    return text.replace(old, new)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise AssertionError(f"the proxy exited with {process.returncode}: {errors[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def whoami(request: Request, site: WebContext) -> Response:
    return Response(f"{request.remote_addr} {request.scheme}", mimetype="text/plain")


@pytest.fixture
def app_port(
    demo_db: sqlite_utils.Database, demo_db_path: Path, settings: Settings, tmp_path: Path
) -> Iterator[int]:
    """The app under waitress (as serve runs it), trusting one proxy, with a /whoami endpoint
    that tells the client address it sees."""
    configured = dataclasses.replace(settings, secret="proxy-key-of-the-tests", trusted_proxies=1)
    folder = tmp_path / "public"
    build_site(demo_db, configured, folder, NOW)
    (folder / "leak.txt").symlink_to("/etc/passwd")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "feed.xml").write_text("hidden")
    app = make_app(configured, demo_db_path, folder, endpoints=[Endpoint("/whoami", whoami)])
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


@contextlib.contextmanager
def proxy(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True
    )
    try:
        wait_for_port(port, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture
def nginx(app_port: int, tmp_path: Path) -> Iterator[Front]:
    if NGINX is None:
        pytest.skip("nginx is not installed")
    port = free_port()
    folder = tmp_path / "public"
    prefix = tmp_path / "nginx"
    (prefix / "snippets").mkdir(parents=True)
    for name in ("policyfeed-proxy.conf", "policyfeed-headers.conf"):
        shutil.copyfile(DOCS / "nginx" / name, prefix / "snippets" / name)
    site = (DOCS / "nginx" / "policyfeed.conf").read_text()
    site = swap(site, "listen 80;", f"listen 127.0.0.1:{port};")
    site = swap(site, "listen [::]:80;", "")
    site = swap(site, "root /srv/policyfeed/public;", f"root {folder};")
    site = swap(site, "server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};")
    site = swap(site, "/etc/nginx/snippets/", f"{prefix}/snippets/")
    # The test's own endpoint, passed on exactly as the real ones are.
    site = swap(
        site,
        "    location = /healthz {",
        "    location = /whoami {\n        proxy_pass http://policyfeed_app;\n"
        f"        include {prefix}/snippets/policyfeed-proxy.conf;\n    }}\n"
        "    location = /healthz {",
    )
    (prefix / "site.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read tmp_path
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n"
        f"  access_log off;\n"
        + "".join(
            f"  {kind}_temp_path {prefix}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {prefix}/site.conf;\n}}\n"
    )
    check = subprocess.run(
        [NGINX, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stderr
    with proxy([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")], port):
        yield Front(port, folder)


@pytest.fixture
def caddy(app_port: int, tmp_path: Path) -> Iterator[Front]:
    if CADDY is None:
        pytest.skip("caddy is not installed")
    port = free_port()
    folder = tmp_path / "public"
    home = tmp_path / "caddy"
    home.mkdir()
    config = (DOCS / "caddy" / "Caddyfile").read_text()
    config = swap(config, "{\n\tservers {", "{\n\tadmin off\n\tauto_https off\n\tservers {")
    config = swap(config, "policy.example.org {", f"http://127.0.0.1:{port} {{")
    config = swap(config, "root * /srv/policyfeed/public", f"root * {folder}")
    config = swap(config, "reverse_proxy 127.0.0.1:8000", f"reverse_proxy 127.0.0.1:{app_port}")
    config = swap(config, "path /unsubscribe /healthz", "path /unsubscribe /healthz /whoami")
    (home / "Caddyfile").write_text(config)
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
    env["XDG_CONFIG_HOME"] = str(home / "config")
    command = [CADDY, "run", "--config", str(home / "Caddyfile"), "--adapter", "caddyfile"]
    with proxy(command, port, env):
        yield Front(port, folder)


@pytest.fixture(params=["nginx", "caddy"])
def front(request: pytest.FixtureRequest) -> Front:
    return request.getfixturevalue(request.param)


# --- what the proxy does with files ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/feed.xml", "application/rss+xml"),
        ("/atom.xml", "application/atom+xml"),
        ("/feed.json", "application/feed+json"),
        ("/topics/ietf/feed.xml", "application/rss+xml"),
        ("/feeds.opml", "text/x-opml"),
        ("/", "text/html"),
    ],
)
def test_the_proxy_serves_the_built_files_with_their_media_types_and_headers(
    front: Front, path: str, media_type: str
) -> None:
    answer = front.request("GET", path)
    assert answer.status == 200
    assert answer.headers["content-type"].split(";")[0] == media_type
    assert "utf-8" in answer.headers["content-type"].lower()
    file = front.folder / path.lstrip("/")
    assert answer.body == (file / "index.html" if file.is_dir() else file).read_bytes()
    assert answer.headers["x-content-type-options"] == "nosniff"
    csp = answer.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "policyfeed" not in answer.headers.get("server", "")  # the proxy answered


def test_the_proxy_refuses_hidden_files_and_paths_out_of_the_site(front: Front) -> None:
    for path in ("/.hidden/feed.xml", "/../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"):
        answer = front.request("GET", path)
        assert answer.status in (400, 403, 404), (path, answer.status)
        assert b"root:" not in answer.body and b"hidden" not in answer.body


def test_nginx_refuses_a_symlink_out_of_the_site(nginx: Front) -> None:
    answer = nginx.request("GET", "/leak.txt")
    assert answer.status in (403, 404)
    assert b"root:" not in answer.body


@pytest.mark.xfail(
    strict=True, reason="Caddy's file_server follows symlinks (docs/deploy.md says so)"
)
def test_caddy_refuses_a_symlink_out_of_the_site(caddy: Front) -> None:
    answer = caddy.request("GET", "/leak.txt")
    assert answer.status in (403, 404)


def test_the_proxy_takes_no_writes_to_files(front: Front) -> None:
    assert front.request("POST", "/feed.xml", b"x=1").status in (403, 405)


# --- what it passes to the app ----------------------------------------------------------------


def test_the_endpoints_reach_the_app(front: Front) -> None:
    health = front.request("GET", "/healthz")
    assert (health.status, health.body) == (200, b"ok\n")
    page = front.request("GET", "/unsubscribe?t=1.abc")
    assert page.status == 400
    assert b"This unsubscribe link is not valid" in page.body
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("method", "path", "status", "marker"),
    [
        ("GET", "/subscribe", 200, b'action="/subscribe"'),
        # No Origin, no form token: the app asks again with its own form (never the proxy's 403).
        ("POST", "/subscribe", 403, b'action="/subscribe"'),
        ("GET", "/confirm?t=c.1.2.x", 400, b"not valid"),
        ("GET", "/preferences?t=p.1.x", 400, b"not valid"),
        ("GET", "/preferences/link", 200, b'action="/preferences/link"'),
    ],
)
def test_the_sign_ups_pages_and_forms_reach_the_app(
    front: Front, method: str, path: str, status: int, marker: bytes
) -> None:
    """Every page's subscribe box posts to /subscribe; the mails link /confirm and
    /preferences: behind the proxy they are the app's pages, not the proxy's 403 or 404."""
    body = b"email=reader%40example.org" if method == "POST" else None
    answer = front.request(method, path, body)
    assert (answer.status, marker in answer.body) == (status, True), answer.body[:300]
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_a_large_body_is_refused_by_the_proxy(front: Front) -> None:
    answer = front.request("POST", "/unsubscribe", b"t=" + b"A" * (64 * 1024))
    assert answer.status == 413


def test_the_app_sees_the_clients_address_and_not_a_forged_one(front: Front) -> None:
    plain = front.request("GET", "/whoami")
    assert plain.body.decode().split() == ["127.0.0.1", "http"]
    forged = front.request("GET", "/whoami", X_Forwarded_For="6.6.6.6", X_Forwarded_Proto="https")
    assert forged.body.decode().split() == ["127.0.0.1", "http"]


def test_the_proxy_does_not_pass_other_paths_to_the_app(front: Front) -> None:
    answer = front.request("GET", "/unsubscribe/extra")
    assert answer.status == 404
    assert b"This unsubscribe link" not in answer.body
    assert re.search(rb"policyfeed", answer.headers.get("server", "").encode()) is None
