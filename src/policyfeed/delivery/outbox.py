"""The outbox: the default transport, a Maildir of finished messages named after their
Message-ID, so handing the same message over twice leaves one file.

A digest goes in batches (:meth:`OutboxTransport.stage`, then :meth:`OutboxTransport.hand_over`):
every message of a batch is written to ``tmp/``, the batch is made durable with one flush of the
filesystem, the ledger's hand-off marks its rows ``sending`` (or has marked them already, when a
helper process does the files' part: see :mod:`policyfeed.delivery.ahead`), the files are
renamed into ``new/`` and ``new/`` is flushed once. The same guarantee as a flush per message (a
message in ``new/`` is whole and on disk before its row says sent) for one flush per batch
instead of one per file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Collection
from pathlib import Path

from policyfeed.delivery.transport import Handoff, SendDeferred
from policyfeed.output import fsync_dir, sync_filesystem, write_if_changed

#: Messages per batch: one flush of the filesystem each. Larger batches flush less often; a run
#: killed inside a hand-off leaves up to this many rows ``sending`` (the next run settles them
#: by looking in ``new/``).
BATCH_SIZE = 500

#: Called by :meth:`OutboxTransport.hand_over` at the batch's point of no return: the ledger
#: marks the rows ``sending`` and returns the Message-IDs that may go (a row settled meanwhile
#: by someone else is left out).
BatchHandoff = Callable[[], Collection[str]]

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+=-]")


def _write_all(fd: int, head: bytes, body: bytes | memoryview) -> None:
    """Write ``head`` then ``body`` to ``fd`` whole: one ``writev`` as a rule, and the rest
    written on when the kernel takes less at once."""
    done = os.writev(fd, (head, body))
    if done < len(head) + len(body):
        rest = memoryview(head + body)[done:]
        while rest:
            rest = rest[os.write(fd, rest) :]


def _create(path: str) -> int:
    """A new file at ``path`` for writing, 0644 as the umask allows. A file left there by a run
    killed before it was renamed is replaced, never reused: its mode may be narrower."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(path, flags, 0o644)
    except FileExistsError:
        os.unlink(path)
        return os.open(path, flags, 0o644)


