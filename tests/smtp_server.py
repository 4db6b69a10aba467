"""A real SMTP relay for tests: aiosmtpd on 127.0.0.1, on a port the OS picks.

It records what actually arrives and can misbehave on purpose, the way relays do:

- ``security="starttls"`` or ``"tls"`` with a certificate made at test time (trustme);
- ``auth=("user", "password")``: AUTH required before MAIL;
- ``refuse={"bob@example.org": "550 5.1.1 ..."}``: a permanent answer to one recipient;
- ``refuse_data={...}`` / ``refuse_message={...}``: the same answer, given instead to the DATA
  command or after the message's final ``.`` (a content filter, a full mailbox at delivery);
- ``down_after=k, down_mode="drop" | "421" | "stall"``: once k messages were accepted, every MAIL
  gets the connection dropped, a 421 answer (and the connection closed), or no answer at all;
  ``down_for=n`` recovers by itself after n such answers, else :meth:`SmtpSink.recover`;
- ``close_every=k``: the relay closes each connection after k messages (a per-session limit);
- ``lose_answers=n``: the relay accepts the next n messages but closes the connection instead
  of answering 250 (the sender cannot know the message arrived).

Use it as a context manager; every test that starts one stops it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"

# aiosmtpd logs a deprecation notice on every successful AUTH.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Received:
    """One message as the relay accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    at: float  # time.monotonic() when the relay answered 250 to the data
    connection: int  # which connection carried it (1, 2, …)
    tls: bool
    login: str | None


@dataclass
class TlsFiles:
    """A throwaway CA and a certificate for 127.0.0.1 and localhost."""

    server_context: ssl.SSLContext
    client_context: ssl.SSLContext
    ca_file: Path


def make_tls(folder: Path, names: tuple[str, ...] = (HOST, "localhost")) -> TlsFiles:
    """A CA and a certificate for ``names`` (by default the relay's own: 127.0.0.1)."""
    ca = trustme.CA()
    cert = ca.issue_cert(*names)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    ca_file = folder / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsFiles(server_context, client_context, ca_file)


@dataclass
class _Script:
    refuse: dict[str, str] = field(default_factory=dict)
    refuse_data: dict[str, str] = field(default_factory=dict)
    refuse_message: dict[str, str] = field(default_factory=dict)
    down_after: int | None = None
    down_mode: str = "drop"
    down_for: int | None = None
    close_every: int | None = None
    stall_seconds: float = 5.0
    lose_answers: int = 0
    accepted: int = 0
    down_answers: int = 0
    recovered: bool = False


class _MisbehavingSMTP(SMTP):
    """aiosmtpd's SMTP session with the sink's script applied before each MAIL."""

    def __init__(self, handler: _Handler, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sink = sink
        self.number = sink._new_connection()
        self.carried = 0

    async def smtp_MAIL(self, arg: str | None) -> None:
        assert self.session is not None
        if self.sink.auth is not None and not self.session.authenticated:
            await self.push("530 5.7.0 Authentication required")
            return
        action = self.sink._action_for_mail()
        if action == "drop":
            assert self.transport is not None
            self.transport.close()
            return
        if action == "421":
            await self.push("421 4.3.2 Service shutting down, try again later")
            assert self.transport is not None
            self.transport.close()
            return
        if action == "stall":
            await asyncio.sleep(self.sink._script.stall_seconds)
            if self.transport is not None:
                self.transport.close()
            return
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg: str | None) -> None:
        answer = self.sink._answer_for(self.envelope.rcpt_tos, "data")
        if answer:
            await self.push(answer)
            return
        await super().smtp_DATA(arg)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self,
        server: _MisbehavingSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self.sink._lock:
            answer = self.sink._script.refuse.get(address.lower())
            self.sink.rcpt_attempts[address.lower()] += 1
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: _MisbehavingSMTP, session: Session, envelope: Envelope
    ) -> str:
        data = envelope.original_content or b""
        answer = self.sink._answer_for(envelope.rcpt_tos, "message")
        if answer:
            return answer
        login = session.auth_data.login.decode() if session.authenticated else None
        server.carried += 1
        self.sink._record(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=data,
                at=time.monotonic(),
                connection=server.number,
                tls=server._tls_protocol is not None or server.sink.security == "tls",
                login=login,
            )
        )
        if self.sink._lose_answer() and server.transport is not None:
            server.transport.close()  # accepted, but the 250 never reaches the sender
            return "250 2.0.0 (lost)"
        close_every = self.sink._script.close_every
        if close_every and server.carried >= close_every and server.transport is not None:
            # Closed once the 250 below is flushed: the client finds out on its next command.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 2.0.0 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's threaded controller on a socket we bound ourselves (port 0: no race)."""

    def __init__(self, sink: SmtpSink, listener: socket.socket, **kwargs: Any) -> None:
        self._listener = listener
        self._sink = sink
        super().__init__(_Handler(sink), hostname=HOST, port=listener.getsockname()[1], **kwargs)

    def factory(self) -> SMTP:
        return _MisbehavingSMTP(self.handler, self._sink, **self.SMTP_kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker, sock=self._listener, ssl=self.ssl_context
        )


