"""``POST /webhooks/ses``: Amazon SES bounce and complaint notifications through Amazon SNS.

Off unless ``bounces.webhook = "ses"`` (then ``bounces.sns_topic_arns`` names the topics taken).
Every answer is a short text that says nothing about any address: 200 ``ok`` once the message is
verified and recorded (or known, or not about us), 400 for a body that is not an SNS message,
403 for one whose signature, topic or certificate URL is wrong, 503 when the database or the
certificate cannot be reached right now (SNS tries again). See :mod:`policyfeed.audience.ses`.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from policyfeed.config import Settings
from policyfeed.errors import PolicyfeedError, TemporaryError
from policyfeed.web.app import Endpoint, WebContext

if TYPE_CHECKING:
    from policyfeed.audience.ses import Handled

log = logging.getLogger(__name__)

PATH = "/webhooks/ses"


def endpoints(settings: Settings) -> list[Endpoint]:
    if settings.bounces_webhook != "ses":
        return []
    return [
        Endpoint(
            PATH, ses_notification, methods=("POST",), max_body=settings.bounces_webhook_max_body
        )
    ]


def _text(message: str, status: int) -> Response:
    response = Response(message + "\n", status=status, mimetype="text/plain")
    response.cache_control.no_store = True
    return response


def ses_notification(request: Request, site: WebContext) -> Response:
    from policyfeed.audience.ses import Malformed, Refused, read_message, verify

    try:
        message = read_message(request.get_data(cache=False))
        verify(message, site.settings, now=site.now())
    except Malformed as exc:
        log.warning("SES webhook: refused a request: %s", exc)
        return _text("not an SNS message", 400)
    except Refused as exc:
        log.warning("SES webhook: refused a message: %s", exc)
        return _text("refused", 403)
    except TemporaryError as exc:
        log.warning("SES webhook: cannot check the signature now: %s", exc)
        return _text("try again later", 503)
    try:
        handled = _handle(site, message)
    except Refused as exc:
        log.warning("SES webhook: refused a message: %s", exc)
        return _text("refused", 403)
    except (TemporaryError, sqlite3.Error, PolicyfeedError) as exc:
        log.warning("SES webhook: message %s not recorded yet: %s", message.get("MessageId"), exc)
        return _text("try again later", 503)
    log.info("SES webhook: %s %s (%s)", message.get("MessageId"), handled.kind, handled.detail)
    return _text("ok", 200)


def _handle(site: WebContext, message: dict[str, Any]) -> Handled:
    from policyfeed.audience.ses import handle
    from policyfeed.store import StoreError, open_db

    if not site.db_path.is_file():
        raise StoreError(f"{site.db_path}: no such database")
    db = open_db(site.db_path, migrate=False)
    try:
        return handle(db, site.settings, site.secret, message, now=site.now())
    finally:
        db.conn.close()
