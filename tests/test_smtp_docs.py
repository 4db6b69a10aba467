"""docs/smtp.md stays in step with the code: its configuration loads, its defaults are true."""

from __future__ import annotations

import re
from pathlib import Path

from policyfeed.config import Settings, load_settings
from policyfeed.delivery.smtp import BACKOFF_SECONDS

DOC = Path(__file__).resolve().parent.parent / "docs" / "smtp.md"


def test_the_documented_configuration_loads(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    config = tmp_path / "policyfeed.toml"
    config.write_text(block.group(1), encoding="utf-8")
    settings = load_settings(config, environ={})
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == (
        "smtp.example.org",
        587,
        "starttls",
    )
    assert settings.smtp_rate_limit == 10
    # The values shown are the defaults, as the comments say.
    assert settings.smtp_timeout == Settings().smtp_timeout
    assert settings.smtp_retries == Settings().smtp_retries
    assert settings.smtp_connections == Settings().smtp_connections == 1


def test_the_documented_backoff_is_the_real_one() -> None:
    assert f"({BACKOFF_SECONDS:g} s, {2 * BACKOFF_SECONDS:g} s" in DOC.read_text(encoding="utf-8")