class SmtpSink:
    """A local relay that records every accepted message (see the module docstring)."""

    def __init__(
        self,
        *,
        security: str = "none",
        tls: TlsFiles | None = None,
        auth: tuple[str, str] | None = None,
        refuse: dict[str, str] | None = None,
        refuse_data: dict[str, str] | None = None,
        refuse_message: dict[str, str] | None = None,
        down_after: int | None = None,
        down_mode: str = "drop",
        down_for: int | None = None,
        close_every: int | None = None,
        stall_seconds: float = 5.0,
        lose_answers: int = 0,
    ) -> None:
        if security != "none" and tls is None:
            raise ValueError("a TLS relay needs make_tls()")
        if down_mode not in ("drop", "421", "stall"):
            raise ValueError(down_mode)
        self.security = security
        self.tls = tls
        self.auth = auth
        self._script = _Script(
            refuse={k.lower(): v for k, v in (refuse or {}).items()},
            refuse_data={k.lower(): v for k, v in (refuse_data or {}).items()},
            refuse_message={k.lower(): v for k, v in (refuse_message or {}).items()},
            down_after=down_after,
            down_mode=down_mode,
            down_for=down_for,
            close_every=close_every,
            stall_seconds=stall_seconds,
            lose_answers=lose_answers,
        )
        self._lock = threading.Lock()
        self.messages: list[Received] = []
        #: How many times each address was given to RCPT (accepted or not).
        self.rcpt_attempts: Counter[str] = Counter()
        #: Called in the relay's thread with each message it accepts, before it answers 250.
        self.on_message: Callable[[Received], None] | None = None
        self.connections = 0
        self.port = 0
        self.host = HOST
        self._controller: _Controller | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> SmtpSink:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        kwargs: dict[str, Any] = {"ready_timeout": 10.0, "timeout": 10}
        if self.security == "starttls":
            assert self.tls is not None
            kwargs.update(tls_context=self.tls.server_context, require_starttls=True)
        elif self.security == "tls":
            assert self.tls is not None
            kwargs["ssl_context"] = self.tls.server_context
        if self.auth is not None:
            # AUTH is enforced at MAIL (see _MisbehavingSMTP); aiosmtpd's own auth_required
            # warns about plain-text AUTH, which the "none" relay offers on purpose.
            kwargs.update(
                authenticator=self._authenticate, auth_require_tls=self.security == "starttls"
            )
        self._controller = _Controller(self, listener, **kwargs)
        self._controller.start()
        with self._lock:  # the controller's own readiness probe is not a client
            self.connections = 0
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting -----------------------------------------------------------------------
    def recover(self) -> None:
        """The relay is back: every later MAIL is served normally."""
        with self._lock:
            self._script.recovered = True

    def stop_refusing(self) -> None:
        """Every recipient is accepted from now on."""
        with self._lock:
            self._script.refuse.clear()
            self._script.refuse_data.clear()
            self._script.refuse_message.clear()

    def settings_overrides(self) -> dict[str, Any]:
        """Settings fields that point policyfeed at this relay."""
        overrides: dict[str, Any] = {
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": self.security,
        }
        if self.auth is not None:
            overrides["smtp_username"] = self.auth[0]
        return overrides

    def environ(self) -> dict[str, str]:
        """The same as POLICYFEED_* environment variables (for CLI runs)."""
        env = {f"POLICYFEED_{k.upper()}": str(v) for k, v in self.settings_overrides().items()}
        if self.auth is not None:
            env["POLICYFEED_SMTP_PASSWORD"] = self.auth[1]
        return env

    # --- what arrived --------------------------------------------------------------------
    def recipients(self) -> Counter[str]:
        """How many messages each address received."""
        with self._lock:
            return Counter(r.lower() for m in self.messages for r in m.rcpt_tos)

    @property
    def down_answers(self) -> int:
        with self._lock:
            return self._script.down_answers

    # --- called from the relay's thread --------------------------------------------------
    def _new_connection(self) -> int:
        with self._lock:
            self.connections += 1
            return self.connections

    def _record(self, received: Received) -> None:
        with self._lock:
            self.messages.append(received)
            self._script.accepted += 1
            hook = self.on_message
        if hook is not None:
            hook(received)

    def _answer_for(self, recipients: list[str], phase: str) -> str:
        """The scripted answer to DATA (``phase`` "data") or to the message ("message")."""
        with self._lock:
            script = self._script.refuse_data if phase == "data" else self._script.refuse_message
            return next((script[r.lower()] for r in recipients if r.lower() in script), "")

    def _lose_answer(self) -> bool:
        with self._lock:
            if self._script.lose_answers > 0:
                self._script.lose_answers -= 1
                return True
            return False

    def _action_for_mail(self) -> str:
        with self._lock:
            script = self._script
            if script.recovered or script.down_after is None:
                return "serve"
            if script.accepted < script.down_after:
                return "serve"
            if script.down_for is not None and script.down_answers >= script.down_for:
                return "serve"
            script.down_answers += 1
            return script.down_mode

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        assert self.auth is not None
        ok = (
            isinstance(auth_data, LoginPassword)
            and (
                auth_data.login.decode(),
                auth_data.password.decode(),
            )
            == self.auth
        )
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
