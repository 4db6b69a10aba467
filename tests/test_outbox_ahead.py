"""The helper that writes the outbox's messages while the run composes the next ones: what it
writes is byte for byte what it was given, however the messages fill and wrap its shared ring,
and it never outlives the run."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import policyfeed.delivery.ahead as ahead
from policyfeed.delivery.outbox import OutboxTransport, outbox_name
from policyfeed.delivery.transport import SendDeferred
from policyfeed.processes import can_fork

SENDER = "policy-digest@example.org"


def message(n: int, size: int) -> ahead.Message:
    body = (f"message {n} ".encode() * (size // 10 + 1))[:size]
    data = f"Message-ID: <m{n}@example.org>\r\n\r\n".encode() + body
    return ahead.Message(data, SENDER, f"member{n}@example.org", f"m{n}@example.org")


@pytest.mark.parametrize("ring", [4096, 64 << 10])
def test_what_the_helper_writes_is_what_it_was_given_as_the_ring_wraps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ring: int
) -> None:
    """Messages of every size, some larger than a quarter of the ring (those go through the
    pipe), in parts started several at a time: each file holds its own message, whole."""
    monkeypatch.setattr(ahead, "RING_BYTES", ring)
    sizes = random.Random(ring)
    messages = [message(n, sizes.choice([10, 300, 900, 1500, 2500, 5000])) for n in range(400)]
    transport = OutboxTransport(tmp_path / "outbox")
    helper = ahead.Helper(transport)
    try:
        results = [helper.start(messages[first : first + 7]) for first in range(0, 400, 7)]
        staged = [result() for result in results]
    finally:
        helper.close()
    assert all(s.deferred is None and all(s.flags) for s in staged)
    for s in staged:
        transport.adopt_staged(s.names)
    transport.hand_over(lambda: {m.message_id for m in messages})
    for m in messages:
        written = (tmp_path / "outbox" / "new" / outbox_name(m.message_id)).read_bytes()
        assert written == f"Return-Path: <{SENDER}>\r\n".encode() + m.data, m.message_id
    assert os.listdir(tmp_path / "outbox" / "tmp") == []


def test_a_full_disk_in_the_helper_is_a_deferral_with_nothing_left_staged(
    tmp_path: Path,
) -> None:
    class FillsUp(OutboxTransport):
        staged = 0

        def stage(self, data: bytes, **envelope: str) -> bool:
            self.staged += 1
            if self.staged == 5:
                raise SendDeferred("cannot write to the outbox: No space left")
            return super().stage(data, **envelope)  # type: ignore[arg-type]

    transport = FillsUp(tmp_path / "outbox")
    helper = ahead.Helper(transport)
    try:
        staged = helper.start([message(n, 100) for n in range(8)])()
    finally:
        helper.close()
    assert staged.flags == [True] * 4 and staged.names == {}
    assert staged.deferred == "cannot write to the outbox: No space left"
    assert os.listdir(tmp_path / "outbox" / "tmp") == []


def test_an_error_in_the_helper_comes_back_to_the_run(tmp_path: Path) -> None:
    class Broken(OutboxTransport):
        def stage(self, data: bytes, **envelope: str) -> bool:
            raise RuntimeError("a bug in staging")

    helper = ahead.Helper(Broken(tmp_path / "outbox"))
    try:
        result = helper.start([message(1, 100)])
        with pytest.raises(RuntimeError, match="a bug in staging"):
            result()
    finally:
        helper.close()


def test_small_runs_stage_here_and_big_ones_in_a_helper(tmp_path: Path) -> None:
    transport = OutboxTransport(tmp_path / "outbox")
    transport.batch_size = 10
    small = ahead.stager(transport, rows=20)
    big = ahead.stager(transport, rows=21)
    try:
        assert isinstance(small, ahead.InProcess)
        assert isinstance(big, ahead.Helper) == can_fork()
    finally:
        small.close()
        big.close()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_message_file_is_readable_by_the_program_that_picks_it_up_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int
) -> None:
    """0644 always; a chmod only where the umask would have taken more away."""
    import policyfeed.delivery.outbox as outbox_module

    chmods: list[int] = []
    real_fchmod = os.fchmod
    monkeypatch.setattr(
        outbox_module.os, "fchmod", lambda fd, mode: (chmods.append(mode), real_fchmod(fd, mode))
    )
    assert delivered_mode(tmp_path / "outbox", umask) == 0o644
    assert chmods == ([0o644] if umask & 0o044 else [])


def delivered_mode(root: Path, umask: int) -> int:
    """The mode of one message staged and handed over into the outbox at ``root`` under
    ``umask``."""
    before = os.umask(umask)
    try:
        transport = OutboxTransport(root)
        assert transport.stage(b"Subject: x\r\n\r\nx\r\n", sender=SENDER, recipient="a@b.org",
                               message_id="m1@x")  # fmt: skip
        transport.hand_over(lambda: {"m1@x"})
    finally:
        os.umask(before)
    return (root / "new" / "m1@x").stat().st_mode & 0o777


def test_a_stale_file_in_tmp_with_a_narrow_mode_is_not_delivered_with_it(tmp_path: Path) -> None:
    """A run killed under umask 077 between creating a message and its chmod leaves a 0600
    file in tmp/; the next run, under umask 022, writes a new file, readable by the program
    that picks it up."""
    (tmp_path / "outbox" / "tmp").mkdir(parents=True)
    stale = tmp_path / "outbox" / "tmp" / "m1@x"
    stale.write_bytes(b"old")
    stale.chmod(0o600)
    assert delivered_mode(tmp_path / "outbox", 0o022) == 0o644


def test_a_read_cut_short_breaks_the_helper_instead_of_matching_results_to_other_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt in the middle of reading a result leaves the stream of results unreadable:
    every later result is an error (never the next job's answer taken for this one's), and the
    helper is stopped and reaped."""
    transport = OutboxTransport(tmp_path / "outbox")
    helper = ahead.Helper(transport)
    pid = helper._pid
    assert pid is not None
    try:
        results = [helper.start([message(n, 100)]) for n in range(3)]

        def cut(*_: object) -> object:
            raise KeyboardInterrupt

        monkeypatch.setattr(helper._results, "recv", cut)
        for result in results:
            with pytest.raises(RuntimeError, match="the process writing the outbox stopped"):
                result()
        with pytest.raises(RuntimeError, match="the process writing the outbox stopped"):
            helper.start([message(9, 100)])
    finally:
        helper.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left


def test_ctrl_c_reaching_the_helper_does_not_stop_it_in_the_middle_of_a_job(
    tmp_path: Path,
) -> None:
    import signal

    transport = OutboxTransport(tmp_path / "outbox")
    helper = ahead.Helper(transport)
    try:
        assert helper._pid is not None
        result = helper.start([message(n, 2000) for n in range(40)])
        os.kill(helper._pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the group
        staged = result()
        assert staged.deferred is None and len(staged.flags) == 40
    finally:
        helper.close()


def test_a_fork_that_fails_leaves_no_descriptor_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ahead.os, "fork", no_fork)
    transport = OutboxTransport(tmp_path / "outbox")
    transport.batch_size = 1
    chosen = ahead.stager(transport, rows=100)
    assert isinstance(chosen, ahead.InProcess)  # the run goes on in-process
    if before is not None:
        assert set(os.listdir("/proc/self/fd")) == before
