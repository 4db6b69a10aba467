"""Hostile requests, generated (hypothesis), against the WSGI app in process, as a server hands
them over (PEP 3333: the request's bytes decoded as latin-1): bad percent-encoding, NUL and
control bytes, invalid UTF-8, overlong paths, headers and query strings, duplicate keys, every
method, broken multipart and url-encoded bodies, lying Content-Length and Transfer-Encoding.

Every answer is below 500 and holds no traceback, nothing is logged with one, and no row of
the database changes. The default run sends a few hundred requests;
``POLICYFEED_FUZZ_EXAMPLES=3000`` (as ``.ci/run`` does) sends thousands.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from policyfeed.audience.tokens import make_token
from policyfeed.config import load_settings
from policyfeed.site.build import build_site
from policyfeed.store import open_db
from policyfeed.web.app import SiteApp, make_app

ROOT = Path(__file__).resolve().parent.parent
SECRET = "fuzz-key-of-the-tests"
EXAMPLES = int(os.environ.get("POLICYFEED_FUZZ_EXAMPLES", "300"))

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]
METHODS += ["PROPFIND", "MKCOL", "get", "G\xe9T", "X" * 300]
KNOWN_PATHS = [
    "/", "/unsubscribe", "/unsubscribe/", "//unsubscribe", "/healthz", "/feed.xml", "/atom.xml",
    "/feed.json", "/feeds.opml", "/posts/", "/topics/ietf/", "/topics/ietf", "/archive/1/",
    "/issues/", "/.policyfeed/", "/../etc/passwd", "/preferences/link", "/subscribe",
    "/index.html",
]  # fmt: skip
HOSTILE_PIECES = [
    "%", "%z", "%zz", "%0", "%00", "%ff", "%fe%ff", "%c0%af", "%2e%2e", "%2f", "%5c", "..", ".",
    "\x00", "\x01", "\x1b[31m", "\x7f", "\r\n", "\xff", "\xc3\x28", "\xed\xa0\x80", "\xf4\x90",
    "é".encode().decode("latin-1"), "\\", ";", "?", "#", "&", "=", "+", " ", "\t", "*", "~",
]  # fmt: skip
HEADER_NAMES = [
    "Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Accept-Encoding",
    "If-None-Match", "If-Modified-Since", "Range", "Cookie", "X-Forwarded-For",
    "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "Origin", "Referer", "Authorization",
    "Expect", "Content-Encoding", "Accept", "User-Agent",
]  # fmt: skip

latin1_text = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=40)
piece = st.one_of(st.sampled_from(HOSTILE_PIECES), latin1_text, st.sampled_from(["a", "b", "x"]))


@st.composite
def paths(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["known", "built", "long", "deep"]))
    if kind == "known":
        base = draw(st.sampled_from(KNOWN_PATHS))
        return base + "".join(draw(st.lists(piece, max_size=3)))
    if kind == "long":
        return as_wsgi(
            "/" + draw(st.sampled_from(["a", "%", "\x00", "é"])) * draw(st.integers(200, 70_000))
        )
    if kind == "deep":
        return "/x" * draw(st.integers(100, 3000))
    return "/" + "/".join(draw(st.lists(piece, min_size=1, max_size=6)))


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    token = draw(
        st.one_of(
            st.sampled_from(["", "1", "1.", ".", "1.abc", "-1.x", "99999999999999999999.x"]),
            st.sampled_from([MANGLED_TOKEN, MANGLED_TOKEN.upper(), MANGLED_TOKEN[:-2]]),
            latin1_text,
            st.text(max_size=600),
            st.builds(lambda n: "A" * n, st.integers(380, 70_000)),
        )
    )
    pairs = [("t", token)] * draw(st.integers(0, 3))  # duplicate keys
    pairs += draw(st.lists(st.tuples(latin1_text, latin1_text), max_size=4))
    raw = "&".join(f"{k}={v}" for k, v in pairs)
    raw = draw(st.sampled_from(["", raw, raw + "".join(draw(st.lists(piece, max_size=4)))]))
    return as_wsgi(raw)


def as_wsgi(text: str) -> str:
    """Text as a server hands it over: its UTF-8 bytes decoded as latin-1 (unless it is
    latin-1 already, standing for raw bytes)."""
    return text if all(ord(c) < 256 for c in text) else text.encode().decode("latin-1")


def multipart(boundary: str, parts: list[tuple[str, str]], cut: int | None) -> bytes:
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in parts
    )
    body += f"--{boundary}--\r\n"
    data = body.encode("latin-1", "replace")
    return data if cut is None else data[:cut]


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str | None, bytes]:
    kind = draw(st.sampled_from(["none", "form", "multipart", "bytes", "huge-form"]))
    if kind == "none":
        return None, b""
    if kind == "form":
        pairs = draw(st.lists(st.tuples(latin1_text, latin1_text), max_size=6))
        if draw(st.booleans()):
            pairs.append(("t", MANGLED_TOKEN))
        if draw(st.booleans()):
            pairs.append(("List-Unsubscribe", "One-Click"))
        raw = "&".join(f"{k}={v}" for k, v in pairs) + "".join(draw(st.lists(piece, max_size=3)))
        return "application/x-www-form-urlencoded", raw.encode("latin-1", "replace")
    if kind == "multipart":
        boundary = draw(st.sampled_from(["b0undary", "", "x" * 80, "a b", "--", "\x00"]))
        parts = draw(st.lists(st.tuples(latin1_text, latin1_text), max_size=30))
        cut = draw(st.one_of(st.none(), st.integers(0, 400)))
        declared = draw(
            st.sampled_from(
                [f"multipart/form-data; boundary={boundary}", "multipart/form-data", "multipart/x"]
            )
        )
        return declared, multipart(boundary, parts, cut)
    if kind == "huge-form":
        return "application/x-www-form-urlencoded", b"t=" + b"A" * draw(st.integers(16_000, 70_000))
    content_type = draw(st.one_of(st.none(), latin1_text, st.sampled_from(["text/plain"])))
    return content_type, draw(st.binary(max_size=2000))


@dataclass
class FuzzRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    content_type: str | None
    body: bytes
    declared_length: str | None
    proxied: bool


@st.composite
def requests(draw: st.DrawFn) -> FuzzRequest:
    content_type, body = draw(bodies())
    headers = draw(
        st.dictionaries(st.sampled_from(HEADER_NAMES), st.one_of(latin1_text, piece), max_size=5)
    )
    length_kind = draw(st.sampled_from(["true", "true", "none", "lie", "garbage"]))
    declared = {
        "true": str(len(body)) if body else None,
        "none": None,
        "lie": str(draw(st.integers(0, 10**12))),
        "garbage": draw(
            st.sampled_from(["-1", "abc", "1e3", " 5", "", "0x10", "99999999999999999999"])
        ),
    }[length_kind]
    return FuzzRequest(
        method=draw(st.sampled_from(METHODS)),
        path=draw(paths()),
        query=draw(query_strings()),
        headers=headers,
        content_type=content_type,
        body=body,
        declared_length=declared,
        proxied=draw(st.booleans()),
    )


def _plain(
    method: str, path: str, *, content_type: str | None = None, body: bytes = b""
) -> FuzzRequest:
    return FuzzRequest(
        method=method,
        path=path,
        query="",
        headers={},
        content_type=content_type,
        body=body,
        declared_length=str(len(body)) if body else None,
        proxied=False,
    )


MANGLED_TOKEN = ""  # set once the database exists (a genuine token with one character changed)


def environ_for(request: FuzzRequest) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.path,
        "QUERY_STRING": request.query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers.items():
        key = "HTTP_" + name.upper().replace("-", "_")
        if name == "Content-Type":
            key = "CONTENT_TYPE"
        elif name == "Content-Length":
            key = "CONTENT_LENGTH"
        elif name == "Transfer-Encoding":
            environ["wsgi.input_terminated"] = True
        environ[key] = value
    if request.content_type is not None:
        environ["CONTENT_TYPE"] = request.content_type
    if request.declared_length is not None:
        environ["CONTENT_LENGTH"] = request.declared_length
    return environ


def call(app: SiteApp, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    status: list[str] = []
    headers: list[tuple[str, str]] = []

    def start_response(line: str, response_headers: list[Any], exc_info: Any = None) -> Any:
        status.append(line)
        headers.extend(response_headers)
        return lambda data: None

    iterable = app(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return int(status[0].split()[0]), headers, body


def database_rows(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return list(conn.iterdump())


class TracebackCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback" in record.getMessage() or record.levelno >= 40:
            self.records.append(record)


@pytest.fixture
def apps(tmp_path: Path, demo_db_path: Path) -> tuple[SiteApp, SiteApp, Path]:
    global MANGLED_TOKEN
    db_path = demo_db_path
    settings = load_settings(
        ROOT / "policyfeed.toml", environ={}, cwd=tmp_path, overrides={"secret": SECRET}
    )
    db = open_db(db_path)
    try:
        build_site(db, settings, tmp_path / "public", _now())
        first = db.conn.execute("SELECT min(id) FROM subscribers").fetchone()[0]
    finally:
        db.conn.close()
    genuine = make_token(SECRET, first, settings.list_identifier)
    MANGLED_TOKEN = genuine[:-1] + ("A" if genuine[-1] != "A" else "B")
    (tmp_path / "public" / "leak.txt").symlink_to("/etc/passwd")
    plain = make_app(settings, db_path, tmp_path / "public")
    proxied = make_app(
        dataclasses.replace(settings, trusted_proxies=1), db_path, tmp_path / "public"
    )
    return plain, proxied, db_path


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime(2012, 7, 30, 12, 0, tzinfo=UTC)


def test_hostile_requests_get_no_5xx_no_traceback_and_change_no_row(
    apps: tuple[SiteApp, SiteApp, Path],
) -> None:
    plain, proxied, db_path = apps
    before = database_rows(db_path)
    catcher = TracebackCatcher()
    logger = logging.getLogger("policyfeed")
    logger.addHandler(catcher)
    seen: dict[int, int] = {}

    @hsettings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    # One request certain to reach each kind of answer, whatever the random ones reach: a
    # page, a malformed path, a missing file, a wrong method, a body over the cap.
    @example(_plain("GET", "/"))
    @example(_plain("GET", "/a\x00b"))
    @example(_plain("GET", "/no-such-page/"))
    @example(_plain("PUT", "/feed.xml"))
    @example(
        _plain(
            "POST",
            "/unsubscribe",
            content_type="application/x-www-form-urlencoded",
            body=b"t=" + b"A" * 70_000,
        )
    )
    @given(requests())
    def check(request: FuzzRequest) -> None:
        catcher.records.clear()
        app = proxied if request.proxied else plain
        status, headers, body = call(app, environ_for(request))
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (status, request)
        assert b"Traceback" not in body
        assert b"root:x:0:0" not in body
        names = {k.lower(): v for k, v in headers}
        assert names.get("x-content-type-options") == "nosniff"
        if names.get("content-type", "").startswith("text/html"):
            assert "frame-ancestors 'none'" in names["content-security-policy"]
        assert catcher.records == [], [catcher.format(r) for r in catcher.records]

    try:
        check()
    finally:
        logger.removeHandler(catcher)
    assert database_rows(db_path) == before
    # The requests reached more than the front door: files, endpoints and refusals (the
    # explicit examples above make sure of each).
    assert {200, 400, 404, 405, 413} <= set(seen), seen
