"""A publish run in its own process that the tests can stop where they choose.

    python publish_helper.py DB CONFIG gate FOLDER    hold the lock, wait at the first hand-off
                                                      until FOLDER/go exists (FOLDER/started
                                                      says it is there)
    python publish_helper.py DB CONFIG kill POINT N [BATCH]   SIGKILL itself at POINT:
        site          the issue is made, the site being built, no ledger rows yet
        before-send   message N: its row still pending, the message not written
        at-handoff    the hand-off of message N's batch: the batch's rows committed
                      `sending`, none of its messages in new/ yet
        after-write   message N is in the outbox, its batch's rows still `sending`
    BATCH: messages per batch (default: the outbox's own); 1 hands each message over alone.
The environment variable STAGING=helper stages the batches a batch ahead in a helper process
whatever the list's size, STAGING=here in this process (default: as publish decides).

Run exactly like ``policyfeed publish`` otherwise (same lock, same settings, real clock).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

import policyfeed.delivery.ahead as ahead
import policyfeed.publish
from policyfeed.config import load_settings
from policyfeed.delivery.outbox import BATCH_SIZE, BatchHandoff, OutboxTransport
from policyfeed.lock import exclusive_lock, lock_path_for
from policyfeed.store import open_db

GATE_SECONDS = 60  # a bound, so a broken test never hangs


#: The publishing process: a kill point reached in the helper that stages ahead kills the run.
RUN = os.getpid()


def die() -> None:
    os.kill(RUN, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)  # in the helper: it would be killed with the run


class Stopping(OutboxTransport):
    """The outbox, counting messages and dying at the chosen one. ``before-send`` counts the
    messages staged, wherever they are staged (here, or in the helper a batch ahead); the
    hand-off points count the messages of each batch this process hands over."""

    def __init__(self, root: Path, point: str, at: int, gate: Path | None, batch: int) -> None:
        super().__init__(root)
        self.point, self.at, self.gate, self.calls = point, at, gate, 0
        self.batch_size = batch
        self.handed = 0  # messages of the batches handed over so far
        self.names: dict[int, str] = {}  # message number -> file name, this batch

    def stage(self, message: bytes, *, sender: str, recipient: str, message_id: str) -> bool:
        self.calls += 1
        if self.gate is not None and self.calls == 1:
            (self.gate / "started").write_text(str(os.getpid()))
            deadline = time.monotonic() + GATE_SECONDS
            while not (self.gate / "go").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        if self.point == "before-send" and self.calls == self.at:
            die()
        return super().stage(message, sender=sender, recipient=recipient, message_id=message_id)

    def hand_over(self, handoff: BatchHandoff, *, flushed: bool = False) -> None:
        first = self.handed + 1
        self.names = {first + n: name for n, name in enumerate(self._staged.values())}
        self.handed += len(self.names)

        def handing_off() -> Collection[str]:
            going = handoff()
            if self.point == "at-handoff" and self.at in self.names:
                die()
            return going

        super().hand_over(handing_off, flushed=flushed)

    def _move(self, staged: str, final: str) -> None:
        super()._move(staged, final)
        if self.point == "after-write" and os.path.basename(final) == self.names.get(self.at):
            die()


def main(db_path: str, config: str, mode: str, *args: str) -> int:
    settings = load_settings(Path(config))
    gate = Path(args[0]) if mode == "gate" else None
    point, at = (args[0], int(args[1]) if len(args) > 1 else 0) if mode == "kill" else ("", 0)
    batch = int(args[2]) if mode == "kill" and len(args) > 2 else BATCH_SIZE
    if point == "site":
        policyfeed.publish._build_site = lambda *a: die()  # type: ignore[assignment]
    staging = os.environ.get("STAGING", "")  # "helper" or "here"; by default as publish decides
    if staging:
        ahead.AHEAD_FROM_BATCHES = 0 if staging == "helper" else 1 << 30
    transport = Stopping(settings.outbox_dir, point, at, gate, batch)
    with exclusive_lock(lock_path_for(Path(db_path))):
        db = open_db(db_path)
        result = policyfeed.publish.publish(
            db, settings, now=datetime.now(UTC).replace(microsecond=0), transport=transport
        )
    print(result.status)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
