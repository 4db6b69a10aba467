"""Message-IDs are stable for one issue and member (a resend reuses them, so the relay and the
mail client drop a second copy), and never repeat between two databases: an operator who makes
the database again and sends its issue 1 must not find the new issue dropped as a duplicate
of the old one by the members' mail programs (Gmail keeps the first message of an id)."""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cli_support import run
from policyfeed.cli import App

ROOT = Path(__file__).resolve().parent.parent


def message_ids(site: Path) -> set[str]:
    found = set()
    for path in (site / "outbox" / "new").iterdir():
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found.add(str(parsed["Message-ID"]))
    return found


def publish_in(
    folder: Path, pristine_demo_db: Path, at: datetime, monkeypatch: pytest.MonkeyPatch
) -> set[str]:
    folder.mkdir()
    shutil.copyfile(ROOT / "policyfeed.toml", folder / "policyfeed.toml")
    shutil.copyfile(pristine_demo_db, folder / "posts.db")
    monkeypatch.chdir(folder)
    monkeypatch.setattr(App, "now", lambda self: at)
    result = run("publish")
    assert result.exit_code == 0, result.output
    return message_ids(folder)


def test_the_same_issue_of_two_databases_has_different_message_ids(
    tmp_path: Path, pristine_demo_db: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICYFEED_SECRET", "s" * 32)
    first = publish_in(tmp_path / "first", pristine_demo_db, now, monkeypatch)
    again = publish_in(tmp_path / "again", pristine_demo_db, now + timedelta(hours=1), monkeypatch)
    assert len(first) == len(again) == 5
    assert not first & again
