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

import contextlib
import mmap
import os
import signal
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

from policyfeed.delivery.transport import BatchTransport, SendDeferred
from policyfeed.processes import can_fork, die_with_parent

#: A run with more rows than this many batches stages in a helper; below, forking costs more
#: than it saves. (Tests set it to 0 to run small lists through the helper.)
AHEAD_FROM_BATCHES = 2
#: Messages given to the helper at a time.
PART = 50
#: Parts given to the helper and not yet back, at most: what keeps it busy while this process
#: hands a batch over.
PARTS_IN_FLIGHT = 8
#: The memory shared with the helper; a message larger than a quarter of it goes through the
#: pipe instead.
RING_BYTES = 16 << 20


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


def _serve(
    jobs: Connection, results: Connection, transport: BatchTransport, ring: mmap.mmap
) -> None:
    """The helper's loop: each job from ``jobs`` in turn, its outcome to ``results``."""
    view = memoryview(ring)  # the messages are written from it, not copied out
    handing = _Handing(transport)
    while True:
        try:
            job = jobs.recv()
        except EOFError:  # the run closed its end, or is gone
            return
        if job is None:
            return
        kind, args = job
        try:
            if kind == "stage":
                messages = [
                    Message(
                        p.data if p.data is not None else view[p.offset : p.offset + p.length],
                        p.sender,
                        p.recipient,
                        p.message_id,
                    )
                    for p in args
                ]
                outcome: tuple[bool, Any] = (True, stage_messages(transport, messages))
            else:
                handing(*args)
                outcome = (True, None)
        except BaseException as exc:  # it goes back to the run, which raises it
            outcome = (False, exc)
        try:
            results.send(outcome)
        except Exception:  # an error that does not pickle: its text goes back
            results.send((False, RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]}")))


#: A pipe this large holds every job and result a run has on its way at once (F_SETPIPE_SZ).
_PIPE_BYTES = 1 << 20


def _pipe() -> tuple[int, int]:
    """A pipe that holds :data:`_PIPE_BYTES`; OSError where it cannot."""
    import fcntl

    read, write = os.pipe()
    try:
        fcntl.fcntl(write, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except OSError:
        os.close(read)
        os.close(write)
        raise
    return read, write


class _Result:
    """The outcome of job ``number``, read from the helper when it is needed."""

    def __init__(self, helper: Helper, number: int) -> None:
        self.helper = helper
        self.number = number

    def wait(self) -> None:
        """Until the helper is done with the job (its error, if any, comes with the result)."""
        self.helper._read_until(self.number)

    def __call__(self) -> Any:
        self.wait()
        ok, value = self.helper._received.pop(self.number)
        if not ok:
            raise value
        return value


class Helper:
    """Stages and hands over in one forked helper process, in the order the jobs are given.
    The helper inherits the transport as it is when it starts (forked: nothing is pickled but
    the messages' places and envelopes going in and the :class:`Staged` coming back). Jobs and
    results go through two pipes large enough for everything on its way at once, read and
    written by this thread alone: no thread of its own waits for the interpreter's lock
    between two jobs."""

    in_flight = PARTS_IN_FLIGHT

    def __init__(self, transport: BatchTransport) -> None:
        self._ring = mmap.mmap(-1, RING_BYTES)  # shared with the helper, which is forked
        self._head = 0  # where the last message placed ends
        # (offset, its part: None while it is being made up), in the order they were placed
        self._used: deque[tuple[int, _Result | None]] = deque()
        self._received: dict[int, tuple[bool, Any]] = {}
        self._sent = 0  # jobs given
        self._read = 0  # results read
        self._broken = False  # the results can no longer be read
        jobs_read, jobs_write = _pipe()
        try:
            results_read, results_write = _pipe()
        except OSError:
            os.close(jobs_read)
            os.close(jobs_write)
            raise
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:  # no process to be had: everything goes back
            for fd in (jobs_read, jobs_write, results_read, results_write):
                os.close(fd)
            self._ring.close()
            raise
        if pid == 0:  # the helper
            code = 0
            try:
                # Ctrl-C reaches the whole process group: the run decides, the helper finishes
                # the job in hand and stops when the run closes its end.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                os.close(jobs_write)
                os.close(results_read)
                die_with_parent(parent)
                _serve(
                    Connection(jobs_read, writable=False),
                    Connection(results_write, readable=False),
                    transport,
                    self._ring,
                )
            except BaseException:  # nobody to tell but the exit code: the run sees the pipe close
                code = 1
            finally:
                os._exit(code)
        os.close(jobs_read)
        os.close(results_write)
        self._pid: int | None = pid
        self._jobs = Connection(jobs_write, readable=False)
        self._results = Connection(results_read, writable=False)

    def _give(self, job: tuple[str, Any]) -> _Result:
        if self._pid is None or self._broken:
            raise RuntimeError("the process writing the outbox stopped")
        try:
            self._jobs.send(job)
        except OSError:  # a broken pipe: the helper is gone
            raise RuntimeError("the process writing the outbox stopped") from None
        self._sent += 1
        return _Result(self, self._sent - 1)

    def _read_until(self, number: int) -> None:
        while self._read <= number:
            if self._broken:
                raise RuntimeError("the process writing the outbox stopped")
            try:
                outcome = self._results.recv()
            except BaseException:
                # The helper is gone (EOF), or the stream of results is cut where this read
                # stopped (an interrupt, an answer that cannot be rebuilt): no later result can
                # be matched to its job any more.
                self._broken = True
                self._stop(kill=True)
                raise RuntimeError("the process writing the outbox stopped") from None
            self._received[self._read] = outcome
            self._read += 1

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
            part.wait()
            self._used.popleft()

    def start(self, messages: Sequence[Message]) -> Callable[[], Staged]:
        if self._pid is None or self._broken:
            raise RuntimeError("the process writing the outbox stopped")
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
        result = self._give(("stage", placed))
        for n in range(len(self._used) - mine, len(self._used)):
            self._used[n] = (self._used[n][0], result)
        return result

    def hand_over(self, staged: dict[str, str], going: Collection[str]) -> Callable[[], None]:
        return self._give(("hand over", (staged, set(going))))

    def close(self) -> None:
        """Let the helper finish the job in hand (so that nothing is written after), then stop
        it."""
        self._stop(kill=False)

    def _stop(self, *, kill: bool) -> None:
        if self._pid is None:
            return
        pid, self._pid = self._pid, None
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self._jobs.send(None)
        self._jobs.close()
        self._results.close()  # a helper writing a result now stops (a broken pipe)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        self._used.clear()
        self._ring.close()


def stager(transport: BatchTransport, *, rows: int) -> Stager:
    """A helper for a run of more than :data:`AHEAD_FROM_BATCHES` batches where it can fork,
    else staging here."""
    if rows > AHEAD_FROM_BATCHES * max(1, transport.batch_size) and can_fork():
        with contextlib.suppress(OSError):  # no pipe large enough: here, then
            return Helper(transport)
    return InProcess(transport)


def wait_quietly(result: Callable[[], Any]) -> Any:
    """A started part's result when it is being given up: None if staging failed (it left
    nothing staged then)."""
    try:
        return result()
    except Exception:  # given up anyway: the error that stops the run is raised, not this one
        return None
