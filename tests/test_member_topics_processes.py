"""A real ``publish`` process killed mid-delivery, members changing their topics before the next
run: each member still gets exactly one message, holding the variant frozen for them when
delivery began."""

from __future__ import annotations

import email
import signal
import sqlite3
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest

from test_publish_processes import TIMEOUT, cli, environment, helper, outbox

ROOT = Path(__file__).resolve().parent.parent
TITLES = {
    "itu": "ITU Council sends OTT",
    "ietf": "IETF 84 in Vancouver",
    "beijing": "The Beijing Treaty",
    "wcit": "Preparing for WCIT",
    "acta": "ACTA and the TPPA",
}


@pytest.fixture
def site(tmp_path: Path, demo_db_path: Path) -> Path:
    import shutil

    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    return tmp_path


def policyfeed(site: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "policyfeed", "--db", "posts.db", "--config", "policyfeed.toml",
         *args],
        cwd=site, env=environment(), capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def posts_of(site: Path) -> dict[str, set[str]]:
    """Recipient → which demo posts their message holds (one message each, or the test fails)."""
    found: dict[str, set[str]] = {}
    for folder in ("new", "cur"):
        for path in sorted((site / "outbox" / folder).glob("*")):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            address = message["To"].addresses[0].addr_spec
            assert address not in found, f"two messages for {address}"
            text = " ".join(str(message.get_body(("plain",)).get_content()).split())  # type: ignore[union-attr]
            found[address] = {key for key, title in TITLES.items() if title in text}
    return found


@pytest.mark.parametrize("point", [("at-handoff", "2"), ("after-write", "3"), ("before-send", "1")])
def test_a_killed_run_resumed_after_members_changed_topics_sends_each_the_frozen_variant(
    site: Path, point: tuple[str, str]
) -> None:
    policyfeed(site, "subscribers", "topics", "sam.taylor@example.org", "--topic", "ietf")
    policyfeed(
        site, "subscribers", "topics", "zoe.muller@example.org", "--topic", "Trade agreements"
    )
    killed = helper(site, "kill", *point)
    killed.communicate(timeout=TIMEOUT)
    assert killed.returncode == -signal.SIGKILL
    # Before the next run, everyone changes their mind.
    policyfeed(site, "subscribers", "topics", "sam.taylor@example.org", "--topic", "itu-wcit")
    policyfeed(site, "subscribers", "topics", "zoe.muller@example.org", "--reset")
    policyfeed(site, "subscribers", "topics", "ana.silva@example.org", "--topic", "ietf")
    policyfeed(site, "subscribers", "topics", "policy-watch@example.org", "--topic", "ietf")
    again = cli(site)
    assert again.returncode == 0, again.stderr
    assert posts_of(site) == {
        "ana.silva@example.org": {"itu", "wcit"},
        "zoe.muller@example.org": {"acta"},
        "chen.wei@example.org": {"ietf", "beijing", "acta"},
        "sam.taylor@example.org": {"ietf"},
        "policy-watch@example.org": set(TITLES),
    }
    with sqlite3.connect(site / "posts.db") as conn:
        statuses = conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status")
        assert dict(statuses.fetchall()) == {"sent": 5}
    assert sorted(outbox(site).values()) == sorted(posts_of(site))
