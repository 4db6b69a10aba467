"""`serve` over real HTTP: the built demo site under waitress on 127.0.0.1 (a port the OS picks)."""

from __future__ import annotations

import gzip
import http.client
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest
import sqlite_utils

from policyfeed.config import Settings
from policyfeed.site.build import build_site
from site_support import NOW, save, with_limit

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


@dataclass
class Server:
    port: int
    folder: Path

    def get(self, path: str, method: str = "GET", **headers: str) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers={k.replace("_", "-"): v for k, v in headers.items()})
            response = conn.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            conn.close()


@pytest.fixture
def served(
    demo_db: sqlite_utils.Database, demo_db_path: Path, settings: Settings, tmp_path: Path
) -> Iterator[tuple[Server, sqlite_utils.Database, Settings]]:
    from waitress.server import create_server

    from policyfeed.web.app import make_app

    settings = with_limit(
        settings, 3, secret="serve-key-of-the-tests"
    )  # five demo posts: archive pages too
    folder = tmp_path / "site"
    build_site(demo_db, settings, folder, NOW)
    server = create_server(make_app(settings, demo_db_path, folder), host="127.0.0.1", port=0)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():  # waitress's run() has no stop: poll in short rounds
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Server(server.effective_port, folder), demo_db, settings
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()
        server.task_dispatcher.shutdown()


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/feed.xml", "application/rss+xml; charset=utf-8"),
        ("/atom.xml", "application/atom+xml; charset=utf-8"),
        ("/feed.json", "application/feed+json; charset=utf-8"),
        ("/archive/1/feed.xml", "application/rss+xml; charset=utf-8"),
        ("/archive/1/atom.xml", "application/atom+xml; charset=utf-8"),
        ("/topics/ietf/feed.json", "application/feed+json; charset=utf-8"),
        ("/feeds.opml", "text/x-opml; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
        ("/posts/public-policy-guests-at-ietf-84-vancouver/", "text/html; charset=utf-8"),
    ],
)
def test_files_are_served_with_their_media_types(
    served: tuple[Server, object, object], path: str, media_type: str
) -> None:
    server = served[0]
    answer = server.get(path)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == media_type
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    file = server.folder / path.lstrip("/")
    assert answer.body == (file / "index.html" if file.is_dir() else file).read_bytes()


def test_an_etag_that_matches_gets_304_without_a_body(
    served: tuple[Server, object, object],
) -> None:
    server = served[0]
    first = server.get("/atom.xml")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert server.get("/atom.xml").headers["ETag"] == etag
    again = server.get("/atom.xml", If_None_Match=etag)
    assert (again.status, again.body) == (304, b"")
    assert again.headers["ETag"] == etag
    assert server.get("/atom.xml", If_None_Match='"something-else"').status == 200


def test_last_modified_is_the_file_mtime_and_if_modified_since_gets_304(
    served: tuple[Server, object, object],
) -> None:
    server = served[0]
    answer = server.get("/feed.xml")
    modified = parsedate_to_datetime(answer.headers["Last-Modified"])
    mtime = datetime.fromtimestamp(int((server.folder / "feed.xml").stat().st_mtime), UTC)
    assert modified == mtime
    same = server.get("/feed.xml", If_Modified_Since=answer.headers["Last-Modified"])
    assert (same.status, same.body) == (304, b"")
    older = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert server.get("/feed.xml", If_Modified_Since=older).status == 200


def test_a_rebuild_that_changes_nothing_keeps_etag_and_last_modified_honest(
    served: tuple[Server, sqlite_utils.Database, Settings],
) -> None:
    server, db, settings = served
    before = server.get("/feed.json")
    build_site(db, settings, server.folder, NOW)
    assert server.get("/feed.json", If_None_Match=before.headers["ETag"]).status == 304
    assert server.get("/feed.json").headers["Last-Modified"] == before.headers["Last-Modified"]
    save(db, settings, "fresh-news", date=NOW, topics=["IETF"])
    build_site(db, settings, server.folder, NOW)
    changed = server.get("/feed.json", If_None_Match=before.headers["ETag"])
    assert changed.status == 200
    assert changed.headers["ETag"] != before.headers["ETag"]
    assert b"fresh-news" in changed.body


