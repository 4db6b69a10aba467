"""What delivery needs from a way of sending mail: the outbox (outbox.py) and SMTP (smtp.py).

The hand-off contract, which keeps the ledger honest whatever moment a run is killed at: a
transport calls ``handoff()`` once per attempt, just before the one step after which the message
may have reached its next hop (SMTP: the final ``.`` of DATA, once the rate limiter has waited,
the connection is up and the relay has taken the recipient and the data; the outbox: the rename
into ``new/``). The ledger marks the row ``sending`` in that call. Everything before it leaves the
row certainly unsent; only a run killed between ``handoff()`` and the answer leaves a row that
nobody can be sure about. If ``handoff()`` raises, the transport abandons the message without
delivering it and lets the exception through.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol, runtime_checkable

#: Called by a transport at the point of no return of one hand-off (see the module docstring).
Handoff = Callable[[], None]


class SendDeferred(Exception):
    """A temporary failure (4xx, dropped connection, timeout): the row stays pending for a later
    run, and delivery stops for now (the relay is unavailable)."""


class RecipientDeferred(SendDeferred):
    """A temporary failure for this recipient only (a 4xx to its RCPT, its DATA or its final
    dot: greylisting, a full mailbox, a content filter): the row waits, and delivery goes on
    with the others at once, without sleeping. The ledger tries such rows once more at the end
    of the run, then leaves them for the next."""


class SendRefused(Exception):
    """A permanent failure for this recipient (5xx): the row is marked failed with this reason.

    ``code`` (e.g. 550), ``enhanced`` (the RFC 3463 status, e.g. ``5.1.1``, or "") and ``phase``
    (``RCPT``, ``DATA``, ``end of data``; "" when no relay answered) say what was refused, so a
    bounce policy can tell an unknown mailbox from a refused message.
    """

    def __init__(
        self, reason: str, *, code: int | None = None, enhanced: str = "", phase: str = ""
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.enhanced = enhanced
        self.phase = phase


class SendUncertain(Exception):
    """The message was handed over but the answer was lost (a timeout or a dropped connection
    after the final ``.``): it may have been accepted. The row stays ``sending`` (unsure), so it
    is handed over again only when the operator says so; delivery goes on with the others."""


class SendBlocked(Exception):
    """The relay cannot be used as configured and will not heal by itself: its certificate is
    not trusted or names another host, it does not offer STARTTLS although smtp.security asks
    for it, it refuses the login (535) or the sender (5xx to MAIL). Delivery stops, the rows stay
    pending, and the run exits 1 with the relay's complaint so that a person is told."""


class Transport(Protocol):
    """Hands finished messages to their next hop, one recipient at a time."""

    def send(
        self,
        message: bytes,
        *,
        sender: str,
        recipient: str,
        message_id: str,
        handoff: Handoff | None = None,
    ) -> None:
        """Deliver one message (``sender`` is its envelope sender, the return path) or raise
        SendDeferred / SendRefused / SendUncertain / SendBlocked; call ``handoff`` as the
        module docstring says."""
        ...

    def delivered(self, message_id: str) -> bool | None:
        """Whether a message whose hand-off was interrupted reached the next hop: True or False
        when the transport can tell (the outbox looks for the file), None when it cannot (a
        relay never says)."""
        ...

    def close(self) -> None:
        """Release connections; the transport is not used afterwards."""
        ...


@runtime_checkable
class BatchTransport(Protocol):
    """A transport that hands messages over in batches (the outbox): ``stage`` each, then one
    ``hand_over`` whose ``handoff`` marks them all ``sending`` at once and returns the
    Message-IDs that may go; ``discard`` drops what is staged. With ``batch_size`` 0 it is
    given one message at a time through ``send``, as any transport."""

    batch_size: int

    def stage(
        self, message: bytes | memoryview, *, sender: str, recipient: str, message_id: str
    ) -> bool: ...

    def take_staged(self) -> dict[str, str]: ...

    def adopt_staged(self, staged: dict[str, str]) -> None: ...

    def flush(self) -> None: ...

    def hand_over(
        self, handoff: Callable[[], Collection[str]], *, flushed: bool = False
    ) -> None: ...

    def discard(self) -> None: ...

    def delivered(self, message_id: str) -> bool | None: ...
