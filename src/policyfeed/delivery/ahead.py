"""Writing the outbox's messages: here, or in a forked helper while this process composes.

A batch into the outbox (:mod:`policyfeed.delivery.outbox`) is composed (each member's message,
signed), staged (each written into ``tmp/``: on a big list most of a run's time, nearly all of it
in the kernel), flushed to disk (one flush of the filesystem), committed ``sending`` in the
ledger, handed over (the renames into ``new/``, one flush of ``new/``) and its outcome committed.
On a big list a forked helper does the files' part, staging and the renames in order, while
this process composes the next messages, waits for the flushes and keeps the ledger
(:class:`Helper`): a run uses both cores, and the writes never wait for composing, for the
database or for the disk. Small runs, and platforms without ``fork``, do it all here
(:class:`InProcess`).

The messages go to the helper a part of a batch at a time (:data:`PART`), through a ring of
memory shared with it (:data:`RING_BYTES`): this process copies each message in, the helper
writes it from there, and only its place and envelope go through the pipe. (Sending the
messages themselves through the pipe made the helper fault in fresh pages for every part it
received, a fifth of its time.) A big list holds no more than the ring in memory at once.

What stays the same either way: a message is in ``new/`` only after its file was flushed and
its row committed ``sending``, and the ledger decides everything. The helper never touches the
database; it writes what it is given and returns, per message, whether it was staged or was
delivered already, and the names of its staged files, which this process then hands over or
removes. It dies with its parent (a SIGKILL of the run stops it at once), so it never writes
after the run is gone.
"""

from __future__ import annotations

import mmap
import os
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from policyfeed.delivery.transport import BatchTransport, SendDeferred
from policyfeed.processes import can_fork, die_with_parent, parent_gone

#: A run with more rows than this many batches stages in a helper; below, forking costs more
#: than it saves. (Tests set it to 0 to run small lists through the helper.)
AHEAD_FROM_BATCHES = 2
#: Messages given to the helper at a time.
PART = 50
#: Parts given to the helper and not yet back, at most: what keeps it busy while this process
#: hands a batch over.
PARTS_IN_FLIGHT = 4
#: The memory shared with the helper; a message larger than a quarter of it goes through the
#: pipe instead.
RING_BYTES = 8 << 20


@dataclass(frozen=True)
class Message:
    """One finished message to stage, with its envelope."""

    data: bytes | memoryview
    sender: str
    recipient: str
    message_id: str


@dataclass(frozen=True)
class _Placed:
    """A message on its way to the helper: ``length`` bytes at ``offset`` in the ring, or
    ``data`` itself when it did not fit."""

    offset: int
    length: int
    data: bytes | None
    sender: str
    recipient: str
    message_id: str


@dataclass(frozen=True)
class Staged:
    """What staging some messages gave. ``flags``: per message, in order, True when it was
    staged, False when it was delivered already (nothing to hand over). ``names``: Message-ID
    → staged file, for :meth:`~policyfeed.delivery.outbox.OutboxTransport.adopt_staged`.
    ``deferred``: why staging stopped early (a full disk); then ``flags`` covers the messages
    before the one it stopped at, and none of these messages is left staged."""

    flags: list[bool]
    names: dict[str, str] = field(default_factory=dict)
    deferred: str | None = None


def stage_messages(transport: BatchTransport, messages: Sequence[Message]) -> Staged:
    """Stage each message; the transport holds none of them staged after (see
    :class:`Staged`)."""
    flags: list[bool] = []
    try:
        for m in messages:
            flags.append(
                transport.stage(
                    m.data, sender=m.sender, recipient=m.recipient, message_id=m.message_id
                )
            )
    except SendDeferred as exc:
        transport.discard()
        return Staged(flags, deferred=str(exc) or "temporary failure")
    except BaseException:
        transport.discard()
        raise
    return Staged(flags, transport.take_staged())


class Stager(Protocol):
    """Starts staging some messages; what :meth:`start` returns gives their :class:`Staged`
    when called (waiting for it, or raising what staging raised)."""

    #: Parts started and not yet collected, at most (0: each is staged as it is started).
    in_flight: int

    def start(self, messages: Sequence[Message]) -> Callable[[], Staged]: ...

    def hand_over(self, staged: dict[str, str], going: Collection[str]) -> Callable[[], None]:
        """After everything started so far: hand over ``staged`` (from :class:`Staged`),
        moving the files of the Message-IDs in ``going`` into ``new/`` and removing the others
        (see :meth:`~policyfeed.delivery.outbox.OutboxTransport.hand_over`). What it returns
        raises what the hand-over raised (:class:`SendDeferred`: see ``delivered``)."""
        ...

    def close(self) -> None: ...


class InProcess:
    """Stages here, at once."""

    in_flight = 0

    def __init__(self, transport: BatchTransport) -> None:
        self.transport = transport
        self._handing = _Handing(transport)

    def start(self, messages: Sequence[Message]) -> Callable[[], Staged]:
        staged = stage_messages(self.transport, messages)
        return lambda: staged

    def hand_over(self, staged: dict[str, str], going: Collection[str]) -> Callable[[], None]:
        try:
            self._handing(staged, going)
        except BaseException as exc:
            error = exc

            def fails() -> None:
                raise error

            return fails
        return lambda: None

    def close(self) -> None:
        pass


