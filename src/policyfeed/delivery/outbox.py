"""The outbox: the default transport, a Maildir of finished messages named after their
Message-ID, so handing the same message over twice leaves one file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

from policyfeed.delivery.transport import Handoff, SendDeferred
from policyfeed.output import write_if_changed

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+=-]")


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

    def __init__(self, root: Path) -> None:
        self.root = root
        self._read: set[str] | None = None  # names in cur/, listed once per run

    def _folders(self) -> None:
        for folder in ("tmp", "new", "cur"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)

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
        if sender and not message.startswith(b"Return-Path:"):
            message = b"Return-Path: <" + sender.encode("utf-8") + b">\r\n" + message
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

    def close(self) -> None:
        pass

    def messages(self) -> list[Path]:
        """The delivered message files (``new/`` and ``cur/``), by name."""
        found = [p for folder in ("new", "cur") for p in (self.root / folder).glob("*")]
        return sorted(
            (p for p in found if p.is_file() and not p.name.startswith(".")), key=lambda p: p.name
        )
