"""Unsubscribe tokens: an HMAC of the subscriber id and the list, keyed by POLICYFEED_SECRET.

A token names the subscriber by id (no address in it) and cannot be forged without the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_VERSION = "1"


def _mac(secret: str, subscriber_id: int, list_id: str) -> str:
    digest = hmac.new(
        secret.encode("utf-8"), f"{_VERSION}:{subscriber_id}:{list_id}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def make_token(secret: str, subscriber_id: int, list_id: str) -> str:
    """``<id>.<mac>``: URL-safe, 31 characters or so."""
    if not secret:
        raise ValueError("an unsubscribe token needs a secret")
    if subscriber_id < 0:
        raise ValueError(f"not a subscriber id: {subscriber_id}")
    return f"{subscriber_id}.{_mac(secret, subscriber_id, list_id)}"


def read_token(secret: str, token: str, list_id: str) -> int | None:
    """The subscriber id a genuine token names, or None for anything else."""
    if not secret or not token or len(token) > 100:
        return None
    head, _, mac = token.partition(".")
    # ASCII digits only ("²".isdigit() is true), in canonical form, and an ASCII MAC
    # (compare_digest refuses non-ASCII text): anything else is simply not a token.
    if not (head.isascii() and head.isdigit() and mac.isascii() and mac):
        return None
    subscriber_id = int(head)
    if str(subscriber_id) != head:
        return None
    if not hmac.compare_digest(mac, _mac(secret, subscriber_id, list_id)):
        return None
    return subscriber_id
