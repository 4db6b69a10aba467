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


# --- bounce (VERP) tokens ----------------------------------------------------------------------
# A return path ``bounces+<token>@domain`` names one delivery. Mail systems may change the case
# of a local part, so the token is lower-case letters, digits and dots only: the delivery id, the
# subscriber id (delivery ids of removed rows can come back; subscriber ids never do) and 65 bits
# of an HMAC in base32. Without the secret nobody can make a token that names a real delivery, so
# a forged bounce suspends nobody.
_RETURN_VERSION = "r1"
_RETURN_MAC_CHARS = 13


def _return_mac(secret: str, delivery_id: int, subscriber_id: int, list_id: str) -> str:
    digest = hmac.new(
        secret.encode("utf-8"),
        f"{_RETURN_VERSION}:{delivery_id}:{subscriber_id}:{list_id}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()[:_RETURN_MAC_CHARS]


def make_return_token(secret: str, delivery_id: int, subscriber_id: int, list_id: str) -> str:
    """``<delivery id>.<subscriber id>.<mac>``: what follows the ``+`` of a return path."""
    if not secret:
        raise ValueError("a return-path token needs a secret")
    if delivery_id < 0 or subscriber_id < 0:
        raise ValueError(f"not a delivery: {delivery_id}, {subscriber_id}")
    return (
        f"{delivery_id}.{subscriber_id}.{_return_mac(secret, delivery_id, subscriber_id, list_id)}"
    )


def read_return_token(secret: str, token: str, list_id: str) -> tuple[int, int] | None:
    """(delivery id, subscriber id) of a genuine return-path token, or None."""
    if not secret or not token or len(token) > 60 or not token.isascii():
        return None
    parts = token.lower().split(".")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    delivery_id, subscriber_id = int(parts[0]), int(parts[1])
    if f"{delivery_id}.{subscriber_id}" != f"{parts[0]}.{parts[1]}":
        return None  # not canonical (leading zeros)
    expected = _return_mac(secret, delivery_id, subscriber_id, list_id)
    if not hmac.compare_digest(parts[2], expected):
        return None
    return delivery_id, subscriber_id
