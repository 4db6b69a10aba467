"""The kill test: real ``policyfeed publish`` processes delivering to a real SMTP relay (aiosmtpd
on 127.0.0.1), killed with SIGKILL at random moments, then recovered the way an operator would.

Counted for every run of kills: rows left unsure (``sending``) by a kill, and of those how many
the relay had in fact received; after recovery, members who got nothing (lost) and messages
that arrived twice (duplicated). Recovery is what the docs say: run ``publish`` again; for rows
it reports unsure, ``issue mark-sent`` those the relay's log shows, ``publish
--resend-ambiguous`` the others.

The default suite kills a small number of runs in the middle of their deliveries; the slow one
kills runs of the demo at uniformly random moments and measures the share of kills that leave an
unsure row (the environment variable ``KILL_TRIALS`` sets how many; the figures are printed).
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policyfeed.audience.subscribers import add_subscriber
from policyfeed.store import open_db
from smtp_server import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds: a bound for each process and wait, never a measurement
SEED = 20121203


@dataclass
class Tally:
    kills: int = 0  # SIGKILLs that hit a running publish
    missed: int = 0  # the run had ended before its kill came
    unsure_kills: int = 0  # kills that left at least one row `sending`
    unsure_rows: int = 0
    unsure_arrived: int = 0  # of those rows, how many the relay had in fact received
    lost: int = 0
    duplicated: int = 0

    def line(self) -> str:
        share = self.unsure_kills / self.kills if self.kills else 0.0
        return (
            f"{self.kills} kills ({self.missed} more came after the run ended): "
            f"{self.unsure_kills} left an unsure row ({share:.1%}), {self.unsure_rows} unsure "
            f"rows of which {self.unsure_arrived} had reached the relay; after recovery "
            f"{self.lost} lost, {self.duplicated} duplicated"
        )


def environment(relay: SmtpSink, connections: int = 1) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYFEED_")}
    env.update(relay.environ())
    env["POLICYFEED_SMTP_CONNECTIONS"] = str(connections)
    env["POLICYFEED_SECRET"] = "kill-test secret"
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "policyfeed", "--db", "posts.db", "--config",
            "policyfeed.toml", *args]  # fmt: skip


def run(site: Path, relay: SmtpSink, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), cwd=site, env=environment(relay), capture_output=True, text=True,
        timeout=TIMEOUT, check=False,
    )  # fmt: skip


def start(site: Path, relay: SmtpSink, connections: int = 1) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command("publish", "--json"), cwd=site, env=environment(relay, connections),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def kill(process: subprocess.Popen[bytes], tally: Tally) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=TIMEOUT)
    if process.returncode == -signal.SIGKILL:
        tally.kills += 1
    else:
        tally.missed += 1


def arrived_ids(relay: SmtpSink) -> Counter[str]:
    """Message-ID → how many times the relay accepted it."""
    with relay._lock:
        received = list(relay.messages)
    found: Counter[str] = Counter()
    for message in received:
        parsed = email.message_from_bytes(message.data, policy=email.policy.default)
        found[str(parsed["Message-ID"]).strip().strip("<>")] += 1
    return found


def rows(site: Path) -> dict[str, str]:
    """Message-ID → status of every delivery row."""
    with sqlite3.connect(site / "posts.db") as conn:
        return dict(conn.execute("SELECT message_id, status FROM deliveries").fetchall())


def note_unsure(site: Path, relay: SmtpSink, before: set[str], tally: Tally) -> set[str]:
    """Count the rows this kill left `sending`; returns every unsure row now."""
    unsure = {mid for mid, status in rows(site).items() if status == "sending"}
    new = unsure - before
    if new:
        tally.unsure_kills += 1
        tally.unsure_rows += len(new)
        got = arrived_ids(relay)
        tally.unsure_arrived += sum(1 for mid in new if got[mid])
    return unsure


def recover(site: Path, relay: SmtpSink) -> None:
    """What an operator does: publish until it is done, settling unsure rows by the relay's log."""
    for _ in range(6):  # a bound: each pass settles something
        result = run(site, relay, "publish", "--json")
        report = json.loads(result.stdout.splitlines()[-1])
        if result.returncode == 0:
            return
        if result.returncode == 75:
            continue
        assert result.returncode == 1 and report["status"] == "ambiguous", (
            result.stderr or result.stdout
        )
        got = arrived_ids(relay)
        issue = str(report["issue"])
        there = [u["message_id"] for u in report["unsure"] if got[u["message_id"]]]
        if there:
            marked = run(site, relay, "issue", "mark-sent", issue, *there)
            assert marked.returncode == 0, marked.stderr
        if len(there) < len(report["unsure"]):
            resent = run(site, relay, "publish", "--resend-ambiguous", "--json")
            assert resent.returncode in (0, 75), resent.stderr
    raise AssertionError("publish did not finish after recovery")


