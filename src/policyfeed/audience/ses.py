"""Amazon SES bounce and complaint notifications, delivered by Amazon SNS to the web app.

Nothing in a request is believed before its SNS signature is (AWS's documented procedure):

- the message names one of ``bounces.sns_topic_arns``;
- ``SigningCertURL`` is ``https://`` on an SNS host (``sns.<region>.amazonaws.com``, or one of
  ``bounces.sns_cert_hosts`` for a private endpoint) and ends in ``.pem``; the certificate is
  fetched over verified TLS, without following redirects (a redirect could lead anywhere), at
  most 64 KiB, and kept in memory for the next message;
- the fields SNS signs, in its order, verify against that certificate's key (SignatureVersion
  1: SHA1withRSA, 2: SHA256withRSA);
- the Timestamp is within a day (a replay of an old message is refused; the same message twice
  is recorded once, by its MessageId).

A SubscriptionConfirmation is confirmed by fetching its SubscribeURL, checked like the
certificate's. A Notification carries the SES event: a Bounce (Permanent: hard; Transient or
Undetermined: soft) or a Complaint (unsubscribes; ``not-spam`` feedback does not). It is tied to
its delivery by the VERP return path SES reports as ``mail.source``, or by our Message-ID in
``mail.commonHeaders``, and acted on only for a recipient whose address is that member's.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlite_utils import Database

from policyfeed.audience.bounces import (
    HARD,
    SOFT,
    Verdict,
    record_bounce,
    record_complaint,
)
from policyfeed.audience.verp import find_return_tokens
from policyfeed.errors import PolicyfeedError, TemporaryError
from policyfeed.store import bounces as store
from policyfeed.store import subscribers as subscriber_store

if TYPE_CHECKING:
    from policyfeed.config import Settings

log = logging.getLogger(__name__)

SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
MAX_CERT_BYTES = 64 * 1024
FETCH_TIMEOUT = 10.0
MAX_AGE = timedelta(days=1)
MAX_SKEW = timedelta(minutes=15)
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip


class Refused(PolicyfeedError):
    """The request is not a genuine SNS message for this site (answered 403)."""


class Malformed(PolicyfeedError):
    """The body is not an SNS message at all (answered 400)."""


@dataclass(frozen=True)
class Handled:
    """What one SNS message did, for the log (never shown to the caller)."""

    kind: str  # confirmed, hard, soft, complaint, ignored, unmatched, already
    detail: str = ""


# --- fetching from SNS -----------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an error: urllib raises HTTPError for the 3xx


def check_sns_url(url: str, settings: Settings, *, what: str) -> str:
    """``url`` if it is https:// on an SNS host (or a configured one), else Refused."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    where = f"{host}:{parts.port}" if parts.port else host
    allowed = settings.sns_cert_hosts
    ok_host = where in allowed if allowed else bool(SNS_HOST.fullmatch(host)) and not parts.port
    if parts.scheme != "https" or not ok_host or parts.username or parts.password:
        raise Refused(f"{what} {url[:120]!r} is not an https:// URL of Amazon SNS")
    return url


def fetch(url: str, settings: Settings, *, limit: int = MAX_CERT_BYTES) -> bytes:
    """GET ``url`` over verified TLS, no redirects, at most ``limit`` bytes."""
    ca = settings.bounces_sns_ca_file
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _NoRedirects()
    )
    try:
        with opener.open(urllib.request.Request(url), timeout=FETCH_TIMEOUT) as response:
            data: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        if exc.code < 500:  # a redirect (never followed) or a certificate that is not there
            raise Refused(f"{url[:120]}: answered {exc.code}, not the certificate") from None
        raise TemporaryError(f"cannot fetch {url[:120]}: {exc}") from None
    except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
        raise TemporaryError(f"cannot fetch {url[:120]}: {exc}") from None
    if len(data) > limit:
        raise Refused(f"{url[:120]}: more than {limit} bytes")
    return data


_CERTS: dict[str, Any] = {}
_CERTS_LOCK = threading.Lock()


def signing_key(url: str, settings: Settings, fetcher: Callable[[str, Settings], bytes]) -> Any:
    """The public key of the certificate at ``url`` (fetched once per process)."""
    from cryptography import x509

    with _CERTS_LOCK:
        if url in _CERTS:
            return _CERTS[url]
    data = fetcher(url, settings)
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise Refused(f"{url[:120]}: not a PEM certificate") from None
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Refused(f"{url[:120]}: the certificate is not valid now")
    key = certificate.public_key()
    with _CERTS_LOCK:
        if len(_CERTS) > 32:
            _CERTS.clear()
        _CERTS[url] = key
    return key


