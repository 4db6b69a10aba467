"""The WSGI app against hostile requests, in process: only built files, bounded requests,
honest errors and no 500s. The same over real sockets is in test_web_processes.py; the
hypothesis fuzz is in test_web_fuzz.py."""

from __future__ import annotations

import dataclasses
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, EnvironBuilder

from policyfeed.config import Settings
from policyfeed.store import open_db

SECRET = "hostile-test-key"
CSP_DIRECTIVES = ("default-src", "script-src 'none'", "frame-ancestors 'none'", "base-uri 'none'")


@dataclasses.dataclass
class Site:
    client: Client
    app: Any
    folder: Path
    db_path: Path
    settings: Settings


def make_site(settings: Settings, tmp_path: Path, **changes: Any) -> Site:
    from policyfeed.web.app import make_app

    folder = tmp_path / "public"
    (folder / "posts" / "hello").mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text("<!DOCTYPE html><title>Public Policy</title>")
    (folder / "posts" / "hello" / "index.html").write_text("<!DOCTYPE html><title>Hello</title>")
    (folder / "feed.xml").write_text("<rss version='2.0'><channel/></rss>")
    db_path = tmp_path / "site.db"
    if not db_path.exists():
        open_db(db_path).conn.close()
    configured = dataclasses.replace(settings, secret=SECRET, **changes)
    app = make_app(configured, db_path, folder)
    return Site(Client(app), app, folder, db_path, configured)


@pytest.fixture
def site(settings: Settings, tmp_path: Path) -> Site:
    return make_site(settings, tmp_path)


def raw_get(app: Any, path_info: str, method: str = "GET", **environ: Any) -> tuple[int, bytes]:
    """Call the app with a PATH_INFO as a server hands it over: the request's bytes, decoded
    as latin-1 (PEP 3333), whatever they are."""
    env = EnvironBuilder(method=method).get_environ()
    env["PATH_INFO"] = path_info
    env.update(environ)
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(line)
        return lambda data: None

    body = b"".join(app(env, start_response))
    return int(status[0].split()[0]), body


# --- only regular files inside the output folder ---------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret_file = tmp_path / "elsewhere" / "passwd"
    secret_file.parent.mkdir()
    secret_file.write_text("root:x:0:0:root:/root:/bin/bash\n")
    return secret_file


def test_a_symlink_to_a_file_outside_the_site_is_not_served(site: Site, outside: Path) -> None:
    (site.folder / "leak.txt").symlink_to(outside)
    response = site.client.get("/leak.txt")
    assert response.status_code == 404
    assert b"root:x" not in response.get_data()


def test_a_symlink_to_etc_passwd_is_not_served(site: Site) -> None:
    (site.folder / "leak.txt").symlink_to("/etc/passwd")
    assert site.client.get("/leak.txt").status_code == 404


def test_a_symlinked_folder_that_leaves_the_site_is_not_served(site: Site, outside: Path) -> None:
    (site.folder / "elsewhere").symlink_to(outside.parent, target_is_directory=True)
    assert site.client.get("/elsewhere/passwd").status_code == 404
    assert site.client.get("/elsewhere/").status_code == 404
    assert site.client.get("/elsewhere").status_code == 404  # no redirect to a folder outside


def test_an_index_html_that_links_outside_is_not_served(site: Site, outside: Path) -> None:
    folder = site.folder / "topics" / "x"
    folder.mkdir(parents=True)
    (folder / "index.html").symlink_to(outside)
    assert site.client.get("/topics/x/").status_code == 404


def test_a_symlink_to_a_hidden_file_inside_the_site_is_not_served(site: Site) -> None:
    hidden = site.folder / ".policyfeed"
    hidden.mkdir()
    (hidden / "build-state.json").write_text("{}")
    (site.folder / "state.json").symlink_to(hidden / "build-state.json")
    assert site.client.get("/state.json").status_code == 404


