"""SMTP delivery: SmtpTransport against a bare smtplib loop, same messages, same local sink.

The sink is aiosmtpd in a child process (so it does not compete with the sender for the GIL),
on 127.0.0.1 at a port the OS picks. Each run sends every message over one connection, first
with one sender then the other (the order alternates between runs); the figure is the ratio of
the medians of their throughputs (target: SmtpTransport at least 0.9x the bare loop).

    .venv/bin/python benchmarks/bench_smtp.py [--messages 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import smtplib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SENDER = "digest@bench.example.org"
TARGET = 0.9

# Started with `python -c`: prints its port, then accepts and discards mail until killed.
_SINK = """
import asyncio, sys
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(), hostname="sink.bench", enable_SMTPUTF8=True, loop=loop),
        "127.0.0.1", 0,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

# A relay far away: every reply (argv[1] seconds late) in one write, the message data read to
# its final dot in one go and dropped. A few lines of asyncio rather than aiosmtpd, whose
# line-by-line parsing would make the sink's CPU, not the distance, what is measured.
_FAR_SINK = """
import asyncio, socket, sys

DELAY = float(sys.argv[1])
EHLO = b"250-sink.bench\\r\\n250-8BITMIME\\r\\n250-SMTPUTF8\\r\\n250 SIZE 100000000\\r\\n"

async def session(reader, writer):
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def reply(text):
        await asyncio.sleep(DELAY)
        writer.write(text)
        await writer.drain()

    await reply(b"220 sink.bench ready\\r\\n")
    try:
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                await reply(EHLO)
            elif verb == b"DATA":
                await reply(b"354 go ahead\\r\\n")
                await reader.readuntil(b"\\r\\n.\\r\\n")
                await reply(b"250 2.0.0 queued\\r\\n")
            elif verb == b"QUIT":
                await reply(b"221 bye\\r\\n")
                break
            else:
                await reply(b"250 2.0.0 ok\\r\\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(session, "127.0.0.1", 0, limit=2**26)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@contextmanager
def local_sink(delay: float | None = None) -> Iterator[int]:
    """A sink in a child process, yielding its port: aiosmtpd, or with ``delay`` a relay
    whose every reply comes that many seconds late."""
    code = _SINK if delay is None else _FAR_SINK
    child = subprocess.Popen(
        [sys.executable, "-c", code, *([] if delay is None else [str(delay)])],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError("the aiosmtpd sink did not start")
        yield int(line)
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


def make_messages(count: int, size: int = 24_000) -> list[tuple[str, bytes]]:
    """``count`` distinct digest-sized messages (quoted-printable-like lines), one per address."""
    line = b"A digest line of about seventy characters, as quoted-printable has it=\r\n"
    body = line * (size // len(line))
    messages = []
    for n in range(count):
        to = f"reader{n}@bench.example.org"
        head = (
            f"From: Digest <{SENDER}>\r\nTo: {to}\r\nSubject: Issue 1\r\n"
            f"Message-ID: <issue-1.sub-{n}@bench.example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        messages.append((to, head + body))
    return messages


def send_bare(port: int, messages: list[tuple[str, bytes]]) -> float:
    """Seconds for a plain smtplib loop over one connection (connect and QUIT included)."""
    start = time.perf_counter()
    conn = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.example.org", timeout=30)
    conn.ehlo()
    for to, message in messages:
        conn.sendmail(SENDER, [to], message)
    conn.quit()
    return time.perf_counter() - start


def send_transport(port: int, messages: list[tuple[str, bytes]]) -> float:
    """Seconds for SmtpTransport (as delivery uses it) over the same connection pattern."""
    from policyfeed.config import Settings
    from policyfeed.delivery.smtp import SmtpTransport

    settings = dataclasses.replace(
        Settings(base_url="https://bench.example.org/"),
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_timeout=30.0,
        secret="bench-secret-not-for-production",
    )
    start = time.perf_counter()
    transport = SmtpTransport(settings)
    for n, (to, message) in enumerate(messages):
        transport.send(message, sender=SENDER, recipient=to, message_id=f"issue-1.sub-{n}")
    transport.close()
    return time.perf_counter() - start


def compare(messages: int = 2_000, runs: int = 3) -> dict[str, Any]:
    """Throughput of SmtpTransport and of a bare smtplib loop, measured in the same run.

    Returns the per-run seconds, the median throughputs (messages/second), ``ratio``
    (SmtpTransport / bare, higher is better), ``target`` (0.9) and ``met``.
    """
    batch = make_messages(messages)
    ours: list[float] = []
    bare: list[float] = []
    with local_sink() as port:
        send_bare(port, batch[:20])  # warm up both paths and the sink
        send_transport(port, batch[:20])
        for run in range(runs):
            if run % 2:
                ours.append(send_transport(port, batch))
                bare.append(send_bare(port, batch))
            else:
                bare.append(send_bare(port, batch))
                ours.append(send_transport(port, batch))
    ours_rate = messages / statistics.median(ours)
    bare_rate = messages / statistics.median(bare)
    ratio = ours_rate / bare_rate
    return {
        "messages": messages,
        "message_bytes": len(batch[0][1]),
        "runs": runs,
        "transport_seconds": [round(s, 4) for s in ours],
        "smtplib_seconds": [round(s, 4) for s in bare],
        "transport_msgs_per_s": round(ours_rate, 1),
        "smtplib_msgs_per_s": round(bare_rate, 1),
        "ratio": round(ratio, 3),
        "target": TARGET,
        "met": ratio >= TARGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(compare(args.messages, args.runs), indent=2))


if __name__ == "__main__":
    main()
