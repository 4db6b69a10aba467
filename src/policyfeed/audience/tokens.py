"""Signed tokens, keyed by POLICYFEED_SECRET: unsubscribe tokens (an HMAC of the subscriber id and
the list), and the sign-up's confirmation, preferences and form (CSRF) tokens.

A token names the subscriber by id (no address in it) and cannot be forged without the secret.
"""

from __future__ import annotations

import base64
import hmac

_VERSION = "1"


def _mac(secret: str, subscriber_id: int, list_id: str) -> str:
    # hmac.digest: the one-shot form of hmac.new(...).digest(), the same bytes at a third of
    # the cost (a digest makes several of these per member).
    digest = hmac.digest(
        secret.encode("utf-8"), f"{_VERSION}:{subscriber_id}:{list_id}".encode(), "sha256"
    )
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
    digest = hmac.digest(
        secret.encode("utf-8"),
        f"{_RETURN_VERSION}:{delivery_id}:{subscriber_id}:{list_id}".encode(),
        "sha256",
    )
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


# --- the sign-up's links and forms -----------------------------------------------------------
#
# Each kind has a purpose of its own inside the MAC, so that no token of one kind is ever
# accepted as another (an unsubscribe token is not a preferences token, a form token confirms
# nothing). Times are whole seconds since the epoch, in the token, so an expired link can be
# told from a forged one without looking anything up.

#: How long a form the app rendered may be sent back (a page left open over lunch still works).
FORM_TOKEN_LIFETIME = 12 * 3600


def _signed(secret: str, purpose: str, fields: tuple[str, ...], list_id: str) -> str:
    message = "\0".join((_VERSION, purpose, list_id, *fields)).encode("utf-8")
    digest = hmac.digest(secret.encode("utf-8"), message, "sha256")
    return base64.urlsafe_b64encode(digest[:18]).decode("ascii")


def _number(text: str) -> int | None:
    """A canonical, ASCII, non-negative whole number, or None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or str(int(text)) != text:
        return None
    return int(text)


def _read(secret: str, prefix: str, token: str, list_id: str, fields: int) -> list[int] | None:
    if not secret or not token or len(token) > 120 or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != fields + 2 or parts[0] != prefix:
        return None
    numbers = [_number(p) for p in parts[1:-1]]
    if any(n is None for n in numbers):
        return None
    expected = _signed(secret, prefix, tuple(parts[1:-1]), list_id)
    if not hmac.compare_digest(parts[-1], expected):
        return None
    return [n for n in numbers if n is not None]


def _need_secret(secret: str) -> None:
    if not secret:
        raise ValueError("a signed link needs a secret")


def make_confirm_token(secret: str, consent_id: int, list_id: str, *, expires: int) -> str:
    """``c.<consent id>.<expiry, epoch seconds>.<mac>``: confirms one sign-up until it expires."""
    _need_secret(secret)
    fields = (str(int(consent_id)), str(int(expires)))
    return f"c.{fields[0]}.{fields[1]}.{_signed(secret, 'c', fields, list_id)}"


def read_confirm_token(secret: str, token: str, list_id: str) -> tuple[int, int] | None:
    """(consent id, expiry in epoch seconds) of a genuine confirmation token, expired or not;
    None for anything else."""
    found = _read(secret, "c", token, list_id, 2)
    return (found[0], found[1]) if found else None


def make_preferences_token(secret: str, subscriber_id: int, list_id: str) -> str:
    """``p.<subscriber id>.<mac>``: opens one member's preferences page.

    Like an unsubscribe token it keeps working (links in old mail, in the welcome message): it
    names the member by id, carries no address, and stops working when they are forgotten
    (ids are never given to anyone else).
    """
    _need_secret(secret)
    field = str(int(subscriber_id))
    return f"p.{field}.{_signed(secret, 'p', (field,), list_id)}"


def read_preferences_token(secret: str, token: str, list_id: str) -> int | None:
    found = _read(secret, "p", token, list_id, 1)
    return found[0] if found else None


def make_form_token(secret: str, form: str, list_id: str, *, issued: int, bound_to: int = 0) -> str:
    """``f.<issued>.<bound to>.<mac>``: a stateless CSRF token for one form of the app
    (``form`` names it; ``bound_to`` is e.g. the member whose preferences the form changes)."""
    _need_secret(secret)
    fields = (str(int(issued)), str(int(bound_to)))
    return f"f.{fields[0]}.{fields[1]}.{_signed(secret, 'f:' + form, fields, list_id)}"


def check_form_token(
    secret: str,
    token: str,
    form: str,
    list_id: str,
    *,
    now: int,
    bound_to: int = 0,
    lifetime: int = FORM_TOKEN_LIFETIME,
) -> bool:
    """Whether ``token`` was made for this form (and member) within ``lifetime`` seconds."""
    if not secret or not token or len(token) > 120 or not token.isascii():
        return False
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != "f":
        return False
    issued, bound = _number(parts[1]), _number(parts[2])
    if issued is None or bound is None or bound != bound_to:
        return False
    expected = _signed(secret, "f:" + form, (parts[1], parts[2]), list_id)
    if not hmac.compare_digest(parts[3], expected):
        return False
    return now - lifetime <= issued <= now + 300  # a little clock skew between workers