def test_a_symlink_that_stays_inside_the_site_is_served(site: Site) -> None:
    (site.folder / "rss.xml").symlink_to(site.folder / "feed.xml")
    response = site.client.get("/rss.xml")
    assert response.status_code == 200
    assert response.get_data() == (site.folder / "feed.xml").read_bytes()


@pytest.mark.parametrize("path", ["/feed.xml/", "/index.html/", "/posts/hello/index.html/"])
def test_a_file_asked_for_as_a_folder_is_not_found(site: Site, path: str) -> None:
    """A trailing slash names a folder: a file under it would be a second address for every
    page, whose relative links all break."""
    assert site.client.get(path).status_code == 404


def test_a_fifo_or_a_dangling_link_is_not_served_and_does_not_hang(site: Site) -> None:
    os.mkfifo(site.folder / "pipe.xml")
    (site.folder / "gone.xml").symlink_to(site.folder / "no-such-file.xml")
    (site.folder / "loop.xml").symlink_to(site.folder / "loop.xml")
    for path in ("/pipe.xml", "/gone.xml", "/loop.xml"):
        assert site.client.get(path).status_code == 404, path


def test_an_unreadable_file_is_not_found_not_an_error(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refuse(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("feed.xml"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)  # root reads any file: a chmod would not do
    assert site.client.get("/feed.xml").status_code == 404


# --- malformed paths: 400 or 404, one log line, never a traceback ----------------------------


@pytest.mark.parametrize("path_info", ["/a\x00b", "/feed.xml\x00.html", "/\x00", "/a\x01b"])
def test_a_nul_or_control_byte_in_the_path_is_a_400_logged_in_one_line(
    site: Site, path_info: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    status, body = raw_get(site.app, path_info)
    assert status == 400
    assert b"Traceback" not in body
    records = [r for r in caplog.records if r.name.startswith("policyfeed")]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    assert records[0].exc_info is None
    assert "\n" not in records[0].getMessage()
    assert "\x00" not in records[0].getMessage()


def test_a_percent_encoded_nul_is_a_400(site: Site) -> None:
    assert site.client.get("/a%00b").status_code == 400


@pytest.mark.parametrize(
    "path_info",
    ["/" + "a" * 70_000, "/posts/" + "b" * 256, "/x/" * 3000, "/" + "é" * 200],
    ids=["70000", "segment-256", "deep", "long-utf8-segment"],
)
def test_an_overlong_path_is_a_404_logged_in_one_line(
    site: Site, path_info: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    status, body = raw_get(site.app, path_info.encode("utf-8").decode("latin-1"))
    assert status == 404
    assert b"Traceback" not in body
    assert len(body) < 10_000
    records = [r for r in caplog.records if r.name.startswith("policyfeed")]
    assert len(records) == 1
    assert records[0].exc_info is None
    assert len(records[0].getMessage()) < 300


@pytest.mark.parametrize("query", ["t=\x80", "=\x80", "t=1.%ff&x=\xc3\x28"])
def test_raw_bytes_that_are_not_utf8_in_the_query_string_are_a_400(
    site: Site, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    # werkzeug decodes the raw query string as UTF-8: this was a 500 with a traceback.
    status, body = raw_get(site.app, "/unsubscribe", QUERY_STRING=query)
    assert status == 400
    assert b"Traceback" not in body
    assert all(r.exc_info is None for r in caplog.records)


def test_percent_encoded_bytes_that_are_not_utf8_are_read_as_an_invalid_token(
    site: Site,
) -> None:
    response = site.client.get("/unsubscribe?t=%ff%fe")
    assert response.status_code == 400
    assert "This unsubscribe link is not valid" in response.get_data(as_text=True)


def test_invalid_utf8_in_the_path_is_not_found(site: Site) -> None:
    status, _ = raw_get(site.app, "/feed\xff.xml")
    assert status == 404


# --- bounded bodies and tokens ------------------------------------------------------------------


class CountingInput(io.RawIOBase):
    """A request body of ``size`` bytes that counts how much of it is read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.read_bytes)
        buffer[:n] = b"t" * n
        self.read_bytes += n
        return n


def test_a_20mb_post_to_unsubscribe_is_refused_with_413_before_it_is_read(site: Site) -> None:
    body = CountingInput(20 * 1024 * 1024)
    status, _ = raw_get(
        site.app,
        "/unsubscribe",
        method="POST",
        QUERY_STRING="t=x",
        CONTENT_TYPE="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(body.size),
        **{"wsgi.input": io.BufferedReader(body)},
    )
    assert status == 413
    assert body.read_bytes <= 64 * 1024


def test_a_body_to_a_static_file_is_refused_too(site: Site) -> None:
    response = site.client.get("/feed.xml", data=b"x" * 100_000)
    assert response.status_code == 413


def test_a_multipart_form_with_too_many_parts_is_refused(site: Site) -> None:
    # (A url-encoded form is bounded by the body cap alone: werkzeug reads it in one piece.)
    response = site.client.post(
        "/unsubscribe",
        data={f"f{i}": "1" for i in range(100)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413


def test_a_60kb_token_is_refused_with_400_and_not_echoed(site: Site) -> None:
    token = "A" * 60_000
    for response in (
        site.client.get(f"/unsubscribe?t={token}"),
        site.client.post(f"/unsubscribe?t={token}"),
        site.client.post("/unsubscribe", data={"t": token[:5000]}),  # a form under the cap
    ):
        assert response.status_code == 400
        assert token[:500].encode() not in response.get_data()
        assert len(response.get_data()) < 20_000


def test_a_60kb_token_in_a_form_is_over_the_body_cap(site: Site) -> None:
    assert site.client.post("/unsubscribe", data={"t": "A" * 60_000}).status_code == 413


def test_the_token_limit_is_far_above_any_real_token(site: Site) -> None:
    from policyfeed.audience.tokens import make_token
    from policyfeed.web.app import MAX_TOKEN_LENGTH

    longest = make_token(SECRET, 2**63 - 1, site.settings.list_identifier)
    assert len(longest) * 4 < MAX_TOKEN_LENGTH == 400
    response = site.client.post("/unsubscribe?t=" + "A" * (MAX_TOKEN_LENGTH + 1))
    assert response.status_code == 400
    assert b"A" * 401 not in response.get_data()


# --- the same headers on every HTML answer, set in one place ------------------------------------


def html_answers(site: Site) -> Iterator[tuple[str, Any]]:
    yield "static page", site.client.get("/")
    yield "static post", site.client.get("/posts/hello/")
    yield "not found", site.client.get("/missing/")
    yield "method not allowed", site.client.post("/")
    yield "unsubscribe page", site.client.get("/unsubscribe?t=1.abc")
    yield "too large", site.client.post("/unsubscribe?t=x", data=b"x" * 100_000)


def test_every_html_answer_carries_the_security_headers(site: Site) -> None:
    for label, response in html_answers(site):
        assert response.mimetype == "text/html", label
        csp = response.headers.get("Content-Security-Policy", "")
        for directive in CSP_DIRECTIVES:
            assert directive in csp, (label, csp)
        assert "unsafe-eval" not in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
        assert response.headers["X-Content-Type-Options"] == "nosniff", label


def test_every_answer_says_nosniff(site: Site) -> None:
    for path in ("/feed.xml", "/missing.xml", "/healthz"):
        assert site.client.get(path).headers["X-Content-Type-Options"] == "nosniff", path


def test_token_pages_are_not_stored_indexed_or_leaked_in_a_referer(site: Site) -> None:
    for response in (
        site.client.get("/unsubscribe?t=1.abc"),
        site.client.post("/unsubscribe?t=1.abc"),
        site.client.post("/unsubscribe?t=x", data=b"x" * 100_000),
        site.client.get("/unsubscribe?t=" + "A" * 1000),
    ):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "noindex" in response.headers["X-Robots-Tag"]


def test_static_pages_may_be_cached_and_are_not_marked_as_token_pages(site: Site) -> None:
    response = site.client.get("/")
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert "X-Robots-Tag" not in response.headers
