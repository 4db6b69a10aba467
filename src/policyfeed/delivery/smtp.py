"""Delivery through an SMTP relay: one reused connection, a rate limit, bounded retries.

The relay's answers decide what happens to a ledger row:

- 2xx: sent;
- 5xx for the recipient (or for this message's data): :class:`SendRefused` with the relay's
  answer (its code, enhanced status and the phase it came at), so that row is marked failed and
  delivery goes on with the others;
- 4xx for this message alone (to its RCPT, DATA or final ``.``: greylisting, a full mailbox, a
  content filter): :class:`RecipientDeferred` at once, without sleeping; the ledger goes on with
  the others and tries the row once more at the end;
- 4xx otherwise, a dropped connection or a timeout before the data is complete: retried with
  exponential backoff up to ``settings.smtp_retries`` times, then :class:`SendDeferred`, so the
  row stays pending for the next run (exit 75);
- the answer to the message's final ``.`` lost (a timeout, a dropped connection): the relay may
  have it, so it is not handed over again: :class:`SendUncertain`, and the row stays ``sending``;
- what will not heal by itself (an untrusted or mismatched certificate, no STARTTLS when
  ``security = "starttls"``, a refused login, a refused sender): :class:`SendBlocked`, delivery
  stops and the run exits 1 with the relay's complaint; no row is marked failed for a problem
  that is the configuration's.

The row is marked ``sending`` (the ``handoff`` call, see :mod:`policyfeed.delivery.transport`)
only once the limiter has waited, the connection is up, the relay has taken the envelope and
every byte of the message but the final ``.``: a run killed anywhere before leaves the row
certainly unsent, and the relay drops a transaction whose data never ended.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from policyfeed.config import require_secret_length
from policyfeed.delivery.transport import (
    Handoff,
    RecipientDeferred,
    SendBlocked,
    SendDeferred,
    SendRefused,
    SendUncertain,
)
from policyfeed.errors import ConfigError

if TYPE_CHECKING:
    from policyfeed.config import Settings

log = logging.getLogger(__name__)

#: First wait before retrying a temporary failure; doubled on each retry, capped.
BACKOFF_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 60.0


class RateLimiter:
    """Spaces hand-offs at least ``1 / rate`` seconds apart (``rate`` 0: no limit).

    Spacing rather than a bucket with bursts: a relay that allows N messages a second usually
    counts over short windows, and a steady stream never trips it. One limiter is shared by
    every connection of a run (thread-safe: each caller reserves the next slot, then sleeps
    until it outside the lock), so the rate holds for the run, not per connection.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next hand-off is allowed, and reserve it."""
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            slot = self._next if self._next is not None and now < self._next else now
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)


class _Shared:
    """What the connections of one pool share besides the rate limit: the others open only
    once the first has tried (a refused login is tried once, not once per connection), and
    once one finds the relay unusable (:class:`SendBlocked`) the others stop at once."""

    def __init__(self) -> None:
        self.first_tried = threading.Event()
        self.blocked = ""
        self._lock = threading.Lock()
        self._started = False

    def before_connect(self) -> bool:
        """Wait for the first connection's attempt unless this is it (True)."""
        with self._lock:
            first, self._started = not self._started, True
        if not first:
            self.first_tried.wait()
        if self.blocked:
            raise SendBlocked(self.blocked)
        return first


def backoff_delay(
    retry: int, base: float = BACKOFF_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, …): base, 2×base, 4×base… capped."""
    return float(min(cap, base * 2 ** (retry - 1)))


def _answer(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}".strip()


_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


def _enhanced(message: bytes | str) -> str:
    """The RFC 3463 enhanced status code at the start of an answer's text (``5.1.1``), or ""."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    found = _ENHANCED.match(text)
    return found.group(1) if found else ""


class _Temporary(Exception):
    """Internal: a failure worth retrying (``stale``: a reused connection the relay had closed)."""

    def __init__(
        self,
        reason: str,
        *,
        stale: bool = False,
        recipient: bool = False,
        after_handoff: bool = False,
    ) -> None:
        super().__init__(reason)
        self.stale = stale
        self.recipient = recipient  # about this recipient only (4xx to RCPT)
        self.after_handoff = after_handoff  # the row is `sending`: no retry in this run


