"""Fetching a feed over HTTP for ``sources sync``: a conditional GET with limits on everything.

The standard library's ``urllib.request`` does the talking (it brings the system's CA store and
the ``https_proxy`` variables); its automatic redirects and error raising are turned off, because
every limit a hostile or broken server could push against is kept here:

- one time limit for the whole fetch: each wait for the server is at most what is left of it,
  and a download still going when it runs out is stopped;
- a size limit counted while reading, on the bytes as sent and again after gzip decompression,
  which inflates in bounded steps (a small gzip bomb never fills memory);
- at most :data:`MAX_REDIRECTS` redirects, each to an http(s) address only;
- ETag and Last-Modified sent back (If-None-Match, If-Modified-Since): 304 means unchanged.

Failures are :class:`FetchError`, ``temporary`` when a later run may well succeed (a timeout, a
refused connection, a 5xx, 429) and not when a person must act (404, 410, a feed too large, a
certificate that is not trusted, an unknown host).
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urljoin, urlsplit

from policyfeed.errors import EXIT_ERROR, EXIT_TEMPFAIL, PolicyfeedError

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_REDIRECTS = (301, 302, 303, 307, 308)
_PERMANENT_REDIRECTS = (301, 308)
_TEMPORARY_STATUSES = (408, 425, 429)


class FetchError(PolicyfeedError):
    """A feed could not be fetched; ``temporary`` when trying again later may work."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.exit_code = EXIT_TEMPFAIL if temporary else EXIT_ERROR


@dataclass(frozen=True)
class Fetched:
    """A fetch that worked: ``status`` 200 with ``data``, or 304 (unchanged since the
    validators sent). ``url`` is where the feed was found after redirects; ``moved_to`` the
    address a permanent redirect (301, 308) named for the URL asked for, if any."""

    status: int
    url: str
    data: bytes = b""
    etag: str = ""
    last_modified: str = ""
    content_type: str = ""
    moved_to: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class _EveryResponse(urllib.request.HTTPErrorProcessor):
    """Hand every response back as it is: redirects and errors are decided in :func:`fetch`."""

    def http_response(self, request: Any, response: Any) -> Any:
        return response

    https_response = http_response