def _current_umask() -> int:
    """The process's umask (read by setting it, so set it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def outbox_name(message_id: str) -> str:
    """The Maildir file name of a message: its Message-ID, made safe for a file name."""
    bare = message_id.strip().strip("<>")
    safe = _UNSAFE_NAME.sub("_", bare).lstrip(".")[:200]
    if safe != bare:  # keep ids that only differ in unsafe characters apart
        safe += "-" + hashlib.sha256(bare.encode()).hexdigest()[:8]
    return safe


class OutboxTransport:
    """Delivers into a Maildir folder (``tmp/``, ``new/``, ``cur/``): nothing leaves the machine.

    Each message is written to ``tmp/`` then renamed into ``new/`` under a name derived from its
    Message-ID, so a mail client never sees half a message, doing a hand-off again replaces the
    file instead of adding a second copy, and whether an interrupted hand-off happened is never
    in doubt: the file is there or it is not (:meth:`delivered`). Its first line is
    ``Return-Path:`` with the envelope sender, as a delivering mail server writes it, so the
    program that picks the message up knows where bounces go.
    """

    batch_size = BATCH_SIZE

    def __init__(self, root: Path) -> None:
        self.root = root
        self._read: set[str] | None = None  # names in cur/, listed once per run
        self._made = False
        self._staged: dict[str, str] = {}  # Message-ID -> file name in tmp/, this batch
        self._in_new: set[str] | None = None  # names in new/, listed once per run
        self._tmp = os.path.join(root, "tmp")
        # Whether files are created with less than 0644 (a chmod each is needed then).
        self._umask_narrows = bool(_current_umask() & 0o644)

    def _folders(self) -> None:
        if self._made:
            return
        made = False
        for folder in ("tmp", "new", "cur"):
            path = self.root / folder
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                made = True
        if made:  # a rename into new/ is durable only once new/ itself is
            fsync_dir(self.root)
            with contextlib.suppress(OSError):
                fsync_dir(self.root.resolve().parent)
        self._made = True

    def _already_read(self, name: str) -> bool:
        if self._read is None:
            self._folders()
            self._read = {entry.split(":", 1)[0] for entry in os.listdir(self.root / "cur")}
        return name in self._read

    def delivered(self, message_id: str) -> bool:
        """Whether the message is in ``new/`` or ``cur/`` (a mail client moves it there)."""
        name = outbox_name(message_id)
        if (self.root / "new" / name).is_file():
            return True
        with contextlib.suppress(FileNotFoundError):
            return any(entry.split(":", 1)[0] == name for entry in os.listdir(self.root / "cur"))
        return False

    def send(
        self,
        message: bytes,
        *,
        sender: str,
        recipient: str,
        message_id: str,
        handoff: Handoff | None = None,
    ) -> None:
        name = outbox_name(message_id)
        message = self._with_return_path(message, sender)
        try:
            if self._already_read(name):
                return  # a mail client has already read it: never a second copy
            final = self.root / "new" / name
            with contextlib.suppress(FileNotFoundError):
                if final.read_bytes() == message:
                    return
            staged = self.root / "tmp" / name
            write_if_changed(staged, message)
            try:
                if handoff is not None:
                    handoff()
            except BaseException:
                staged.unlink(missing_ok=True)
                raise
            os.replace(staged, final)
        except OSError as exc:  # a full disk or a permission problem may pass: try again later
            raise SendDeferred(f"cannot write to the outbox {self.root}: {exc}") from exc

    # --- batches -------------------------------------------------------------------------
    def stage(
        self, message: bytes | memoryview, *, sender: str, recipient: str, message_id: str
    ) -> bool:
        """Write one message of the batch into ``tmp/`` (not flushed yet). False when it is
        delivered already (read by a mail client, or these very bytes in ``new/``): nothing to
        hand over. ``message`` may be a view (of the memory a helper shares: no copy)."""
        name = outbox_name(message_id)
        # The Return-Path line goes in front as a write of its own: no copy of the message.
        head = self._return_path_line(message, sender)
        try:
            if self._already_read(name):
                return False
            if self._in_new is None:  # listed once: during a run only this run adds to new/
                self._in_new = set(os.listdir(self.root / "new"))
            if name in self._in_new:
                final = self.root / "new" / name
                with contextlib.suppress(FileNotFoundError):
                    if (
                        os.stat(final).st_size == len(head) + len(message)
                        and final.read_bytes() == head + message
                    ):
                        return False
            fd = _create(os.path.join(self._tmp, name))
            self._staged[message_id] = name
            try:
                _write_all(fd, head, message)
                if self._umask_narrows:
                    os.fchmod(fd, 0o644)  # readable by the program that picks it up
            finally:
                os.close(fd)
        except OSError as exc:  # a full disk or a permission problem may pass: try again later
            self.discard()
            raise SendDeferred(f"cannot write to the outbox {self.root}: {exc}") from exc
        return True

    def take_staged(self) -> dict[str, str]:
        """What is staged (Message-ID → file name in ``tmp/``), no longer held here: the batch
        is handed over by whoever :meth:`adopt_staged` it (this transport, or the parent of the
        helper process that staged it, see :mod:`policyfeed.delivery.ahead`)."""
        staged, self._staged = self._staged, {}
        return staged

    def adopt_staged(self, staged: dict[str, str]) -> None:
        """Hold ``staged`` (from :meth:`take_staged`) as this batch's, for :meth:`hand_over`
        or :meth:`discard`."""
        self._staged.update(staged)

    def flush(self) -> None:
        """Every file written so far whole on disk (one flush of the filesystem): what
        :meth:`hand_over` does first, for a caller that flushes before it (``flushed``)."""
        try:
            sync_filesystem(self.root)
        except OSError as exc:
            raise SendDeferred(f"cannot write to the outbox {self.root}: {exc}") from exc

    def hand_over(self, handoff: BatchHandoff, *, flushed: bool = False) -> None:
        """Deliver the staged batch: one flush of the filesystem (every staged file whole on
        disk; not when the caller did it after the batch was staged: ``flushed``),
        ``handoff()`` (the rows are ``sending`` from now on), the rename of each message it
        returns into ``new/``, one flush of ``new/``. Staged files it does not return are
        removed. An OSError is :class:`SendDeferred`; :meth:`delivered` tells then which
        messages did arrive."""
        staged, self._staged = self._staged, {}
        tmp, new = self._tmp, os.path.join(self.root, "new")
        try:
            try:
                if staged and not flushed:
                    sync_filesystem(self.root)
                going = set(handoff())
            except BaseException:
                for name in staged.values():
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(tmp, name))
                raise
            try:
                for message_id, name in staged.items():
                    if message_id in going:
                        self._move(os.path.join(tmp, name), os.path.join(new, name))
                        if self._in_new is not None:
                            self._in_new.add(name)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(os.path.join(tmp, name))
            except BaseException:  # what was not moved goes: its rows stay pending
                for name in staged.values():
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(tmp, name))
                raise
            if going:
                fsync_dir(Path(new))
        except OSError as exc:
            raise SendDeferred(f"cannot write to the outbox {self.root}: {exc}") from exc

    def _move(self, staged: str, final: str) -> None:
        """One message of a batch into ``new/`` (a rename: whole, or not there)."""
        os.replace(staged, final)

    def discard(self) -> None:
        """Remove what was staged and not handed over."""
        staged, self._staged = self._staged, {}
        for name in staged.values():
            with contextlib.suppress(OSError):
                os.unlink(self.root / "tmp" / name)

    @staticmethod
    def _return_path_line(message: bytes | memoryview, sender: str) -> bytes:
        """The ``Return-Path:`` line to put before ``message`` (none when it has one)."""
        if sender and message[:12] != b"Return-Path:":
            return b"Return-Path: <" + sender.encode("utf-8") + b">\r\n"
        return b""

    @classmethod
    def _with_return_path(cls, message: bytes, sender: str) -> bytes:
        return cls._return_path_line(message, sender) + message

    def close(self) -> None:
        self.discard()

    def messages(self) -> list[Path]:
        """The delivered message files (``new/`` and ``cur/``), by name."""
        found = [p for folder in ("new", "cur") for p in (self.root / folder).glob("*")]
        return sorted(
            (p for p in found if p.is_file() and not p.name.startswith(".")), key=lambda p: p.name
        )