def test_gzip_for_clients_that_ask_and_identity_for_the_others(
    served: tuple[Server, object, object],
) -> None:
    server = served[0]
    raw = (server.folder / "atom.xml").read_bytes()
    zipped = server.get("/atom.xml", Accept_Encoding="gzip, deflate")
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped.body) == raw
    assert len(zipped.body) < len(raw)
    plain = server.get("/atom.xml")
    assert plain.headers.get("Content-Encoding") is None and plain.body == raw
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert plain.headers["ETag"] != zipped.headers["ETag"]  # two representations, two tags
    refused = server.get("/atom.xml", Accept_Encoding="gzip;q=0, identity")
    assert refused.headers.get("Content-Encoding") is None
    again = server.get("/atom.xml", Accept_Encoding="gzip", If_None_Match=zipped.headers["ETag"])
    assert again.status == 304


def test_head_answers_headers_only(served: tuple[Server, object, object]) -> None:
    answer = served[0].get("/feed.xml", method="HEAD")
    assert answer.status == 200 and answer.body == b""
    assert answer.headers["Content-Type"] == "application/rss+xml; charset=utf-8"


def test_folders_redirect_to_their_slash_and_serve_their_index(
    served: tuple[Server, object, object],
) -> None:
    server = served[0]
    moved = server.get("/topics/ietf")
    assert moved.status == 301
    assert moved.headers["Location"].endswith("/topics/ietf/")
    assert (
        server.get("/topics/ietf/").body == (server.folder / "topics/ietf/index.html").read_bytes()
    )


@pytest.mark.parametrize(
    "path", ["/missing.xml", "/.policyfeed/build-state.json", "/..%2f..%2fetc/passwd", "/../x"]
)
def test_missing_hidden_and_outside_files_are_not_found(
    served: tuple[Server, object, object], path: str
) -> None:
    assert served[0].get(path).status == 404


def test_only_get_and_head_reach_static_files(served: tuple[Server, object, object]) -> None:
    answer = served[0].get("/feed.xml", method="POST")
    assert answer.status == 405
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


def test_the_serve_command_listens_on_localhost_and_serves_the_built_site(
    demo_db_path: Path, tmp_path: Path
) -> None:
    config = ROOT / "policyfeed.toml"
    base = [sys.executable, "-m", "policyfeed", "--db", str(demo_db_path), "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYFEED_")}
    env["POLICYFEED_SECRET"] = "serve-key-of-the-tests"
    folder = tmp_path / "public"
    subprocess.run([*base, "build", "--out", str(folder)], check=True, env=env, timeout=60)
    process = subprocess.Popen(
        [*base, "serve", "--port", "0", "--out", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the socket listens
        assert line.startswith(f"Serving {folder} at http://127.0.0.1:"), line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        answer = Server(port, folder).get("/feed.xml")
        assert answer.status == 200
        assert answer.body == (folder / "feed.xml").read_bytes()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_with_a_mistyped_out_folder_names_the_one_that_exists(
    demo_db_path: Path, tmp_path: Path
) -> None:
    """`serve --out pubic` next to a built `public/` would serve nothing but 404s: it is refused,
    naming the folder meant, and nothing listens."""
    config = ROOT / "policyfeed.toml"
    base = [sys.executable, "-m", "policyfeed", "--db", str(demo_db_path), "--config", str(config)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYFEED_")}
    env["POLICYFEED_SECRET"] = "serve-key-of-the-tests"
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "index.html").write_text("<!doctype html>", encoding="utf-8")
    result = subprocess.run(
        [*base, "serve", "--port", "0", "--out", str(tmp_path / "pubic")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"{tmp_path / 'pubic'}: no such folder; did you mean {tmp_path / 'public'}?" in (
        result.stderr
    )
    assert result.stdout == ""