# --- verifying -------------------------------------------------------------------------------


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The text SNS signs: each signed field present, as ``Name\\nValue\\n``, in its order."""
    fields = _SIGNED_FIELDS[str(message["Type"])]
    return "".join(
        f"{name}\n{message[name]}\n" for name in fields if message.get(name) is not None
    ).encode("utf-8")


def verify(
    message: Mapping[str, Any],
    settings: Settings,
    *,
    now: datetime,
    fetcher: Callable[[str, Settings], bytes] = fetch,
) -> None:
    """Raise Refused unless ``message`` is a genuine, fresh SNS message of our topics."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    kind = message.get("Type")
    if kind not in _SIGNED_FIELDS:
        raise Refused(f"not an SNS message type we take: {str(kind)[:40]!r}")
    if message.get("TopicArn") not in settings.sns_topic_arns:
        raise Refused(
            f"topic {str(message.get('TopicArn'))[:120]!r} is not in bounces.sns_topic_arns"
        )
    for name in ("MessageId", "Timestamp", "Signature", "SigningCertURL", "Message"):
        if not isinstance(message.get(name), str):
            raise Refused(f"no {name}")
    version = message.get("SignatureVersion")
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(version))
    if algorithm is None:
        raise Refused(f"unknown SignatureVersion {str(version)[:10]!r}")
    try:
        stamp = datetime.fromisoformat(str(message["Timestamp"]).replace("Z", "+00:00"))
    except ValueError:
        raise Refused("the Timestamp is not a time") from None
    if stamp.tzinfo is None or not now - MAX_AGE <= stamp <= now + MAX_SKEW:
        raise Refused(f"the Timestamp {message['Timestamp']} is not within a day of now")
    url = check_sns_url(str(message["SigningCertURL"]), settings, what="SigningCertURL")
    if not urlsplit(url).path.endswith(".pem"):
        raise Refused("SigningCertURL does not name a .pem certificate")
    key = signing_key(url, settings, fetcher)
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused("the signing certificate's key is not RSA")
    try:
        signature = base64.b64decode(str(message["Signature"]), validate=True)
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError):
        raise Refused("the SNS signature does not verify") from None


def read_message(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Malformed("the body is not JSON") from None
    if not isinstance(message, dict):
        raise Malformed("the body is not a JSON object")
    return message


# --- acting --------------------------------------------------------------------------------


def handle(
    db: Database,
    settings: Settings,
    secret: str,
    message: Mapping[str, Any],
    *,
    now: datetime,
    fetcher: Callable[[str, Settings], bytes] = fetch,
) -> Handled:
    """Act on a verified SNS message (see the module docstring)."""
    kind = message["Type"]
    if kind == "SubscriptionConfirmation":
        url = check_sns_url(str(message.get("SubscribeURL", "")), settings, what="SubscribeURL")
        fetcher(url, settings)
        log.info("confirmed the SNS subscription to %s", message["TopicArn"])
        return Handled("confirmed", str(message["TopicArn"]))
    if kind == "UnsubscribeConfirmation":
        log.warning("SNS says the subscription to %s ended", message["TopicArn"])
        return Handled("ignored", "unsubscribe confirmation")
    try:
        event = json.loads(str(message["Message"]))
    except json.JSONDecodeError:
        return Handled("ignored", "the notification is not an SES event")
    if not isinstance(event, dict):
        return Handled("ignored", "the notification is not an SES event")
    return _ses_event(db, settings, secret, event, f"sns:{message['MessageId']}", now)


def _ses_event(
    db: Database, settings: Settings, secret: str, event: dict[str, Any], key: str, now: datetime
) -> Handled:
    event_type = str(event.get("notificationType") or event.get("eventType") or "")
    if event_type not in ("Bounce", "Complaint"):
        return Handled("ignored", f"SES {event_type or 'event'}")
    if store.is_recorded(db, key):
        return Handled("already", key)
    mail = event.get("mail") if isinstance(event.get("mail"), dict) else {}
    assert isinstance(mail, dict)
    delivery = None
    for delivery_id, subscriber_id in find_return_tokens(
        settings, secret, str(mail.get("source", ""))
    ):
        found = store.delivery_by_id(db, delivery_id)
        if found is not None and found.subscriber_id == subscriber_id:
            delivery = found
            break
    if delivery is None:
        common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
        assert isinstance(common, dict)
        message_id = str(common.get("messageId", "")).strip().strip("<>")
        delivery = store.delivery_by_message_id(db, message_id) if message_id else None
    if delivery is None:
        return Handled("unmatched", f"SES {event_type} names none of our deliveries")
    subscriber = subscriber_store.subscriber_by_id(db, delivery.subscriber_id)
    if subscriber is None:
        return Handled("unmatched", "the member is gone")
    section = event.get(event_type.lower())
    section = section if isinstance(section, dict) else {}
    listed = "bouncedRecipients" if event_type == "Bounce" else "complainedRecipients"
    recipients = [r for r in section.get(listed, []) if isinstance(r, dict)]
    mine = [
        r for r in recipients if str(r.get("emailAddress", "")).lower() == subscriber.email.lower()
    ]
    if not mine:
        return Handled("unmatched", f"SES {event_type} is about another address")
    if event_type == "Complaint":
        feedback = str(section.get("complaintFeedbackType") or "abuse").lower()
        if feedback == "not-spam":
            return Handled("ignored", "not-spam feedback")
        outcome = record_complaint(
            db, subscriber_id=subscriber.id or 0, delivery=delivery, feedback_type=feedback,
            reporter=str(section.get("userAgent") or "Amazon SES"), source="webhook",
            source_key=key, now=now,
        )  # fmt: skip
        return Handled("complaint" if outcome.recorded else "already", subscriber.email)
    bounce_type = str(section.get("bounceType", ""))
    recipient = mine[0]
    status = str(recipient.get("status") or "")
    diagnostic = str(
        recipient.get("diagnosticCode") or f"{bounce_type} {section.get('bounceSubType', '')}"
    )
    verdict = (
        Verdict(HARD, status or "5.0.0", f"SES: {bounce_type}")
        if bounce_type == "Permanent"
        else Verdict(SOFT, status, f"SES: {bounce_type or 'Undetermined'}")
    )
    outcome = record_bounce(
        db, subscriber_id=subscriber.id or 0, delivery=delivery, verdict=verdict,
        diagnostic=diagnostic, source="webhook", source_key=key, now=now,
        soft_limit=settings.bounces_soft_limit,
    )  # fmt: skip
    return Handled(verdict.kind if outcome.recorded else "already", subscriber.email)
