"""The fetch behind ``sources sync`` against a real HTTP server: gzip, a gzip bomb, size limits
counted while reading, redirects within limits and only to http(s), a connection cut short,
refused connections, and which failures count as temporary."""

from __future__ import annotations

import socket
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest

from feed_server import FeedServer
from policyfeed.content.fetch import FetchError, fetch

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
MIB = 1024 * 1024


@pytest.fixture
def server() -> Iterator[FeedServer]:
    feeds = FeedServer().start()
    yield feeds
    feeds.stop()


def get(url: str, **options: object) -> object:
    settings: dict[str, object] = {"timeout": 5, "max_bytes": MIB, "user_agent": "test"}
    settings.update(options)
    return fetch(url, **settings)  # type: ignore[arg-type]


def failure(url: str, **options: object) -> FetchError:
    with pytest.raises(FetchError) as caught:
        get(url, **options)
    return caught.value


def test_a_plain_fetch_returns_the_feed_and_its_validators(server: FeedServer) -> None:
    server.set("/feed", FEED, etag='"v1"', last_modified="Wed, 25 Jul 2012 10:00:00 GMT")
    got = get(server.url("/feed"))
    assert (got.status, got.data, got.etag, got.last_modified) == (  # type: ignore[attr-defined]
        200,
        FEED,
        '"v1"',
        "Wed, 25 Jul 2012 10:00:00 GMT",
    )
    assert server.requests[0].headers["user-agent"] == "test"


def test_unchanged_since_the_etag_is_a_304(server: FeedServer) -> None:
    server.set("/feed", FEED, etag='"v1"')
    got = get(server.url("/feed"), etag='"v1"')
    assert got.not_modified and got.data == b""  # type: ignore[attr-defined]


def test_a_gzip_compressed_feed_is_inflated(server: FeedServer) -> None:
    body = FEED.replace(b"<title>t", b"<title>" + b"x" * 50_000)
    server.set("/feed", body, gzip=True)
    assert get(server.url("/feed")).data == body  # type: ignore[attr-defined]


def test_a_gzip_bomb_is_stopped_at_the_limit_without_filling_memory(server: FeedServer) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip
    block = b"\0" * MIB
    bomb = b"".join(packer.compress(block) for _ in range(200)) + packer.flush()
    assert len(bomb) < MIB
    server.set("/feed", bomb, gzip=True, headers={"X-Raw-Gzip": "1"})
    tracemalloc.start()
    try:
        error = failure(server.url("/feed"), max_bytes=2 * MIB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(error) == (
        "the feed is larger than 2097152 bytes once decompressed (the source's max_bytes)"
    )
    assert not error.temporary
    assert peak < 16 * MIB  # never the 200 MiB it inflates to


def test_a_body_larger_than_the_limit_is_refused_from_its_content_length(
    server: FeedServer,
) -> None:
    server.set("/feed", b"<" + b"x" * (2 * MIB))
    error = failure(server.url("/feed"))
    assert str(error) == "the feed is larger than 1048576 bytes (the source's max_bytes)"


def test_a_chunked_body_is_counted_while_it_is_read(server: FeedServer) -> None:
    server.set("/feed", b"<" + b"x" * (3 * MIB), chunked=True)
    error = failure(server.url("/feed"))
    assert str(error) == "the feed is larger than 1048576 bytes (the source's max_bytes)"


def test_a_relative_redirect_is_followed_and_a_permanent_one_reported(server: FeedServer) -> None:
    server.set("/new/feed", FEED)
    server.redirect("/old", "/new/feed", status=301)
    got = get(server.url("/old"))
    assert got.url == server.url("/new/feed")  # type: ignore[attr-defined]
    assert got.moved_to == server.url("/new/feed")  # type: ignore[attr-defined]
    server.redirect("/moved-for-now", "/new/feed", status=302)
    assert get(server.url("/moved-for-now")).moved_to == ""  # type: ignore[attr-defined]


def test_more_than_five_redirects_are_refused(server: FeedServer) -> None:
    for hop in range(7):
        server.redirect(f"/r{hop}", f"/r{hop + 1}", status=302)
    server.set("/r7", FEED)
    error = failure(server.url("/r0"))
    assert str(error) == f"more than 5 redirects (the last to {server.url('/r6')})"
    assert not error.temporary


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://files.example.org/feed.xml"])
def test_a_redirect_to_another_scheme_is_refused(server: FeedServer, target: str) -> None:
    server.redirect("/feed", target, status=302)
    error = failure(server.url("/feed"))
    assert str(error) == f"redirected (302) to {target!r}, which is not an http(s) address"


def test_a_connection_cut_short_is_temporary(server: FeedServer) -> None:
    server.set("/feed", FEED, claimed_length=len(FEED) + 500)
    error = failure(server.url("/feed"))
    assert error.temporary
    assert str(error) == "the connection closed before the whole feed came; try again later"


def test_a_refused_connection_is_temporary() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = failure(f"http://127.0.0.1:{port}/feed")
    assert error.temporary and error.exit_code == 75
    assert str(error) == "the connection was refused; try again later"


@pytest.mark.parametrize(
    ("status", "temporary", "message"),
    [
        (500, True, "the server answered 500 Internal Server Error; try again later"),
        (503, True, "the server answered 503 Service Unavailable; try again later"),
        (429, True, "the server answered 429 Too Many Requests; try again later"),
        (404, False, "the feed is not found (404 Not Found): check the source's url"),
        (410, False, "the feed is gone (410 Gone): check the source's url"),
        (403, False, "the server answered 403 Forbidden, not the feed"),
    ],
)
def test_what_each_status_means(
    server: FeedServer, status: int, temporary: bool, message: str
) -> None:
    server.set("/feed", b"no", status=status, content_type="text/plain")
    error = failure(server.url("/feed"))
    assert (error.temporary, str(error)) == (temporary, message)
    assert error.exit_code == (75 if temporary else 1)


def test_a_server_that_never_answers_is_given_up_on_after_the_timeout(server: FeedServer) -> None:
    import time

    server.set("/feed", hang=True)
    started = time.monotonic()
    error = failure(server.url("/feed"), timeout=0.5)
    assert time.monotonic() - started < 5
    assert error.temporary
    assert str(error) == "no complete answer within 0.5 s (the source's timeout)"


def test_a_body_that_keeps_coming_is_stopped_at_the_timeout() -> None:
    """A server dripping a byte at a time never lets a single read time out: the whole fetch's
    deadline stops it."""
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n<rss")
            while not stop.wait(0.05):
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        error = failure(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=1)
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
    assert time.monotonic() - started < 5
    assert str(error) == "no complete answer within 1 s (the source's timeout)"