def count_outcome(site: Path, relay: SmtpSink, tally: Tally) -> None:
    ledger = rows(site)
    assert set(ledger.values()) <= {"sent", "skipped"}, ledger
    got = arrived_ids(relay)
    for message_id, status in ledger.items():
        if status == "sent":
            tally.lost += got[message_id] == 0
            tally.duplicated += max(0, got[message_id] - 1)
    assert set(got) <= set(ledger)  # nothing arrived that the ledger does not know


def new_site(folder: Path, demo_db_path: Path, extra_members: int = 0) -> Path:
    folder.mkdir(parents=True)
    shutil.copyfile(ROOT / "policyfeed.toml", folder / "policyfeed.toml")
    shutil.copyfile(demo_db_path, folder / "posts.db")
    if extra_members:
        db = open_db(folder / "posts.db")
        now = datetime.now(UTC).replace(microsecond=0)
        for n in range(extra_members):
            add_subscriber(db, f"member{n:03}@example.org", now=now, name=f"Member {n}")
        db.conn.close()
    return folder


def kill_after_first_arrival(
    relay: SmtpSink, process: subprocess.Popen[bytes], delay: float
) -> threading.Event:
    """SIGKILL the run ``delay`` seconds after the relay accepts its first message (timed from
    the relay's own thread, so the test's scheduling does not move the moment)."""
    fired = threading.Event()

    def arrived(received: object) -> None:
        if not fired.is_set():
            fired.set()
            relay.on_message = None
            threading.Timer(delay, lambda: process.poll() is None and process.kill()).start()

    relay.on_message = arrived
    return fired


@pytest.mark.parametrize("connections", [1, 8], ids=lambda n: f"connections-{n}")
def test_runs_killed_in_the_middle_of_their_deliveries_lose_nothing_and_double_nothing(
    tmp_path: Path, demo_db_path: Path, connections: int
) -> None:
    """Ten kills of one issue's delivery (150 members), each up to 20 ms after the run's first
    message arrived, so that they land between and inside hand-offs; each run resumes the
    last. With eight connections a kill can leave up to eight rows unsure."""
    chance = random.Random(SEED)
    site = new_site(tmp_path / "site", demo_db_path, extra_members=145)
    tally = Tally()
    with SmtpSink() as relay:
        unsure: set[str] = set()
        for _ in range(10):
            process = start(site, relay, connections)
            fired = kill_after_first_arrival(relay, process, chance.uniform(0, 0.02))
            process.wait(timeout=TIMEOUT)
            relay.on_message = None
            assert fired.is_set(), "the run delivered nothing"
            kill(process, tally)
            unsure = note_unsure(site, relay, unsure, tally)
        assert "pending" in rows(site).values()  # every kill came while there was work left
        recover(site, relay)
        count_outcome(site, relay, tally)
    print(tally.line())
    assert tally.kills == 10, tally.line()
    assert tally.unsure_rows == len(unsure) <= tally.kills * connections
    assert (tally.lost, tally.duplicated) == (0, 0), tally.line()


@pytest.mark.slow
def test_the_share_of_kills_at_random_moments_that_leave_an_unsure_row_is_small(
    tmp_path: Path, demo_db_path: Path
) -> None:
    """The demo (5 members), killed at a moment drawn uniformly over a whole run."""
    trials = int(os.environ.get("KILL_TRIALS", "60"))
    chance = random.Random(SEED)
    tally = Tally()
    durations = []
    for n in range(3):  # how long a whole publish of a fresh demo takes here, now
        with SmtpSink() as relay:
            site = new_site(tmp_path / f"baseline-{n}", demo_db_path)
            started = time.monotonic()
            assert run(site, relay, "publish").returncode == 0
            durations.append(time.monotonic() - started)
    whole = sorted(durations)[1]
    for trial in range(trials):
        with SmtpSink() as relay:
            site = new_site(tmp_path / f"trial-{trial}", demo_db_path)
            process = start(site, relay)
            time.sleep(chance.uniform(0, whole))
            kill(process, tally)
            note_unsure(site, relay, set(), tally)
            recover(site, relay)
            count_outcome(site, relay, tally)
        shutil.rmtree(site)
    print(f"whole run {whole:.2f} s; " + tally.line())
    # Most kills must hit a running publish, or the share below says nothing (it would hold
    # even if every kill came after its run had ended).
    assert tally.kills >= trials // 2, tally.line()
    assert (tally.lost, tally.duplicated) == (0, 0), tally.line()
    assert tally.unsure_kills < 0.05 * tally.kills, tally.line()
