"""The mailboxes bounces arrive in: a Maildir folder, an mbox file, or an IMAP mailbox over TLS.

Each gives its messages one at a time and moves a message aside into a folder once its outcome
is recorded (never deletes it first): ``Processed`` for what was read and acted on or ignored,
``Unmatched`` for what names no delivery, for a person to look at. A message left behind by a
run that stopped half-way is read again by the next run, which finds it recorded already.

- Maildir: ``new/`` and ``cur/``; a message moves by one rename into the Maildir++ subfolder
  ``.Processed/cur/`` (as Dovecot and Courier lay them out), so it is never in two places.
- mbox: locked for the run (dot-lock and ``fcntl``, as mail delivery agents do); moved messages
  are appended to ``<file>.Processed`` (or ``.Unmatched``) and flushed to disk before they are
  removed from the file.
- IMAP: ``imaps://user@host[:port]/Mailbox`` (TLS) or ``imap://…`` (STARTTLS, required), the
  password from POLICYFEED_IMAP_PASSWORD; messages are read with ``BODY.PEEK`` (nothing marked
  seen) and moved with ``UID MOVE`` (RFC 6851), or ``UID COPY`` then ``\\Deleted`` and
  ``UID EXPUNGE`` where the server has no MOVE.
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox
import os
import re
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from policyfeed.errors import ConfigError, InputError, TemporaryError

if TYPE_CHECKING:
    from policyfeed.config import Settings

IMAP_TIMEOUT = 30.0
#: A message larger than this is not fetched over IMAP; it is moved to the unmatched folder.
IMAP_MAX_FETCH = 10 * 1024 * 1024


@dataclass(frozen=True)
class MailItem:
    """One message of a mailbox: a key that the mailbox understands, and its bytes."""

    key: str
    raw: bytes


class Mailbox(Protocol):
    description: str

    def messages(self) -> Iterator[MailItem]: ...

    def move(self, item: MailItem, folder: str) -> None: ...

    def close(self) -> None: ...


def open_mailbox(spec: str, settings: Settings) -> Mailbox:
    """The mailbox ``spec`` names: an ``imap(s)://`` URL, a Maildir folder or an mbox file."""
    if re.match(r"(?i)imaps?://", spec):
        return ImapMailbox.from_url(spec, settings)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not ((path / "cur").is_dir() or (path / "new").is_dir()):
            raise InputError(f"{path}: a folder, but not a Maildir (it has no cur/ and new/)")
        return MaildirMailbox(path)
    if path.is_file():
        return MboxMailbox(path)
    if not path.exists():
        raise InputError(f"{path}: no such mailbox (a Maildir folder, an mbox file or imaps://…)")
    raise InputError(f"{path}: not a Maildir folder or an mbox file")


# --- Maildir -------------------------------------------------------------------------------------


class MaildirMailbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"Maildir {root}"

    def messages(self) -> Iterator[MailItem]:
        for folder in ("new", "cur"):
            directory = self.root / folder
            if not directory.is_dir():
                continue
            for name in sorted(os.listdir(directory)):
                path = directory / name
                if name.startswith(".") or not path.is_file():
                    continue
                try:
                    raw = path.read_bytes()
                except FileNotFoundError:  # another reader moved it meanwhile
                    continue
                yield MailItem(f"{folder}/{name}", raw)

    def _folder(self, folder: str) -> Path:
        target = self.root / f".{folder}"
        for sub in ("tmp", "new", "cur"):
            (target / sub).mkdir(parents=True, exist_ok=True)
        (target / "maildirfolder").touch(exist_ok=True)  # Maildir++: a subfolder
        return target

    def move(self, item: MailItem, folder: str) -> None:
        source = self.root / item.key
        base = source.name.split(":", 1)[0]
        flags = source.name.split(":2,", 1)[1] if ":2," in source.name else ""
        if "S" not in flags:
            flags = "".join(sorted(flags + "S"))
        os.replace(source, self._folder(folder) / "cur" / f"{base}:2,{flags}")

    def close(self) -> None:
        pass


# --- mbox ----------------------------------------------------------------------------------------


class MboxMailbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"mbox {path}"
        try:
            self._box = mailbox.mbox(str(path), create=False)
            self._box.lock()
        except mailbox.ExternalClashError:
            raise TemporaryError(f"{path}: locked by another program; try again later") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot open the mbox ({exc.strerror})") from None
        # The mailbox module's own keys (ints for an mbox, whatever its stubs say), by our key.
        self._keys: dict[str, Any] = {}
        self._moved: dict[str, list[Any]] = {}

    def messages(self) -> Iterator[MailItem]:
        for key in list(self._box.keys()):
            self._keys[str(key)] = key
            yield MailItem(str(key), self._box.get_bytes(key))

    def move(self, item: MailItem, folder: str) -> None:
        self._moved.setdefault(folder, []).append(self._keys[item.key])

    def close(self) -> None:
        """Copy the moved messages to their folders (flushed), then remove them here."""
        try:
            for folder, keys in self._moved.items():
                target = mailbox.mbox(f"{self.path}.{folder}", create=True)
                target.lock()
                try:
                    for key in keys:
                        target.add(self._box.get_bytes(key, from_=True))
                    target.flush()
                    _fsync(Path(f"{self.path}.{folder}"))
                finally:
                    target.unlock()
                    target.close()
            for keys in self._moved.values():
                for key in keys:
                    self._box.remove(key)
            if self._moved:
                self._box.flush()
        finally:
            self._moved = {}
            self._box.unlock()
            self._box.close()


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


# --- IMAP ----------------------------------------------------------------------------------------


