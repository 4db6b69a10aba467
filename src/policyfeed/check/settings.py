"""The settings mail needs: who sends it, where the sender can be found, a key for the
unsubscribe links, an https unsubscribe URL, and a base URL that readers can reach.

The config loader already refuses values of the wrong shape; these are values that are well
formed but would send a message nobody should receive.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from policyfeed.check.report import Report
from policyfeed.config import MIN_SECRET_LENGTH
from policyfeed.errors import ConfigError
from policyfeed.schedule import check_schedule

if TYPE_CHECKING:
    from policyfeed.config import Settings

AREA = "settings"
# RFC 2606 and RFC 6761: names reserved for examples and tests, never anyone's site.
RESERVED_SUFFIXES = (".example", ".test", ".invalid", ".localhost", ".local")
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
# Words people leave in a URL they meant to change.
PLACEHOLDER_WORDS = ("your-site", "yoursite", "your-domain", "yourdomain", "changeme",
                     "change-me", "placeholder", "replace-me")  # fmt: skip


def check_settings(report: Report, settings: Settings) -> None:
    """Add what is missing or wrong in ``settings`` for sending mail to ``report``."""
    try:
        check_schedule(settings.schedule)
    except ConfigError as exc:  # the loader takes any text; publish reads it as cron
        report.error(
            AREA, "digest.schedule", f"{str(exc).split(': ', 1)[1]}: publish refuses to run"
        )
    if not settings.mail_from:
        report.error(
            AREA,
            "digest.mail_from",
            f"no sender address: messages would come from {settings.sender}, which nobody "
            "chose (set digest.mail_from)",
        )
    if not settings.mail_from_name.strip():
        report.warn(
            AREA,
            "digest.mail_from_name",
            "no sender name: inboxes show the bare address (set digest.mail_from_name)",
        )
    if not settings.postal_address.strip():
        report.error(
            AREA,
            "digest.postal_address",
            "no postal address: CAN-SPAM requires one in every message and GDPR asks the "
            "sender to say who it is (set digest.postal_address)",
        )
    if settings.secret and len(settings.secret) < MIN_SECRET_LENGTH:
        report.error(
            AREA,
            "POLICYFEED_SECRET",
            f"too short ({len(settings.secret)} characters, at least {MIN_SECRET_LENGTH}): "
            "anyone who guesses it can forge every member's unsubscribe and preferences links",
        )
    if not settings.secret:
        if settings.smtp_host:
            report.error(
                AREA,
                "POLICYFEED_SECRET",
                "not set: the unsubscribe links cannot be signed, and mail to a relay does not "
                "go out without it",
            )
        else:
            report.warn(
                AREA,
                "POLICYFEED_SECRET",
                "not set: the outbox's unsubscribe links use the public development key, so "
                "anyone could unsubscribe anyone",
            )
    endpoint = settings.unsubscribe_endpoint
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.netloc:
        key = "digest.unsubscribe_url" if settings.unsubscribe_url else "site.base_url"
        report.error(
            AREA,
            key,
            f"the unsubscribe URL {endpoint} is not https: one-click unsubscribe (RFC 8058) and "
            "the large mailbox providers require https",
        )
    _base_url(report, settings.base_url)


def _base_url(report: Report, base_url: str) -> None:
    host = (urlsplit(base_url).hostname or "").lower().rstrip(".")
    key = "site.base_url"
    if any(word in host for word in PLACEHOLDER_WORDS):
        report.error(AREA, key, f"{base_url} is a placeholder: set the site's public address")
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if host == "localhost" or (
        address is not None and (address.is_loopback or address.is_unspecified)
    ):
        report.error(
            AREA,
            key,
            f"{base_url} is this machine's own address (the default): every link in the mail "
            "and the feeds would lead readers to their own computer",
        )
    elif address is not None and (address.is_private or address.is_link_local):
        report.warn(
            AREA, key, f"{base_url} is a private network address that readers outside cannot reach"
        )
    elif host in RESERVED_DOMAINS or host.endswith(
        tuple(f".{d}" for d in RESERVED_DOMAINS) + RESERVED_SUFFIXES
    ):
        report.warn(
            AREA,
            key,
            f"{base_url} is on a domain reserved for examples (RFC 2606): its links lead nowhere",
        )
