"""`bounces process` against an IMAP server it cannot reach says so and exits 75 (try again
later): it used to print ``partial: 0 message(s) …`` as if it had read part of the mailbox."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner, Result

from bounce_support import SECRET
from policyfeed.audience.bounce_processing import process_mailbox
from policyfeed.audience.mailboxes import ImapMailbox
from policyfeed.cli import cli
from policyfeed.config import Settings
from policyfeed.errors import EXIT_TEMPFAIL, TemporaryError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield int(listener.getsockname()[1])


def process(db_path: Path, tmp_path: Path, url: str, *extra: str) -> Result:
    config = tmp_path / "policyfeed.toml"
    shutil.copyfile(ROOT / "policyfeed.toml", config)
    env = {"POLICYFEED_SECRET": SECRET, "POLICYFEED_IMAP_PASSWORD": "a password"}
    return CliRunner().invoke(
        cli, ["--db", str(db_path), "--config", str(config), "bounces", "process", url, *extra],
        env=env,
    )  # fmt: skip


def bounce_rows(db_path: Path) -> int:
    db = sqlite_utils.Database(db_path)
    try:
        return int(db.execute("SELECT count(*) FROM bounces").fetchone()[0])
    finally:
        db.conn.close()


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_a_refused_connection_says_it_could_not_connect_and_exits_75(
    demo_db_path: Path, tmp_path: Path, closed_port: int, scheme: str
) -> None:
    before = bounce_rows(demo_db_path)
    result = process(demo_db_path, tmp_path, f"{scheme}://bounces@127.0.0.1:{closed_port}/INBOX")
    assert result.exit_code == EXIT_TEMPFAIL, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: cannot connect to the IMAP server 127.0.0.1:{closed_port}: Connection refused\n"
    )
    assert bounce_rows(demo_db_path) == before


def test_a_refused_connection_in_json_is_an_error_with_exit_75(
    demo_db_path: Path, tmp_path: Path, closed_port: int
) -> None:
    url = f"imaps://bounces@127.0.0.1:{closed_port}/INBOX"
    result = process(demo_db_path, tmp_path, url, "--json")
    assert result.exit_code == EXIT_TEMPFAIL
    assert json.loads(result.stdout) == {
        "status": "error",
        "error": f"cannot connect to the IMAP server 127.0.0.1:{closed_port}: Connection refused",
        "exit_code": EXIT_TEMPFAIL,
    }


def test_a_server_that_never_answers_times_out_as_a_temporary_failure(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, silent_port: int
) -> None:
    mailbox = ImapMailbox(
        host="127.0.0.1", port=silent_port, security="tls", username="bounces",
        password="a password", folder="INBOX", ca_file=None, timeout=0.5,
    )  # fmt: skip
    with pytest.raises(TemporaryError) as raised:
        process_mailbox(demo_db, settings, mailbox, secret=SECRET, now=now)
    assert str(raised.value) == (
        f"cannot connect to the IMAP server 127.0.0.1:{silent_port}: timed out"
    )
