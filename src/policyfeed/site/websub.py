"""WebSub (W3C): tell the hub which feeds changed, so subscribers get them at once.

The feeds advertise the hub (``rel="hub"`` in RSS, Atom and JSON Feed); after a build changes a
feed, :func:`notify_changes` sends the hub a publish ping (``hub.mode=publish``, ``hub.url=``
the feed). A ping that fails is kept in the output folder's state and sent again by the next
build, so a hub that was down still hears about the change.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode

from policyfeed import __version__
from policyfeed.errors import TemporaryError
from policyfeed.output import write_if_changed

log = logging.getLogger(__name__)

PENDING_FILE = "websub-pending.json"
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
    hub: str, state_dir: Path, changed: Sequence[str], *, timeout: float = TIMEOUT
) -> tuple[list[str], str]:
    """Ping ``hub`` for every changed feed URL and every ping still pending from earlier builds.

    Returns (the URLs the hub accepted, the first error or ""). URLs not accepted are saved in
    ``state_dir`` for the next build.
    """
    if not hub.lower().startswith(("http://", "https://")):
        return [], f"WebSub hub must be an http(s) URL, not {hub!r}"
    pending_path = state_dir / PENDING_FILE
    try:
        pending = [str(u) for u in json.loads(pending_path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
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
        write_if_changed(pending_path, (json.dumps(left, indent=1) + "\n").encode())
    elif pending:
        pending_path.unlink(missing_ok=True)
    return done, error
