"""The command line: parse, call one library function, print. Errors map to exit codes here.

Each command group lives in its own module, imported only when that command runs (or its help is
asked for): the root group and what every command shares are in :mod:`policyfeed.cli.root`, and
their names are importable from here (``from policyfeed.cli import App, cli``), loaded on first
use. This module imports neither click nor any command, so that a bare ``policyfeed --help``,
which :mod:`policyfeed.cli.quickhelp` prints from :mod:`policyfeed.cli.table` in click's layout,
starts almost as fast as Python does. Heavy libraries are imported inside the commands.
"""

from __future__ import annotations

import os
import sys

from policyfeed.cli.table import COMMANDS as COMMANDS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a tenth of the start)
if TYPE_CHECKING:
    from typing import Any

    from policyfeed.cli.root import App as App
    from policyfeed.cli.root import CliError as CliError
    from policyfeed.cli.root import busy_database as busy_database
    from policyfeed.cli.root import cli as cli
    from policyfeed.cli.root import echo_json as echo_json
    from policyfeed.cli.root import pass_app as pass_app
    from policyfeed.cli.root import pass_app_unchecked as pass_app_unchecked

#: What the root module defines that commands and tests import from ``policyfeed.cli``.
_FROM_ROOT = frozenset(
    {"App", "CliError", "busy_database", "cli", "echo_json", "pass_app", "pass_app_unchecked"}
)


def __getattr__(name: str) -> Any:
    """``policyfeed.cli.cli`` and the rest of :data:`_FROM_ROOT`, imported (with click) on first
    use."""
    if name in _FROM_ROOT:
        from policyfeed.cli import root

        value = getattr(root, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point. A bare ``policyfeed --help`` is printed without click (the
    same bytes: tests/test_quickhelp.py compares them with click's at every width); all else,
    shell completion included, goes through click."""
    if sys.argv[1:] == ["--help"] and not os.environ.get("_POLICYFEED_COMPLETE"):
        from policyfeed.cli.quickhelp import print_root_help

        if print_root_help():
            return
    from policyfeed.cli.root import run

    run()