def _quote(name: str) -> str:
    """A mailbox name as an IMAP quoted string (ASCII names; RFC 3501 section 4.3)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapMailbox:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str,
        username: str,
        password: str,
        folder: str,
        ca_file: Path | None,
        timeout: float = IMAP_TIMEOUT,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.folder = username, folder
        self.description = f"IMAP {username}@{host}:{port}/{folder}"
        self._password = password
        self._ca_file = ca_file
        self._timeout = timeout
        self._conn: imaplib.IMAP4 | None = None
        self._can_move = False
        self._made: set[str] = set()

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> ImapMailbox:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if not parts.hostname or not parts.username:
            raise ConfigError(
                f"bounces mailbox {url!r}: an IMAP mailbox is imaps://USER@HOST[:PORT]/FOLDER"
            )
        if parts.password:
            raise ConfigError(
                "bounces mailbox: no password in the URL; set POLICYFEED_IMAP_PASSWORD instead"
            )
        if not settings.imap_password:
            raise ConfigError(
                f"reading {parts.username}@{parts.hostname} over IMAP needs "
                "POLICYFEED_IMAP_PASSWORD; set it in the environment"
            )
        try:
            port = parts.port or (993 if scheme == "imaps" else 143)
        except ValueError:
            raise ConfigError(f"bounces mailbox {url!r}: not a port number") from None
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        return cls(
            host=parts.hostname,
            port=port,
            security="tls" if scheme == "imaps" else "starttls",
            username=unquote(parts.username),
            password=settings.imap_password,
            folder=folder,
            ca_file=settings.bounces_imap_ca_file,
        )

    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=str(self._ca_file) if self._ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"bounces.imap_ca_file {self._ca_file}: {exc}") from None

    def _connect(self) -> imaplib.IMAP4:
        where = f"{self.host}:{self.port}"
        context = self._context()
        conn: imaplib.IMAP4 | None = None
        try:
            if self.security == "tls":
                conn = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=context, timeout=self._timeout
                )
            else:
                conn = imaplib.IMAP4(self.host, self.port, timeout=self._timeout)
                if "STARTTLS" not in conn.capabilities:
                    raise ConfigError(
                        f"IMAP server {where} does not offer STARTTLS; refusing to log in "
                        "in clear text (use imaps:// if it speaks TLS)"
                    )
                conn.starttls(ssl_context=context)
            conn.login(self.username, self._password)
        except ssl.SSLCertVerificationError as exc:
            _logout(conn)
            raise ConfigError(
                f"IMAP server {where}: TLS certificate not trusted ({exc.verify_message}); "
                "see bounces.imap_ca_file"
            ) from None
        except imaplib.IMAP4.abort as exc:
            _logout(conn)
            raise TemporaryError(f"IMAP server {where} closed the connection: {exc}") from None
        except imaplib.IMAP4.error as exc:
            _logout(conn)
            raise ConfigError(
                f"IMAP server {where} refused the login for {self.username!r}: "
                f"{_text(exc)}; check the user and POLICYFEED_IMAP_PASSWORD"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            _logout(conn)
            raise TemporaryError(
                f"cannot connect to the IMAP server {where}: {_text(exc)}"
            ) from None
        # What the server can do is said again after the login (RFC 3501 7.2.1): ask.
        with contextlib.suppress(imaplib.IMAP4.error):
            status, data = conn.capability()
            if status == "OK" and data and isinstance(data[-1], bytes):
                conn.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())
        self._can_move = "MOVE" in conn.capabilities
        return conn

    def _check(self, answer: tuple[str, Sequence[object]], what: str) -> Sequence[object]:
        status, data = answer
        if status != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise TemporaryError(f"IMAP {what} failed: {status} {detail}".strip())
        return data

    def messages(self) -> Iterator[MailItem]:
        try:
            self._conn = self._connect()
            conn = self._conn
            status, data = conn.select(_quote(self.folder))
            if status != "OK":
                raise InputError(f"{self.description}: no such IMAP folder ({_joined(data)})")
            found = self._check(conn.uid("SEARCH", "UNDELETED"), "SEARCH")
            uids = b" ".join(d for d in found if isinstance(d, bytes)).split()
            for uid in uids:
                item = self._fetch(conn, uid.decode("ascii"))
                if item is not None:
                    yield item
        except (imaplib.IMAP4.abort, OSError) as exc:
            raise TemporaryError(f"{self.description}: connection lost ({_text(exc)})") from None

    def _fetch(self, conn: imaplib.IMAP4, uid: str) -> MailItem | None:
        size_answer = self._check(conn.uid("FETCH", uid, "(RFC822.SIZE)"), "FETCH")
        size = re.search(rb"RFC822\.SIZE (\d+)", b" ".join(_bytes(d) for d in size_answer))
        if size and int(size.group(1)) > IMAP_MAX_FETCH:
            return MailItem(uid, b"")  # too large to be a report of ours; set aside unread
        data = self._check(conn.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH")
        for entry in data:
            if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], bytes):
                return MailItem(uid, entry[1])
        return None  # expunged meanwhile

    def _ensure_folder(self, conn: imaplib.IMAP4, folder: str) -> None:
        if folder in self._made:
            return
        status, data = conn.create(_quote(folder))
        if status != "OK" and b"exist" not in b" ".join(_bytes(d) for d in data).lower():
            raise TemporaryError(f"IMAP CREATE {folder} failed: {_joined(data)}")
        self._made.add(folder)

    def move(self, item: MailItem, folder: str) -> None:
        conn = self._conn
        assert conn is not None
        try:
            self._ensure_folder(conn, folder)
            if self._can_move:
                self._check(conn.uid("MOVE", item.key, _quote(folder)), "MOVE")
                return
            self._check(conn.uid("COPY", item.key, _quote(folder)), "COPY")
            self._check(conn.uid("STORE", item.key, "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
            if "UIDPLUS" in conn.capabilities:
                self._check(conn.uid("EXPUNGE", item.key), "EXPUNGE")
        except (imaplib.IMAP4.abort, OSError) as exc:
            raise TemporaryError(f"{self.description}: connection lost ({_text(exc)})") from None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            if not self._can_move and "UIDPLUS" not in conn.capabilities:
                conn.expunge()
            conn.close()
        _logout(conn)


def _logout(conn: imaplib.IMAP4 | None) -> None:
    if conn is not None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError, socket.timeout):
            conn.logout()


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, tuple):
        return b" ".join(_bytes(v) for v in value)
    return b""


def _joined(data: Sequence[object]) -> str:
    return b" ".join(_bytes(d) for d in data).decode("utf-8", "replace")


def _text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.strerror:
        return exc.strerror  # "Connection refused", not "[Errno 111] Connection refused"
    return " ".join((str(exc) or type(exc).__name__).split())
