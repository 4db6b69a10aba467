"""``GET /healthz``: 200 ``ok`` when the database opens and reads, 503 otherwise (for the proxy's
and systemd's checks). The answer says nothing about why; the log does."""

from __future__ import annotations

import logging

from werkzeug.wrappers import Request, Response

from policyfeed.config import Settings
from policyfeed.store import StoreError
from policyfeed.store.health import check_database
from policyfeed.web.app import Endpoint, WebContext

log = logging.getLogger(__name__)


def endpoints(settings: Settings) -> list[Endpoint]:
    return [Endpoint("/healthz", healthz, max_body=0)]


def healthz(request: Request, site: WebContext) -> Response:
    try:
        check_database(site.db_path)
    except StoreError as exc:
        log.warning("health check failed: %s", exc)
        response = Response("database unavailable\n", status=503, mimetype="text/plain")
    else:
        response = Response("ok\n", mimetype="text/plain")
    response.cache_control.no_store = True
    return response
