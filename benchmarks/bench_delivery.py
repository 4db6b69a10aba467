"""Delivery into the outbox: ``policyfeed publish`` against a bare Maildir loop, and a big list.

- ``outbox``: a real ``policyfeed publish`` (whole process) for 10,000 members into the outbox;
  its throughput is the messages it handed over divided by ``delivery_duration`` from its
  ``--json`` report (planning and writing the ledger rows, composing and handing over each
  message: the work that grows with the list, without the site build and check that do not).
  The baseline is a bare Python loop that writes the very bytes that run put in ``outbox/new/``
  into a fresh Maildir with the same durability: per batch of the outbox's batch size, each
  file written into ``tmp/``, one ``syncfs``, each renamed into ``new/``, one fsync of ``new/``.
- ``biglist``: 100,000 members, a real publish into the outbox, against the same with 10 members
  (peak memory, RSS of the process) and with 10,000 members (delivery time per message).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from run import Figure, Site, Workspace


def read_outbox(folder: Path) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every message a run put in ``outbox/new/``, by name."""
    new = folder / "outbox" / "new"
    return [(name, (new / name).read_bytes()) for name in sorted(os.listdir(new))]


def bare_maildir_loop(messages: list[tuple[str, bytes]], root: Path, batch: int) -> float:
    """Seconds to write ``messages`` into a fresh Maildir at ``root``, as durably as the outbox
    does: per batch, write each into tmp/, one syncfs, rename each into new/, fsync new/."""
    from policyfeed.output import fsync_dir, sync_filesystem

    if root.exists():
        shutil.rmtree(root)
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True)
    fsync_dir(root)
    tmp, new = str(root / "tmp"), str(root / "new")
    start = time.perf_counter()
    for first in range(0, len(messages), batch):
        chunk = messages[first : first + batch]
        for name, data in chunk:
            fd = os.open(os.path.join(tmp, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        sync_filesystem(root)
        for name, _ in chunk:
            os.replace(os.path.join(tmp, name), os.path.join(new, name))
        fsync_dir(root / "new")
    elapsed = time.perf_counter() - start
    shutil.rmtree(root, ignore_errors=True)
    return elapsed


def publish_once(site: Site, folder: Path, *, peak: bool = False) -> dict[str, Any]:
    """A real ``policyfeed publish --json`` into the outbox from a fresh copy of ``site``; its
    report, with ``wall`` seconds and (``peak``) ``peak_mb``. The copy stays in ``folder``."""
    import run

    fresh = site.copy_to(folder)
    command = fresh.command("publish", "--json")
    start = time.perf_counter()
    if peak:
        megabytes, output = run.peak_memory_mb(command, fresh.folder)
    else:
        output = fresh.run("publish", "--json").stdout.decode()
        megabytes = 0.0
    wall = time.perf_counter() - start
    report: dict[str, Any] = json.loads(output)
    everyone = site.dataset.active_subscribers
    if report.get("status") != "sent" or report.get("recipients") != everyone:
        raise RuntimeError(f"publish did not deliver the issue to all {everyone}: {report}")
    if not report.get("delivery_duration"):
        raise RuntimeError("publish --json gave no delivery_duration")
    report.update(wall=wall, peak_mb=megabytes)
    return report


def figure_outbox(ws: Workspace) -> Figure:
    import run

    from policyfeed.delivery.outbox import BATCH_SIZE

    sizes = ws.sizes
    members = sizes.big_subscribers
    figure = run.Figure(
        "outbox",
        f"`policyfeed publish` into the outbox, {members:,} members (delivery throughput)",
        "a bare Python loop writing the same bytes into a Maildir, same flushes",
        "msg/s",
        limit=0.8,
        higher_is_better=True,
    )
    site = ws.site(sizes.small_posts, members, tag="outbox")
    folder = ws.root / "outbox-run"
    bare_root = ws.root / "outbox-bare"
    walls: list[float] = []
    held: list[list[tuple[str, bytes]]] = []

    def ours() -> float:
        report = publish_once(site, folder)
        walls.append(report["wall"])
        held[:] = [read_outbox(folder)]  # the bytes the baseline writes next
        shutil.rmtree(folder, ignore_errors=True)
        return float(report["sent"]) / float(report["delivery_duration"])

    def theirs() -> float:
        messages = held[0]
        return len(messages) / bare_maildir_loop(messages, bare_root, BATCH_SIZE)

    ours()  # a first run, untimed: its messages are what the first baseline writes
    walls.clear()
    figure.settle(*run.paired(ours, theirs, sizes.publish_runs))
    size = sum(len(data) for _, data in held[0]) / max(1, len(held[0]))
    figure.note = (
        f"a real run (whole process) on {sizes.small_posts:,} posts, from a fresh copy each "
        f"time; throughput = messages / the run's delivery_duration (ledger rows, composing, "
        f"writing; whole process {min(walls):.1f}-{max(walls):.1f} s wall with the site build "
        f"and check); the baseline writes the same {len(held[0]):,} messages "
        f"({size / 1000:.0f} KB each) in batches of {BATCH_SIZE}: tmp/, one syncfs, rename "
        "into new/, one fsync of new/; higher is better"
    )
    held.clear()
    return figure


def figure_biglist(ws: Workspace) -> list[Figure]:
    import run

    sizes = ws.sizes
    huge, big, small = sizes.huge_subscribers, sizes.big_subscribers, sizes.small_subscribers
    memory = run.Figure(
        "biglist-memory",
        f"peak memory of `policyfeed publish` into the outbox, {huge:,} members",
        f"the same with {small:,} members",
        "MB",
        limit=1.5,
    )
    per_message = run.Figure(
        "biglist-time",
        f"delivery time per message, `policyfeed publish` into the outbox, {huge:,} members",
        f"the same with {big:,} members",
        "s",
        limit=1.2,
    )
    sites = [
        ws.site(sizes.small_posts, huge, tag="biglist"),
        ws.site(sizes.small_posts, small, tag="biglist"),
        ws.site(sizes.small_posts, big, tag="outbox"),
    ]
    folder = ws.root / "biglist-run"
    reports: list[list[dict[str, Any]]] = [[], [], []]

    def measure(index: int) -> Callable[[], None]:
        def once() -> None:
            reports[index].append(publish_once(sites[index], folder, peak=True))
            shutil.rmtree(folder, ignore_errors=True)

        return once

    run.rotated([measure(0), measure(1), measure(2)], sizes.biglist_runs)
    huge_runs, small_runs, big_runs = reports
    memory.settle([r["peak_mb"] for r in huge_runs], [r["peak_mb"] for r in small_runs])
    per_message.settle(
        [r["delivery_duration"] / r["sent"] for r in huge_runs],
        [r["delivery_duration"] / r["sent"] for r in big_runs],
    )
    memory.note = (
        f"a real run into the outbox on {sizes.small_posts:,} posts (issue made, site built and "
        "checked, every message written), from a fresh copy each time; peak RSS of the child "
        "process (getrusage RUSAGE_CHILDREN in a fresh helper process); the three sizes rotate"
    )
    walls = [r["wall"] for r in huge_runs]
    per_message.note = (
        f"the same runs: delivery_duration / messages ({huge_runs[0]['sent']:,} and "
        f"{big_runs[0]['sent']:,} messages); the {huge:,}-member runs took "
        f"{min(walls):.0f}-{max(walls):.0f} s wall in all"
    )
    return [memory, per_message]


def _publish_over_smtp(site: Site, folder: Path, port: int, connections: int) -> float:
    """Messages a second of a real ``policyfeed publish`` through the sink at ``port``."""
    import subprocess

    import run

    fresh = site.copy_to(folder)
    env = run.bench_env()
    env.update(
        POLICYFEED_SMTP_HOST="127.0.0.1",
        POLICYFEED_SMTP_PORT=str(port),
        POLICYFEED_SMTP_SECURITY="none",
        POLICYFEED_SMTP_CONNECTIONS=str(connections),
    )
    done = subprocess.run(
        fresh.command("publish", "--json"),
        cwd=fresh.folder,
        env=env,
        capture_output=True,
        timeout=run.COMMAND_TIMEOUT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"publish exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    report = json.loads(done.stdout)
    everyone = site.dataset.active_subscribers
    if report.get("status") != "sent" or report.get("recipients") != everyone:
        raise RuntimeError(f"publish did not deliver the issue to all {everyone}: {report}")
    shutil.rmtree(folder, ignore_errors=True)
    return float(report["sent"]) / float(report["delivery_duration"])


def figure_smtp_connections(ws: Workspace) -> Figure:
    import bench_smtp
    import run

    sizes = ws.sizes
    members, delay = sizes.smtp_far_members, 0.02
    figure = run.Figure(
        "smtp-connections",
        f"`policyfeed publish` over SMTP with `smtp.connections = 8`, {members:,} members, "
        f"a relay that answers {delay * 1000:.0f} ms late (delivery throughput)",
        "the same with one connection",
        "msg/s",
        limit=6,
        higher_is_better=True,
    )
    site = ws.site(sizes.small_posts, members, tag="smtp")
    folder = ws.root / "smtp-run"
    with bench_smtp.local_sink(delay) as port:
        figure.settle(
            *run.paired(
                lambda: _publish_over_smtp(site, folder, port, 8),
                lambda: _publish_over_smtp(site, folder, port, 1),
                sizes.smtp_far_runs,
            )
        )
    figure.note = (
        f"a sink in a child process (bench_smtp.py) whose every reply waits {delay * 1000:.0f} "
        "ms; a real run (whole process) from a fresh copy each time; throughput = messages / "
        "the run's delivery_duration (with opening the connections); higher is better"
    )
    return figure


if __name__ == "__main__":
    sys.exit("run it through benchmarks/run.py --only outbox,biglist")
