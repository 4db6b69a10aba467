"""WebSub (W3C): tell the hub which feeds changed, so subscribers get them at once.

The feeds advertise the hub (``rel="hub"`` in RSS, Atom and JSON Feed); after a build changes a
feed, :func:`notify_changes` sends the hub a publish ping (``hub.mode=publish``, ``hub.url=``
the feed). A ping that fails is kept in the build state (in the database, for that output
folder) and sent again by the next build, so a hub that was down still hears about the change.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode

from sqlite_utils import Database

from policyfeed import __version__
from policyfeed.errors import TemporaryError
from policyfeed.site.ownership import folder_key
from policyfeed.store import build_state

log = logging.getLogger(__name__)

PENDING_STATE = "websub-pending"
TIMEOUT = 10.0


class HubError(TemporaryError):
    """The hub could not be reached or refused the ping; the next build tries again."""


def publish(hub: str, topic_url: str, *, timeout: float = TIMEOUT) -> None:
    """Send one publish ping for ``topic_url``; raises :class:`HubError` unless the hub says 2xx."""
    body = urlencode({"hub.mode": "publish", "hub.url": topic_url}).encode("ascii")
    request = urllib.request.Request(
        hub,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": f"policyfeed/{__version__} (WebSub publisher)",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise HubError(f"WebSub hub {hub} answered {exc.code} for {topic_url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HubError(f"WebSub hub {hub} not reachable: {reason}") from None
    if not 200 <= status < 300:
        raise HubError(f"WebSub hub {hub} answered {status} for {topic_url}")


def notify_changes(
    hub: str,
    db: Database,
    out_dir: Path,
    changed: Sequence[str],
    *,
    timeout: float = TIMEOUT,
) -> tuple[list[str], str]:
    """Ping ``hub`` for every changed feed URL and every ping still pending from earlier builds
    into ``out_dir``.

    Returns (the URLs the hub accepted, the first error or ""). URLs not accepted are kept in
    the build state of ``out_dir`` for the next build.
    """
    if not hub.lower().startswith(("http://", "https://")):
        return [], f"WebSub hub must be an http(s) URL, not {hub!r}"
    folder = folder_key(out_dir)
    try:
        raw = build_state.read(db, folder, PENDING_STATE)
        pending = [str(u) for u in json.loads(raw)] if raw else []
    except (ValueError, TypeError):
        pending = []
    todo = sorted(set(pending) | set(changed))
    done: list[str] = []
    error = ""
    for url in todo:
        try:
            publish(hub, url, timeout=timeout)
        except HubError as exc:
            error = error or str(exc)
            log.warning("%s", exc)
            continue
        done.append(url)
    left = [url for url in todo if url not in done]
    if left:
        build_state.write(db, folder, PENDING_STATE, (json.dumps(left, indent=1) + "\n").encode())
    elif pending:
        build_state.remove(db, folder, PENDING_STATE)
    return done, error
