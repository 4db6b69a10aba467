"""`bounces process` against a real IMAP server: Debian's Dovecot on 127.0.0.1 with TLS (see
tests/imap_server.py), the way an operator points it at the bounce mailbox."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from bounce_support import SECRET, Sent, publish_week, returned, sent_messages, with_secret
from imap_server import DOVECOT, Dovecot
from policyfeed.cli import cli
from policyfeed.config import Settings

pytestmark = pytest.mark.skipif(
    DOVECOT is None, reason="needs Debian's dovecot-imapd (the dovecot binary); .ci/run installs it"
)

ROOT = Path(__file__).resolve().parent.parent
USER = "bounces"
WATCH, SAM, CHEN = "policy-watch@example.org", "sam.taylor@example.org", "chen.wei@example.org"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


@pytest.fixture
def mailbox_user(dovecot: Dovecot, request: pytest.FixtureRequest) -> str:
    """A user of its own for each test (a fresh, empty Maildir)."""
    return f"bounces-{abs(hash(request.node.nodeid)) % 10**8}"


@pytest.fixture
def sent(demo_db: sqlite_utils.Database, settings: Settings, now: datetime) -> dict[str, Sent]:
    live = with_secret(settings)
    publish_week(demo_db, live, now)
    return sent_messages(live)


def crlf(raw: bytes) -> bytes:
    """A message as IMAP stores it (CRLF line ends)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def config_for(tmp_path: Path, dovecot: Dovecot, *, ca: bool = True) -> Path:
    config = tmp_path / "policyfeed.toml"
    shutil.copyfile(ROOT / "policyfeed.toml", config)
    if ca:
        with config.open("a") as handle:
            handle.write(f'\n[bounces]\nimap_ca_file = "{dovecot.ca_file}"\n')
    return config


def process(db_path: Path, config: Path, url: str, *extra: str, password: str | None = None):
    env = {"POLICYFEED_SECRET": SECRET}
    if password is not None:
        env["POLICYFEED_IMAP_PASSWORD"] = password
    return CliRunner().invoke(
        cli, ["--db", str(db_path), "--config", str(config), "bounces", "process", url, *extra],
        env=env,
    )  # fmt: skip


def status_of(db_path: Path, address: str) -> str:
    db = sqlite_utils.Database(db_path)
    try:
        return str(
            db.execute("SELECT status FROM subscribers WHERE email = ?", [address]).fetchone()[0]
        )
    finally:
        db.conn.close()


@pytest.mark.parametrize("scheme", ["imaps", "imap"])
def test_bounces_are_read_over_tls_recorded_and_moved_to_their_folders(
    dovecot: Dovecot, mailbox_user: str, sent: dict[str, Sent], demo_db_path: Path,
    tmp_path: Path, scheme: str,
) -> None:  # fmt: skip
    user = f"{mailbox_user}-{scheme}"
    hard = returned("gmail-no-such-user.eml", sent[SAM])
    complaint = returned("arf-abuse.eml", sent[WATCH])
    vacation = returned("vacation-autoreply.eml", sent[CHEN])
    stray = returned("human-reply.eml", sent[CHEN])
    dovecot.deliver(user, hard, complaint, vacation, stray)
    port = dovecot.imaps_port if scheme == "imaps" else dovecot.imap_port
    url = f"{scheme}://{user}@127.0.0.1:{port}/INBOX"
    config = config_for(tmp_path, dovecot)

    result = process(demo_db_path, config, url, "--json", password=dovecot.password)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["messages"], report["hard"], report["complaint"]) == (4, 1, 1)
    assert (report["ignored"], report["unmatched"], report["suspended"]) == (1, 1, 1)
    assert report["source"] == f"IMAP {user}@127.0.0.1:{port}/INBOX"
    assert status_of(demo_db_path, SAM) == "bounced"
    assert status_of(demo_db_path, WATCH) == "unsubscribed"

    folders = dovecot.folder_messages(user)
    assert folders["INBOX"] == []
    assert sorted(folders["Processed"]) == sorted(map(crlf, [hard, complaint, vacation]))
    assert folders["Unmatched"] == [crlf(stray)]
    again = process(demo_db_path, config, url, "--json", password=dovecot.password)
    assert json.loads(again.output)["messages"] == 0


def test_without_move_the_messages_are_copied_then_expunged_and_a_rerun_records_nothing_twice(
    sent: dict[str, Sent], demo_db_path: Path, tmp_path: Path, mailbox_user: str
) -> None:
    with Dovecot(capabilities="IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS") as old_server:
        user = mailbox_user
        hard = returned("postfix-user-unknown.eml", sent["ana.silva@example.org"])
        old_server.deliver(user, hard)
        url = f"imaps://{user}@127.0.0.1:{old_server.imaps_port}/INBOX"
        config = config_for(tmp_path, old_server)
        first = process(demo_db_path, config, url, password=old_server.password)
        assert first.exit_code == 0, first.output
        assert "1 hard bounce(s)" in first.output
        assert old_server.folder_messages(user) == {"INBOX": [], "Processed": [crlf(hard)]}
        # A run stopped after recording but before moving leaves it in the inbox.
        old_server.deliver(user, hard)
        second = process(demo_db_path, config, url, "--json", password=old_server.password)
        report = json.loads(second.output)
        assert (report["messages"], report["already"], report["hard"]) == (1, 1, 0)
        assert old_server.folder_messages(user) == {
            "INBOX": [],
            "Processed": [crlf(hard), crlf(hard)],
        }
    db = sqlite_utils.Database(demo_db_path)
    assert db.execute("SELECT count(*) FROM bounces").fetchone()[0] == 1
    db.conn.close()


def test_a_wrong_password_an_untrusted_certificate_and_a_missing_password_exit_1(
    dovecot: Dovecot, mailbox_user: str, demo_db_path: Path, tmp_path: Path
) -> None:
    url = f"imaps://{mailbox_user}@127.0.0.1:{dovecot.imaps_port}/INBOX"
    wrong = process(demo_db_path, config_for(tmp_path, dovecot), url, password="not it")
    assert wrong.exit_code == 1
    assert f"refused the login for '{mailbox_user}'" in wrong.output
    assert "check the user and POLICYFEED_IMAP_PASSWORD" in wrong.output
    (tmp_path / "plain").mkdir()
    untrusted = process(
        demo_db_path, config_for(tmp_path / "plain", dovecot, ca=False), url,
        password=dovecot.password,
    )  # fmt: skip
    assert untrusted.exit_code == 1
    assert "TLS certificate not trusted" in untrusted.output
    missing = process(demo_db_path, config_for(tmp_path, dovecot), url)
    assert missing.exit_code == 1
    assert "needs POLICYFEED_IMAP_PASSWORD" in missing.output
    folder = process(
        demo_db_path, config_for(tmp_path, dovecot), url.replace("INBOX", "Nope"),
        password=dovecot.password,
    )  # fmt: skip
    assert folder.exit_code == 1
    assert "no such IMAP folder" in folder.output


def test_a_server_that_is_down_is_a_temporary_failure(demo_db_path: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "policyfeed.toml"
    shutil.copyfile(ROOT / "policyfeed.toml", config)
    result = process(demo_db_path, config, f"imaps://bounces@127.0.0.1:{port}/INBOX", password="x")
    assert result.exit_code == 75
    assert result.stdout == ""  # not "partial: 0 message(s)"
    assert result.stderr == (
        f"Error: cannot connect to the IMAP server 127.0.0.1:{port}: Connection refused\n"
    )
