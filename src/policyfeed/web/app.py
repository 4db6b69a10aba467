"""The WSGI application behind ``policyfeed serve``: the built site and the site's endpoints.

Static files come from the output folder with the right media types (``application/rss+xml``,
``application/atom+xml``, ``application/feed+json``…), a strong ETag, Last-Modified (the file's
mtime, honest because unchanged files are never rewritten), 304 answers to ``If-None-Match`` and
``If-Modified-Since``, and gzip for clients that ask. Hidden files (the build state) are never
served.

Routing is one werkzeug :class:`~werkzeug.routing.Map`: an endpoint is a ``Rule`` in
:meth:`SiteApp.rules` and an ``on_<endpoint>`` method.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.security import safe_join
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from policyfeed.site.feeds import FEED_FILES, OPML_FILE

if TYPE_CHECKING:
    from policyfeed.config import Settings

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Media types by file name, then by suffix; text types are served as UTF-8.
MEDIA_TYPES_BY_NAME = {f.name: f.media_type for f in (*FEED_FILES, OPML_FILE)}
MEDIA_TYPES_BY_SUFFIX = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".json": "application/json",
    ".xml": "application/xml",
    ".txt": "text/plain",
    ".svg": "image/svg+xml",
    ".opml": OPML_FILE.media_type,
}
GZIP_MIN_BYTES = 256


def media_type(name: str) -> str:
    """The Content-Type for a file name, with ``charset=utf-8`` for text."""
    kind = MEDIA_TYPES_BY_NAME.get(name) or MEDIA_TYPES_BY_SUFFIX.get(Path(name).suffix.lower())
    if kind is None:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if _compressible(kind):
        kind += "; charset=utf-8"
    return kind


def _compressible(kind: str) -> bool:
    kind = kind.split(";", 1)[0].strip()
    return kind.startswith("text/") or kind.endswith(("xml", "json", "javascript"))


@lru_cache(maxsize=512)
def _representations(path: str, mtime_ns: int, size: int) -> tuple[bytes, str, bytes | None]:
    """A file's bytes, its ETag, and its gzip form when worth it (cached per version)."""
    data = Path(path).read_bytes()
    etag = hashlib.sha256(data).hexdigest()[:32]
    packed = None
    if len(data) >= GZIP_MIN_BYTES and _compressible(media_type(Path(path).name)):
        packed = gzip.compress(data, compresslevel=6, mtime=0)
    return data, etag, packed


class SiteApp:
    """The site: static files from ``out_dir`` and the endpoints (``/unsubscribe``)."""

    def __init__(self, settings: Settings, db_path: Path, out_dir: Path) -> None:
        self.settings = settings
        self.db_path = Path(db_path)
        self.out_dir = Path(out_dir)
        self.url_map = Map(self.rules())

    def rules(self) -> list[Rule]:
        return [
            Rule("/unsubscribe", endpoint="unsubscribe"),
            Rule("/", endpoint="static", defaults={"path": ""}),
            Rule("/<path:path>", endpoint="static"),
        ]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            endpoint, values = adapter.match()
            response = getattr(self, f"on_{endpoint}")(request, **values)
        except HTTPException as exc:
            response = exc.get_response(environ)
        return response(environ, start_response)

    # --- endpoints ------------------------------------------------------------------------

    def on_unsubscribe(self, request: Request) -> Response:
        from policyfeed.audience.unsubscribe import unsubscribe_view

        return unsubscribe_view(request, settings=self.settings, db_path=self.db_path)

    def on_static(self, request: Request, path: str) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(valid_methods=["GET", "HEAD"])
        parts = [p for p in path.split("/") if p]
        if any(p.startswith(".") for p in parts):
            raise NotFound()  # the build state and other hidden files are not part of the site
        joined = safe_join(str(self.out_dir), *parts) if parts else str(self.out_dir)
        if joined is None:
            raise NotFound()
        target = Path(joined)
        if target.is_dir():
            if parts and not path.endswith("/"):
                location = request.script_root + "/" + "/".join(parts) + "/"
                return redirect(location, code=301)
            target = target / "index.html"
        try:
            stat = target.stat()
        except OSError:
            raise NotFound() from None
        if not target.is_file():
            raise NotFound()
        data, etag, packed = _representations(str(target), stat.st_mtime_ns, stat.st_size)
        response = Response(data, content_type=media_type(target.name))
        if packed is not None:
            response.vary.add("Accept-Encoding")
            if request.accept_encodings["gzip"]:
                response.set_data(packed)
                response.headers["Content-Encoding"] = "gzip"
                etag += "-gzip"  # a different representation needs a different strong ETag
        response.set_etag(etag)
        response.last_modified = datetime.fromtimestamp(int(stat.st_mtime), UTC)
        response.cache_control.no_cache = True  # a preview: revalidate, then 304
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response.make_conditional(request)


def make_app(settings: Settings, db_path: Path, out_dir: Path) -> SiteApp:
    """The WSGI application serving ``out_dir`` and the endpoints for ``settings``."""
    return SiteApp(settings, db_path, out_dir)