_helper_transport: BatchTransport | None = None
_helper_ring: mmap.mmap | None = None


def _start_helper(parent: int, transport: BatchTransport, ring: mmap.mmap) -> None:
    global _helper_transport, _helper_ring, _helper_handing
    die_with_parent(parent)
    _helper_transport, _helper_ring, _helper_handing = transport, ring, _Handing(transport)


class _Handing:
    """The files' side of hand-overs, in order: the files were flushed and the rows committed
    ``sending`` already (by the run's process, so that the helper writes on meanwhile instead
    of waiting for the disk), the renames into ``new/`` and its flush are left. After one
    fails (a full disk) the later ones are refused, their files removed: a run stops at its
    first failed hand-over, and what was handed over after it is not delivered either."""

    def __init__(self, transport: BatchTransport) -> None:
        self.transport = transport
        self.failed: str | None = None

    def __call__(self, staged: dict[str, str], going: Collection[str]) -> None:
        self.transport.adopt_staged(staged)
        if self.failed is not None:
            self.transport.discard()
            raise SendDeferred(self.failed)
        try:
            self.transport.hand_over(lambda: going, flushed=True)
        except SendDeferred as exc:
            self.failed = str(exc) or "temporary failure"
            raise


_helper_handing: _Handing | None = None


def _hand_over_in_helper(parent: int, staged: dict[str, str], going: Collection[str]) -> None:
    if parent_gone(parent) or _helper_handing is None:
        os._exit(1)
    _helper_handing(staged, going)


def _in_helper(parent: int, placed: Sequence[_Placed]) -> Staged:
    if parent_gone(parent) or _helper_transport is None or _helper_ring is None:
        os._exit(1)
    ring = memoryview(_helper_ring)  # the messages are written from it, not copied out
    messages = [
        Message(
            p.data if p.data is not None else ring[p.offset : p.offset + p.length],
            p.sender,
            p.recipient,
            p.message_id,
        )
        for p in placed
    ]
    return stage_messages(_helper_transport, messages)


class Helper:
    """Stages in one forked helper process, in the order the parts are started. The helper
    inherits the transport as it is when it starts (forked: nothing is pickled but the messages
    going in and the :class:`Staged` coming back)."""

    in_flight = PARTS_IN_FLIGHT

    def __init__(self, transport: BatchTransport) -> None:
        import multiprocessing

        self._ring = mmap.mmap(-1, RING_BYTES)  # shared with the helper, which is forked
        self._head = 0  # where the last message placed ends
        # (offset, its part: None while it is being made up), in the order they were placed
        self._used: deque[tuple[int, Future[Staged] | None]] = deque()
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_helper,
            initargs=(os.getpid(), transport, self._ring),
        )

    def _room(self, size: int) -> int | None:
        """Where ``size`` bytes go in the ring: after the last message placed, or at the start
        when the end has no room, once the helper is done with what lies there (messages are
        placed in order, so the oldest are the ones to wait for). None when only the part
        being made up is in the way."""
        while True:
            if not self._used:
                return 0
            tail, part = self._used[0]  # where the oldest message still in use begins
            if self._head > tail:  # in use: [tail, head)
                if self._head + size <= RING_BYTES:
                    return self._head
                if size <= tail:
                    return 0
            elif self._head + size <= tail:  # in use: [tail, end) and [0, head)
                return self._head
            if part is None:
                return None
            part.exception()  # wait until the helper is done with it (an error comes later)
            self._used.popleft()

    def start(self, messages: Sequence[Message]) -> Callable[[], Staged]:
        assert self._pool is not None, "the helper is closed"
        placed: list[_Placed] = []
        mine = 0  # messages of this part in the ring
        for m in messages:
            size = len(m.data)
            offset = self._room(size) if size <= RING_BYTES // 4 else None
            if offset is None:  # through the pipe
                placed.append(_Placed(0, size, bytes(m.data), m.sender, m.recipient, m.message_id))
                continue
            self._ring[offset : offset + size] = m.data
            self._head = offset + size
            self._used.append((offset, None))
            mine += 1
            placed.append(_Placed(offset, size, None, m.sender, m.recipient, m.message_id))
        future: Future[Staged] = self._pool.submit(_in_helper, os.getpid(), placed)
        for n in range(len(self._used) - mine, len(self._used)):
            self._used[n] = (self._used[n][0], future)
        return future.result

    def hand_over(self, staged: dict[str, str], going: Collection[str]) -> Callable[[], None]:
        assert self._pool is not None, "the helper is closed"
        future: Future[None] = self._pool.submit(
            _hand_over_in_helper, os.getpid(), staged, set(going)
        )
        return future.result

    def close(self) -> None:
        """Wait for the part in hand (so that nothing is written after), drop the others."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._used.clear()
            self._ring.close()


def stager(transport: BatchTransport, *, rows: int) -> Stager:
    """A helper for a run of more than :data:`AHEAD_FROM_BATCHES` batches where it can fork,
    else staging here."""
    if rows > AHEAD_FROM_BATCHES * max(1, transport.batch_size) and can_fork():
        return Helper(transport)
    return InProcess(transport)


def wait_quietly(result: Callable[[], Any]) -> Any:
    """A started part's result when it is being given up: None if staging failed (it left
    nothing staged then)."""
    try:
        return result()
    except Exception:  # given up anyway: the error that stops the run is raised, not this one
        return None
