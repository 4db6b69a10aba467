"""A short POLICYFEED_SECRET is refused wherever the secret is read: with "abc" every
unsubscribe, confirmation and preferences link was signed with a key anyone could guess."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policyfeed.audience.subscribers import unsubscribe_secret
from policyfeed.check.report import Report
from policyfeed.check.settings import check_settings
from policyfeed.cli import App, cli
from policyfeed.config import MIN_SECRET_LENGTH, Settings
from policyfeed.delivery.smtp import SmtpTransport
from policyfeed.errors import ConfigError
from policyfeed.web.app import SiteApp

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOO_SHORT = "x" * (MIN_SECRET_LENGTH - 1)
LONG_ENOUGH = "x" * MIN_SECRET_LENGTH
REFUSAL = (
    f"POLICYFEED_SECRET is too short ({{n}} characters): it must be at least "
    f"{MIN_SECRET_LENGTH} characters"
)


def test_the_minimum_is_sixteen_characters() -> None:
    assert MIN_SECRET_LENGTH == 16


@pytest.mark.parametrize("secret", ["abc", TOO_SHORT])
def test_the_unsubscribe_secret_refuses_a_short_key(settings: Settings, secret: str) -> None:
    with pytest.raises(ConfigError) as raised:
        unsubscribe_secret(dataclasses.replace(settings, secret=secret))
    assert str(raised.value).startswith(REFUSAL.format(n=len(secret)))
    assert "\n" not in str(raised.value)


def test_the_unsubscribe_secret_takes_a_key_of_the_minimum_length(settings: Settings) -> None:
    assert unsubscribe_secret(dataclasses.replace(settings, secret=LONG_ENOUGH)) == LONG_ENOUGH


def test_the_web_app_refuses_to_start_with_a_short_key(settings: Settings, tmp_path: Path) -> None:
    short = dataclasses.replace(settings, secret="abc")
    with pytest.raises(ConfigError, match="POLICYFEED_SECRET is too short"):
        SiteApp(short, tmp_path / "posts.db", tmp_path / "public")
    # Not even in the demo mode: a secret that is set is the one the links are checked with.
    with pytest.raises(ConfigError, match="POLICYFEED_SECRET is too short"):
        SiteApp(short, tmp_path / "posts.db", tmp_path / "public", demo=True)


def test_the_smtp_transport_refuses_a_short_key() -> None:
    relay = dataclasses.replace(Settings(), smtp_host="127.0.0.1", secret="abc")
    with pytest.raises(ConfigError, match="POLICYFEED_SECRET is too short"):
        SmtpTransport(relay)


def test_check_reports_a_short_key_as_an_error(settings: Settings) -> None:
    report = Report()
    check_settings(report, dataclasses.replace(settings, secret="abc"))
    found = [f for f in report.findings if f.file == "POLICYFEED_SECRET"]
    assert [(f.level, f.what.split(":")[0]) for f in found] == [
        ("error", f"too short (3 characters, at least {MIN_SECRET_LENGTH})")
    ]


@pytest.fixture
def site(
    tmp_path: Path, demo_db_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> Path:
    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    monkeypatch.setattr(App, "now", lambda self: now)
    return tmp_path


def run(secret: str, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", "policyfeed.toml", *args], env={"POLICYFEED_SECRET": secret}
    )


@pytest.mark.parametrize(
    "command", [("publish",), ("serve", "--port", "0"), ("bounces", "process", "inbox")]
)
def test_the_cli_refuses_a_short_key_in_one_line_exit_1(site: Path, command: tuple[str]) -> None:
    (site / "inbox").mkdir()
    # A real process with a timeout: a serve that wrongly starts must not hang the run.
    done = subprocess.run(
        [str(BIN / "policyfeed"), "--config", "policyfeed.toml", *command],
        env={**os.environ, "POLICYFEED_SECRET": "abc"},
        cwd=site,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("Error: " + REFUSAL.format(n=3)), done.stderr
    assert done.stderr.count("\n") == 1
    assert "secrets.token_urlsafe(32)" in done.stderr
    assert done.stdout == ""
    assert not (site / "outbox" / "new").exists() or not any((site / "outbox" / "new").iterdir())


def test_publish_takes_a_key_of_the_minimum_length(site: Path) -> None:
    result = run(LONG_ENOUGH, "publish")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("sent: issue 1")
