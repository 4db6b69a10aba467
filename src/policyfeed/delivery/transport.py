"""What delivery needs from a way of sending mail: the outbox (delivery.py) and SMTP (smtp.py)."""

from __future__ import annotations

from typing import Protocol


class SendDeferred(Exception):
    """A temporary failure (4xx, dropped connection, timeout): the row stays pending for a later
    run. The message may be retried."""


class RecipientDeferred(SendDeferred):
    """A temporary failure for this recipient only (a 4xx answer to RCPT: mailbox full,
    greylisting): the row stays pending for a later run, and delivery goes on with the others."""


class SendRefused(Exception):
    """A permanent failure for this recipient (5xx): the row is marked failed with this reason.
    ``phase`` is the SMTP command the relay answered (``RCPT``, ``DATA``, ``end of data``), or ""
    when the refusal is not an SMTP answer."""

    def __init__(self, reason: str, *, phase: str = "") -> None:
        super().__init__(reason)
        self.phase = phase


class SendUncertain(Exception):
    """The message was handed over but the answer was lost (a timeout or a dropped connection
    after the data): it may have been accepted. The row stays ``sending`` (ambiguous), so it is
    handed over again only when the operator says so."""


class Transport(Protocol):
    """Hands finished messages to their next hop, one recipient at a time."""

    #: True when handing the same message over twice is harmless (the outbox overwrites the file
    #: named after the Message-ID), so a row left ``sending`` by a crash can be redone at once.
    resend_is_idempotent: bool

    def send(self, message: bytes, *, sender: str, recipient: str, message_id: str) -> None:
        """Deliver one message or raise SendDeferred / SendRefused / SendUncertain."""
        ...

    def close(self) -> None:
        """Release connections; the transport is not used afterwards."""
        ...
