"""The waitress server behind ``policyfeed serve``, with its limits set on purpose.

waitress's defaults let 100 idle connections stop a server (``connection_limit`` 100, idle ones
closed only after ``channel_timeout`` 120 s) and accept bodies of 1 GiB. Here:

- ``connection_limit`` (``web.connection_limit``, 1000): connections held open at once. A
  connection that sends half a request and waits costs a file descriptor and little else, so
  the limit is high and the open-file limit is raised to fit (:func:`raise_open_file_limit`).
- ``channel_timeout`` (``web.channel_timeout``, 30 s): an idle connection, or one whose request
  has not arrived, is closed after this long; ``cleanup_interval`` (5 s) is how often that is
  checked.
- ``asyncore_use_poll``: poll() instead of select(), which fails past file descriptor 1024.
- ``max_request_header_size`` 32 KiB (a link with the longest token fits many times over) and
  ``max_request_body_size`` the largest body an endpoint takes: over either, waitress answers
  431 or 413 itself before reading the rest.
- ``clear_untrusted_proxy_headers`` off: the app decides what the proxy headers are worth. Its
  ProxyFix believes ``X-Forwarded-For`` only with ``web.trusted_proxies`` set (without, no
  address is ever taken from it), and the editors' preview must see that a request came
  through a proxy (:mod:`policyfeed.web.preview_access`): were waitress to drop the headers, a
  proxy on this machine that forgot ``trusted_proxies`` would look like a local browser.

A connection that trickles a byte every few seconds still holds its place: a public site sits
behind nginx or Caddy (docs/deploy.md), which buffer requests and serve the files themselves.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from typing import Any

from policyfeed.config import Settings
from policyfeed.web.app import SiteApp

log = logging.getLogger(__name__)

CLEANUP_INTERVAL = 5
MAX_HEADER_BYTES = 32 * 1024
THREADS = 4
#: File descriptors besides the connections: the listening socket, the database and its
#: journal per worker thread, bodies spooled to temporary files, logs.
SPARE_FILES = 64


@dataclass(frozen=True)
class OpenFiles:
    soft: int
    hard: int
    raised_from: int | None = None


def raise_open_file_limit(needed: int) -> OpenFiles:
    """Raise this process's soft RLIMIT_NOFILE to ``needed`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return OpenFiles(target, hard, raised_from=soft)
    return OpenFiles(soft, hard)


def server_options(app: SiteApp, settings: Settings, connection_limit: int) -> dict[str, Any]:
    """The waitress adjustments for ``app`` (see the module docstring)."""
    return {
        "threads": THREADS,
        "connection_limit": connection_limit,
        "channel_timeout": settings.channel_timeout,
        "cleanup_interval": min(CLEANUP_INTERVAL, settings.channel_timeout),
        "asyncore_use_poll": True,
        "max_request_header_size": MAX_HEADER_BYTES,
        # waitress refuses a body of this size or more: one byte over the largest cap.
        "max_request_body_size": app.max_body + 1,
        "clear_untrusted_proxy_headers": False,
        "ident": "policyfeed",
    }


def create_server(app: SiteApp, settings: Settings, host: str, port: int) -> Any:
    """A waitress server for ``app`` listening on ``host``:``port`` (not yet running).

    The connection limit is lowered, with a warning, when the open-file limit cannot be raised
    to fit it."""
    from waitress.server import create_server as waitress_server

    limit = settings.connection_limit
    files = raise_open_file_limit(limit + SPARE_FILES)
    if files.raised_from is not None:
        log.info("open-file limit raised from %d to %d", files.raised_from, files.soft)
    if files.soft < limit + SPARE_FILES:
        limit = max(10, files.soft - SPARE_FILES)
        log.warning(
            "web.connection_limit lowered from %d to %d: the open-file limit is %d (hard %d); "
            "raise it (LimitNOFILE= in the systemd unit, ulimit -n)",
            settings.connection_limit,
            limit,
            files.soft,
            files.hard,
        )
    return waitress_server(app, host=host, port=port, **server_options(app, settings, limit))
