"""VERP return paths: each message's envelope sender names its delivery.

A message to a member goes out with ``MAIL FROM:<bounces+<token>@example.org>`` (the bounce
mailbox, ``digest.bounce_address``, or the sender's own address, with ``+`` and a signed token;
see :func:`policyfeed.audience.tokens.make_return_token`). Whatever comes back to that address is
about that one delivery: a bounce needs no guessing from its text, and only the holder of the
secret can make a token, so a forged bounce names nobody.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from policyfeed.audience.tokens import make_return_token, read_return_token

if TYPE_CHECKING:
    from policyfeed.config import Settings


def return_path(settings: Settings, secret: str, delivery_id: int, subscriber_id: int) -> str:
    """The envelope sender of one delivery (the bare bounce address when VERP is off)."""
    return return_paths(settings, secret)(delivery_id, subscriber_id)


def return_paths(settings: Settings, secret: str) -> Callable[[int, int], str]:
    """:func:`return_path` for many deliveries: (delivery id, subscriber id) → envelope sender,
    with the settings read once (a digest asks for one per member)."""
    address = settings.bounce_mailbox_address
    if not settings.verp:
        return lambda delivery_id, subscriber_id: address
    local, _, domain = address.rpartition("@")
    list_id = settings.list_identifier

    def one(delivery_id: int, subscriber_id: int) -> str:
        token = make_return_token(secret, delivery_id, subscriber_id, list_id)
        return f"{local}+{token}@{domain}"

    return one


def _pattern(settings: Settings) -> re.Pattern[str]:
    local, _, domain = settings.bounce_mailbox_address.rpartition("@")
    return re.compile(
        rf"(?<![A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]){re.escape(local)}\+([0-9]+\.[0-9]+\.[a-z2-7]+)@"
        rf"{re.escape(domain)}(?![A-Za-z0-9-])",
        re.IGNORECASE,
    )


def find_return_tokens(settings: Settings, secret: str, text: str) -> list[tuple[int, int]]:
    """Every genuine (delivery id, subscriber id) named by a return path in ``text``, in order
    of first appearance; forged or damaged tokens are left out."""
    found: list[tuple[int, int]] = []
    for match in _pattern(settings).finditer(text):
        named = read_return_token(secret, match.group(1), settings.list_identifier)
        if named is not None and named not in found:
            found.append(named)
    return found
