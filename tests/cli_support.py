"""The CLI as a test drives it in a demo site folder (the ``cli_site`` fixture): the shipped
``policyfeed.toml`` and a fresh demo ``posts.db`` in the test's working folder."""

from __future__ import annotations

from click.testing import CliRunner, Result

from policyfeed.cli import cli


def run(*args: str) -> Result:
    """``policyfeed --db posts.db --config policyfeed.toml ARGS`` in the working folder."""
    return CliRunner().invoke(cli, ["--db", "posts.db", "--config", "policyfeed.toml", *args])