class SmtpTransport:
    """Sends each message to one recipient through the configured relay, over one connection.

    Several connections at once are several instances sharing one :class:`RateLimiter`
    (:class:`SmtpPool`; one instance is not thread-safe); each hand-off calls only its own
    ``handoff``, so each connection's rows are marked on their own.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        require_secret: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        backoff: float | None = None,
        limiter: RateLimiter | None = None,
        shared: _Shared | None = None,
    ) -> None:
        if not settings.smtp_host:
            raise ConfigError("smtp.host is not set: no relay to send through")
        if require_secret and not settings.secret:
            raise ConfigError(
                "sending to subscribers over SMTP needs POLICYFEED_SECRET (the key of the "
                "unsubscribe links); set it in the environment"
            )
        if settings.secret:
            require_secret_length(settings.secret)
        if settings.smtp_username and not settings.smtp_password:
            raise ConfigError(
                f"smtp.username is {settings.smtp_username!r} but POLICYFEED_SMTP_PASSWORD is "
                "not set"
            )
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.security = settings.smtp_security
        self.username = settings.smtp_username
        self._password = settings.smtp_password
        self.timeout = settings.smtp_timeout
        self.retries = max(0, settings.smtp_retries)
        self.local_hostname = settings.domain
        self._ssl_context = ssl_context
        self._sleep = sleep
        self._backoff = BACKOFF_SECONDS if backoff is None else backoff
        self._limiter = limiter or RateLimiter(settings.smtp_rate_limit, clock=clock, sleep=sleep)
        self._conn: smtplib.SMTP | None = None
        self._shared = shared
        self._sent_on_conn = 0
        #: Connections opened so far (the first, then one per reconnect).
        self.connections = 0

    # --- connection ----------------------------------------------------------------------
    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _connect(self) -> smtplib.SMTP:
        """Open, secure and log in. What the configuration can fix is SendBlocked; the rest is
        temporary for the row being sent."""
        where = f"{self.host}:{self.port}"
        if self._shared is None:
            return self._open(where)
        first = self._shared.before_connect()
        try:
            return self._open(where)
        except SendBlocked as exc:
            self._shared.blocked = str(exc)
            raise
        finally:
            if first:
                self._shared.first_tried.set()

    def _open(self, where: str) -> smtplib.SMTP:
        conn: smtplib.SMTP | None = None
        try:
            if self.security == "tls":
                conn = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    local_hostname=self.local_hostname,
                    timeout=self.timeout,
                    context=self._context(),
                )
            else:
                conn = smtplib.SMTP(
                    self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
                )
            conn.ehlo()
            if self.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise SendBlocked(
                        f"relay {where} does not offer STARTTLS (smtp.security = starttls); "
                        "refusing to send in clear text"
                    )
                conn.starttls(context=self._context())
                conn.ehlo()
            if self.username:
                conn.login(self.username, self._password)
        except SendBlocked:
            self._discard(conn)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self._discard(conn)
            answer = _answer(exc.smtp_code, exc.smtp_error)
            if 400 <= exc.smtp_code < 500:  # 454: the relay cannot check it just now
                raise _Temporary(f"relay {where} could not log in just now: {answer}") from None
            # Retrying a refused login only locks the account: stop, and tell a person.
            raise SendBlocked(
                f"relay {where} refused the login for {self.username!r}: {answer}; check "
                "smtp.username and POLICYFEED_SMTP_PASSWORD"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            self._discard(conn)
            raise SendBlocked(f"relay {where}: {_describe(exc)}") from None
        except ssl.SSLCertVerificationError as exc:
            self._discard(conn)
            raise SendBlocked(
                f"relay {where}: TLS certificate not accepted ({exc.verify_message}); check "
                "smtp.host, or the trust store (SSL_CERT_FILE)"
            ) from None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:  # a connection cut mid-handshake
            self._discard(conn)
            raise _Temporary(f"cannot connect to relay {where}: {_describe(exc)}") from None
        except ssl.SSLError as exc:
            self._discard(conn)
            raise SendBlocked(
                f"relay {where}: TLS handshake failed ({exc.reason or _describe(exc)}); do "
                f"smtp.port and smtp.security ({self.security}) match the relay?"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._discard(conn)
            raise _Temporary(f"cannot connect to relay {where}: {_describe(exc)}") from None
        # The final "." goes out on its own, after the hand-off is recorded: without NODELAY,
        # Nagle's algorithm would hold it until the relay acknowledges the data (a delayed
        # ACK, ~40 ms), and the row would sit `sending` all that time.
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections += 1
        self._sent_on_conn = 0
        log.debug("connected to %s (%s)", where, self.security)
        return conn

    @staticmethod
    def _discard(conn: smtplib.SMTP | None) -> None:
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def _drop(self) -> None:
        self._discard(self._conn)
        self._conn = None

    def close(self) -> None:
        """Say QUIT politely and release the connection."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            self._discard(conn)

    def delivered(self, message_id: str) -> None:
        """A relay never says whether it took a message whose answer was lost."""
        return None

    # --- sending -------------------------------------------------------------------------
    def send(
        self,
        message: bytes,
        *,
        sender: str,
        recipient: str,
        message_id: str,
        handoff: Handoff | None = None,
    ) -> None:
        """Hand one message for one recipient to the relay, or raise (see the module)."""
        if self._shared is not None and self._shared.blocked:
            raise SendBlocked(self._shared.blocked)
        try:
            self._send(message, sender, recipient, message_id, handoff)
        except SendBlocked as exc:
            if self._shared is not None:
                self._shared.blocked = str(exc)
            raise

    def _send(
        self,
        message: bytes,
        sender: str,
        recipient: str,
        message_id: str,
        handoff: Handoff | None,
    ) -> None:
        retry = 0
        free_reconnect = True
        while True:
            self._limiter.wait()
            try:
                self._send_once(message, sender, recipient, handoff)
                return
            except _Temporary as exc:
                if exc.recipient:
                    raise RecipientDeferred(str(exc)) from None
                if exc.stale and free_reconnect:
                    # An idle connection the relay closed: reconnect at once, no retry spent.
                    free_reconnect = False
                    log.debug("relay closed the connection; reconnecting (%s)", message_id)
                    continue
                retry += 1
                if retry > self.retries or exc.after_handoff:
                    # After the hand-off the row is `sending`: it waits for the next run
                    # instead of sitting marked unsure through a backoff.
                    tried = ""
                    if self.retries and not exc.after_handoff:
                        times = "1 retry" if self.retries == 1 else f"{self.retries} retries"
                        tried = f" (gave up after {times})"
                    raise SendDeferred(f"{exc}{tried}") from None
                delay = backoff_delay(retry, self._backoff)
                log.warning(
                    "temporary failure for %s: %s; retry %d/%d in %.1fs",
                    recipient,
                    exc,
                    retry,
                    self.retries,
                    delay,
                )
                self._sleep(delay)

    def _send_once(
        self, message: bytes, sender: str, recipient: str, handoff: Handoff | None
    ) -> None:
        """One SMTP transaction, phase by phase, so a lost answer after the final ``.`` is the
        one case where the relay may have the message (:class:`SendUncertain`)."""
        reused = self._conn is not None and self._sent_on_conn > 0
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        options: list[str] = []
        if not (sender.isascii() and recipient.isascii()):
            if not conn.has_extn("smtputf8"):
                raise SendRefused(
                    f"the relay does not accept non-ASCII addresses (no SMTPUTF8): {recipient}"
                )
            options.append("SMTPUTF8")
        if conn.has_extn("size"):
            options.append(f"SIZE={len(message)}")
        data = _data_payload(message)
        try:
            code, text = conn.mail(sender, options)
            if code != 250:
                self._answered("MAIL", code, text, sender)
            code, text = conn.rcpt(recipient)
            if code not in (250, 251):
                self._answered("RCPT", code, text, sender)
            code, text = conn.docmd("DATA")
            if code != 354:
                self._answered("DATA", code, text, sender)
            conn.send(data[: -len(_END_OF_DATA)])
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            if isinstance(exc.__context__, TimeoutError):
                raise _Temporary("the relay did not answer in time (smtp.timeout)") from None
            raise _Temporary(f"relay closed the connection ({exc})", stale=reused) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise _Temporary(f"connection to relay failed: {_describe(exc)}") from None
        # The relay has everything but the final ".": until it gets that, it keeps nothing.
        # The ledger marks the row `sending` now, and only now.
        if handoff is not None:
            try:
                handoff()
            except BaseException:
                self._drop()  # the data never ends: the relay drops the transaction
                raise
        try:
            conn.send(_END_OF_DATA)
        except (smtplib.SMTPException, OSError) as exc:
            # The "." did not go out: the relay cannot have taken the message.
            self._drop()
            raise _Temporary(
                f"connection to relay failed: {_describe(exc)}", after_handoff=True
            ) from None
        # The whole message is with the relay now: without its answer nobody knows whether it
        # took it, and handing it over again could deliver it twice.
        try:
            code, text = conn.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise SendUncertain(
                f"no answer from the relay after the message to {recipient} was sent "
                f"({_describe(exc)}); it may or may not have been accepted"
            ) from None
        if code != 250:
            self._answered("end of data", code, text, sender)
        self._sent_on_conn += 1

    def _answered(self, phase: str, code: int, text: bytes, sender: str) -> NoReturn:
        """Turn a refusal into SendRefused or SendBlocked (5xx) or a temporary failure (4xx)."""
        answer = _answer(code, text)
        if code == 421:  # the relay is closing the session
            self._drop()
        elif self._conn is not None:
            try:
                self._conn.rset()  # ready for the next message on the same connection
            except (smtplib.SMTPException, OSError):
                self._drop()
        if 500 <= code < 600:
            if phase == "MAIL":
                # Refused for every row alike (the sender, or a login the relay wants): the
                # configuration's problem, not this subscriber's.
                raise SendBlocked(f"relay refused the sender {sender}: {answer}")
            raise SendRefused(answer, code=code, enhanced=_enhanced(text), phase=phase)
        # Each transaction has one recipient: a 4xx to its RCPT, its DATA or its final "."
        # (greylisting, a full mailbox, a content filter) is about that message alone. Only
        # a 421 (closing) or a 4xx to MAIL is the relay's own state.
        raise _Temporary(
            f"relay answered {answer} (at {phase})",
            recipient=phase != "MAIL" and code != 421,
            after_handoff=phase == "end of data",
        )