def _opener() -> urllib.request.OpenerDirector:
    """http(s) only (never file:, ftp: or data:), through the proxy the environment names."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(context=ssl.create_default_context()),
        _EveryResponse(),
    ):
        opener.add_handler(handler)
    return opener


def fetch(
    url: str,
    *,
    etag: str = "",
    last_modified: str = "",
    timeout: float,
    max_bytes: int,
    user_agent: str,
    max_redirects: int = MAX_REDIRECTS,
    clock: Callable[[], float] = time.monotonic,
) -> Fetched:
    """GET ``url`` (conditionally, given the validators of the last fetch); see the module doc."""
    deadline = clock() + timeout
    opener = _opener()
    current = url
    moved_to = ""
    permanent = True
    for _hop in range(max_redirects + 1):
        response = _open(opener, current, etag, last_modified, user_agent, deadline, timeout, clock)
        try:
            status = int(response.status)
            headers: Message = response.headers
            if status in _REDIRECTS:
                target = _redirect_target(current, headers.get("Location", ""), status)
                permanent = permanent and status in _PERMANENT_REDIRECTS
                if permanent:
                    moved_to = target
                current = target
                continue
            if status == 304:
                return Fetched(
                    304,
                    current,
                    etag=headers.get("ETag", "") or etag,
                    last_modified=headers.get("Last-Modified", "") or last_modified,
                    moved_to=moved_to,
                )
            if status != 200:
                raise _status_error(status, response.reason or "")
            data = _read_body(response, headers, max_bytes, deadline, timeout, clock)
            return Fetched(
                200,
                current,
                data,
                etag=headers.get("ETag", ""),
                last_modified=headers.get("Last-Modified", ""),
                content_type=headers.get("Content-Type", ""),
                moved_to=moved_to,
            )
        finally:
            response.close()
    raise FetchError(
        f"more than {max_redirects} redirects (the last to {current})", temporary=False
    )


def _open(
    opener: urllib.request.OpenerDirector,
    url: str,
    etag: str,
    last_modified: str,
    user_agent: str,
    deadline: float,
    timeout: float,
    clock: Callable[[], float],
) -> Any:
    remaining = deadline - clock()
    if remaining <= 0:
        raise _timed_out(timeout)
    headers = {"User-Agent": user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        return opener.open(request, timeout=remaining)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise _network_error(exc, timeout) from None


def _redirect_target(current: str, location: str, status: int) -> str:
    if not location.strip():
        raise FetchError(f"a redirect ({status}) without a Location", temporary=False)
    target = urljoin(current, location.strip())
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(
            f"redirected ({status}) to {target!r}, which is not an http(s) address",
            temporary=False,
        )
    return target


def _status_error(status: int, reason: str) -> FetchError:
    said = f"{status} {reason}".strip()
    if status >= 500 or status in _TEMPORARY_STATUSES:
        return FetchError(f"the server answered {said}; try again later", temporary=True)
    if status in (404, 410):
        what = "gone" if status == 410 else "not found"
        return FetchError(f"the feed is {what} ({said}): check the source's url", temporary=False)
    return FetchError(f"the server answered {said}, not the feed", temporary=False)


def _timed_out(timeout: float) -> FetchError:
    return FetchError(
        f"no complete answer within {timeout:g} s (the source's timeout)", temporary=True
    )


def _network_error(exc: BaseException, timeout: float) -> FetchError:
    reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return _timed_out(timeout)
    if isinstance(reason, ssl.SSLCertVerificationError):
        detail = reason.verify_message or str(reason)
        return FetchError(f"its TLS certificate is not trusted ({detail})", temporary=False)
    if isinstance(reason, socket.gaierror):
        if reason.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            return FetchError("no such host (check the source's url)", temporary=False)
        return FetchError(f"the host name could not be looked up ({reason})", temporary=True)
    if isinstance(reason, ConnectionRefusedError):
        return FetchError("the connection was refused; try again later", temporary=True)
    if isinstance(reason, ValueError):
        return FetchError(f"not a usable address ({reason})", temporary=False)
    if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return FetchError(f"the host cannot be reached ({reason.strerror})", temporary=True)
    text = str(reason) or type(reason).__name__
    return FetchError(f"the connection failed ({text}); try again later", temporary=True)


class _Inflater:
    """gzip (or zlib) decompression that never holds more than ``limit`` bytes of output."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.out = bytearray()
        self._new()

    def _new(self) -> None:
        self.inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header

    def feed(self, data: bytes) -> None:
        while data:
            room = self.limit - len(self.out)
            self.out += self.inflater.decompress(data, room + 1)
            if len(self.out) > self.limit:
                raise _too_large(self.limit, "once decompressed")
            data = self.inflater.unconsumed_tail
            if self.inflater.eof:
                rest = self.inflater.unused_data
                if not rest.strip(b"\0"):
                    return
                self._new()  # another gzip member follows (RFC 1952 allows several)
                data = rest + data

    def finish(self) -> bytes:
        if not self.inflater.eof:
            raise FetchError("the compressed feed ends before its end", temporary=False)
        return bytes(self.out)


def _too_large(limit: int, how: str = "") -> FetchError:
    extra = f" {how}" if how else ""
    return FetchError(
        f"the feed is larger than {limit} bytes{extra} (the source's max_bytes)", temporary=False
    )


def _read_body(
    response: Any,
    headers: Message,
    max_bytes: int,
    deadline: float,
    timeout: float,
    clock: Callable[[], float],
) -> bytes:
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise FetchError(
            f"the feed came in an unknown Content-Encoding ({encoding})", temporary=False
        )
    length = (headers.get("Content-Length") or "").strip()
    if length.isdigit() and int(length) > max_bytes:
        raise _too_large(max_bytes)
    inflater = _Inflater(max_bytes) if encoding != "identity" else None
    raw = bytearray()
    received = 0
    try:
        while True:
            if clock() > deadline:
                raise _timed_out(timeout)
            chunk = response.read1(CHUNK)
            if not chunk:
                break
            received += len(chunk)
            if received > max_bytes:
                raise _too_large(max_bytes)
            if inflater is None:
                raw += chunk
            else:
                inflater.feed(chunk)
    except http.client.IncompleteRead:
        raise FetchError(
            "the connection closed before the whole feed came; try again later", temporary=True
        ) from None
    except zlib.error as exc:
        raise FetchError(f"the compressed feed is corrupt ({exc})", temporary=False) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _network_error(exc, timeout) from None
    if length.isdigit() and received < int(length):  # read1 reports a cut as the end
        raise FetchError(
            "the connection closed before the whole feed came; try again later", temporary=True
        )
    return inflater.finish() if inflater is not None else bytes(raw)
