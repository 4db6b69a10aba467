"""A real HTTP server on 127.0.0.1 for the sync tests: it serves the feeds a test sets, answers
conditional GETs as a CMS does (ETag, Last-Modified, 304), and can misbehave on purpose (hang,
fail, redirect, compress). Started and stopped by the tests; every wait is bounded."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Longest a hanging answer waits before giving up (the server is stopped long before).
HANG_LIMIT = 30.0


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=UTF-8"
    etag: str = ""
    last_modified: str = ""
    gzip: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    #: Send the headers with this Content-Length but only ``body`` (then close).
    claimed_length: int | None = None
    #: Send the body in chunks (Transfer-Encoding: chunked), with no Content-Length.
    chunked: bool = False


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class FeedServer:
    """``server.set("/feed/", body, etag='"v1"')``; ``server.url("/feed/")``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.released = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                owner.requests.append(
                    Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                route = owner.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain")
                    return
                if route.hang:
                    owner.released.wait(HANG_LIMIT)
                    return
                if route.status == 200 and self._unchanged(route):
                    self.send_response(304)
                    if route.etag:
                        self.send_header("ETag", route.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = route.body
                extra = dict(route.headers)
                if route.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
                    body = gzip.compress(body) if not extra.get("X-Raw-Gzip") else body
                    extra.pop("X-Raw-Gzip", None)
                    extra["Content-Encoding"] = "gzip"
                if route.etag:
                    extra["ETag"] = route.etag
                if route.last_modified:
                    extra["Last-Modified"] = route.last_modified
                if route.chunked:
                    self._send_chunked(route.status, body, route.content_type, extra)
                    return
                self._send(route.status, body, route.content_type, extra, route.claimed_length)

            def _unchanged(self, route: Route) -> bool:
                sent_etag = self.headers.get("If-None-Match")
                if sent_etag is not None and route.etag:
                    return sent_etag == route.etag
                since = self.headers.get("If-Modified-Since")
                return (
                    since is not None and bool(route.last_modified) and since == route.last_modified
                )

            def _send_chunked(
                self, status: int, body: bytes, content_type: str, headers: dict[str, str]
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Transfer-Encoding", "chunked")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                for start in range(0, len(body), 16384):
                    piece = body[start : start + 16384]
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    except (BrokenPipeError, ConnectionResetError):
                        return  # the client gave up (a size limit): fine
                self.wfile.write(b"0\r\n\r\n")

            def _send(
                self,
                status: int,
                body: bytes,
                content_type: str,
                headers: dict[str, str] | None = None,
                claimed_length: int | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(claimed_length or len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if claimed_length is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up (a size limit): fine
                if claimed_length is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set(self, path: str, body: bytes | str = b"", **options: object) -> Route:
        data = body.encode("utf-8") if isinstance(body, str) else body
        route = Route(body=data, **options)  # type: ignore[arg-type]
        self.routes[path] = route
        return route

    def redirect(self, path: str, location: str, status: int = 301) -> None:
        self.set(path, b"", status=status, content_type="text/html", headers={"Location": location})

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def running() -> Iterator[FeedServer]:
    server = FeedServer().start()
    try:
        yield server
    finally:
        server.stop()