class SmtpPool:
    """``settings.smtp_connections`` connections to the relay, one rate limit for them all.

    The ledger gives each connection (:attr:`lanes`) a thread of its own; ``send`` alone (a
    notice, a test message) uses the first.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        **options: Any,
    ) -> None:
        limiter = RateLimiter(settings.smtp_rate_limit, clock=clock, sleep=sleep)
        shared = _Shared()
        self.lanes = [
            SmtpTransport(
                settings, sleep=sleep, clock=clock, limiter=limiter, shared=shared, **options
            )
            for _ in range(max(1, settings.smtp_connections))
        ]

    @property
    def connections(self) -> int:
        """Connections opened so far, by every lane."""
        return sum(lane.connections for lane in self.lanes)

    def send(
        self,
        message: bytes,
        *,
        sender: str,
        recipient: str,
        message_id: str,
        handoff: Handoff | None = None,
    ) -> None:
        self.lanes[0].send(
            message, sender=sender, recipient=recipient, message_id=message_id, handoff=handoff
        )

    def delivered(self, message_id: str) -> None:
        return None

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()


_END_OF_DATA = b".\r\n"


def _data_payload(message: bytes) -> bytes:
    """The message as sent after DATA: leading dots doubled, ended by a line with one dot."""
    payload = re.sub(rb"(?m)^\.", b"..", message)
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return payload + b".\r\n"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
