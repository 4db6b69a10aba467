"""The built site's files, as the web app serves them: only regular files whose real path (every
symlink followed) lies inside the real output folder, never a hidden one (the build state).

Files go out with the right media types (``application/rss+xml``, ``application/atom+xml``,
``application/feed+json``…), a strong ETag, Last-Modified (the file's mtime, honest because
unchanged files are never rewritten), 304 answers to ``If-None-Match`` and ``If-Modified-Since``,
and gzip for clients that ask. A renamed post's redirect page (:mod:`policyfeed.site.redirects`)
is answered with a ``301`` to the post's page and a ``Link: <…>; rel="canonical"`` header.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import stat
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from werkzeug.exceptions import NotFound
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from policyfeed.site.feeds import FEED_FILES, OPML_FILE
from policyfeed.site.redirects import read_redirect

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
#: Files up to this size are kept in memory (with their gzip form); larger ones are read anew.
CACHE_MAX_BYTES = 2 * 1024 * 1024
#: No file system here takes a longer name (in bytes), and no built path is this deep or long:
#: anything beyond is not a file of the site, whatever the file system would say.
NAME_MAX = 255
PATH_MAX = 4096


class PathTooLong(NotFound):
    """A request path no built file can have (a segment or the whole path too long)."""


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


def _read(path: Path) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file ``path`` and its stat, read through one descriptor (what
    is read is what was checked); OSError for anything else."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: the path was resolved,
    # so a link in its last part now means it was swapped under us.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IsADirectoryError(f"{path}: not a regular file")
        chunks = []
        while chunk := os.read(fd, 1024 * 1024):
            chunks.append(chunk)
        return b"".join(chunks), info
    finally:
        os.close(fd)


@lru_cache(maxsize=256)
def _cached(path: Path, version: tuple[int, int, int, int]) -> tuple[bytes, str, bytes | None]:
    data, _ = _read(path)
    return _representations(path.name, data)


def _representations(name: str, data: bytes) -> tuple[bytes, str, bytes | None]:
    """A file's bytes, its ETag, and its gzip form when worth it."""
    etag = hashlib.sha256(data).hexdigest()[:32]
    packed = None
    if len(data) >= GZIP_MIN_BYTES and _compressible(media_type(name)):
        packed = gzip.compress(data, compresslevel=6, mtime=0)
    return data, etag, packed


class StaticFiles:
    """Answers GET and HEAD for the files under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _locate(self, parts: list[str]) -> Path:
        """The real path of a site file or folder named by ``parts``; NotFound for anything that
        is not inside the site (after every link is followed) or is hidden."""
        try:
            root = self.folder.resolve(strict=True)
            real = root.joinpath(*parts).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # missing, a link loop, a name too long…
            raise NotFound() from None
        if not real.is_relative_to(root):
            raise NotFound()
        if any(p.startswith(".") for p in real.relative_to(root).parts):
            raise NotFound()
        return real

    def serve(self, request: Request, path: str) -> Response:
        if len(path.encode("utf-8", "surrogatepass")) > PATH_MAX:
            raise PathTooLong()
        parts = [p for p in path.split("/") if p]
        if any(len(p.encode("utf-8", "surrogatepass")) > NAME_MAX for p in parts):
            raise PathTooLong()
        if any(p.startswith(".") for p in parts):
            raise NotFound()  # the build state and other hidden files are not part of the site
        target = self._locate(parts)
        if target.is_dir():
            if parts and not path.endswith("/"):
                location = request.script_root + "/" + "/".join(parts) + "/"
                return redirect(location, code=301)
            target = self._locate([*parts, "index.html"])
        elif path.endswith("/"):
            raise NotFound()  # a trailing slash names a folder, not a file
        try:
            info = target.stat()
            if not stat.S_ISREG(info.st_mode):
                raise NotFound()
            if info.st_size <= CACHE_MAX_BYTES:
                version = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
                data, etag, packed = _cached(target, version)
            else:
                data, info = _read(target)
                data, etag, packed = _representations(target.name, data)
        except OSError:
            raise NotFound() from None
        if parts[:1] == ["posts"] and target.name == "index.html":
            moved = read_redirect(data)
            if moved is not None:
                response = redirect(request.script_root + "/" + moved[0], code=301)
                response.headers["Link"] = f'<{moved[1]}>; rel="canonical"'
                return response
        response = Response(data, content_type=media_type(target.name))
        if packed is not None:
            response.vary.add("Accept-Encoding")
            if request.accept_encodings["gzip"]:
                response.set_data(packed)
                response.headers["Content-Encoding"] = "gzip"
                etag += "-gzip"  # a different representation needs a different strong ETag
        response.set_etag(etag)
        response.last_modified = datetime.fromtimestamp(int(info.st_mtime), UTC)
        response.cache_control.no_cache = True  # revalidate, then 304
        return response.make_conditional(request)
