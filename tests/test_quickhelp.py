"""A bare ``policyfeed --help`` is printed without click, and is byte for byte what click prints:
at every terminal width, through a terminal or a pipe, and with click's behaviour kept where it
differs (a closed pipe, shell completion, errors)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import click
import pytest

from policyfeed.cli import COMMANDS, cli, quickhelp
from policyfeed.cli.root import LazyCommands

#: Runs the command line as the console script does (``policyfeed.cli.main``).
FAST = [sys.executable, "-c", "import sys; from policyfeed.cli import main; sys.exit(main())"]
#: Runs the same arguments through click alone.
CLICK = [sys.executable, "-c", "import sys; from policyfeed.cli.root import run; sys.exit(run())"]


def env_with(columns: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = columns
    return {**env, **extra}


def clicks_root_help(monkeypatch: pytest.MonkeyPatch) -> str:
    """The root help as click renders it for a bare ``policyfeed --help``: no command loaded
    (other tests in this process may have loaded them), so the list comes from the table."""
    monkeypatch.setattr(cli, "commands", LazyCommands(COMMANDS))
    with click.Context(cli, info_name="policyfeed") as ctx:
        return ctx.get_help()


COLUMN_VALUES = [None, "", "0", "-1", "wide", *(str(n) for n in range(1, 131))]


@pytest.mark.parametrize("columns", COLUMN_VALUES)
def test_the_root_help_is_clicks_at_every_width(
    columns: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert quickhelp.help_width() == click.HelpFormatter().width
    assert quickhelp.render_root_help(quickhelp.help_width()) == clicks_root_help(monkeypatch)


@pytest.mark.parametrize("columns", [None, "40", "64", "80", "200", "x"])
def test_the_console_script_prints_clicks_bytes_without_importing_click(
    columns: str | None,
) -> None:
    probe = "; print(sorted(m for m in sys.modules if m.split('.')[0] == 'click'), file=sys.stderr)"
    fast = subprocess.run(
        [*FAST[:2], FAST[2].replace("sys.exit(main())", "main()" + probe), "--help"],
        capture_output=True,
        env=env_with(columns),
        check=False,
    )
    slow = subprocess.run([*CLICK, "--help"], capture_output=True, env=env_with(columns))
    assert (fast.returncode, slow.returncode) == (0, 0)
    assert fast.stdout == slow.stdout
    assert fast.stderr == b"[]\n"
    assert fast.stdout.startswith(b"Usage: policyfeed [OPTIONS] COMMAND [ARGS]...\n")


def read_through_terminal(command: list[str], columns: int) -> tuple[int, bytes]:
    """Exit code and output of ``command`` with its stdout on a terminal ``columns`` wide."""
    leader, follower = pty.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        done = subprocess.run(
            command, stdout=follower, stderr=subprocess.PIPE, env=env_with(None), timeout=60
        )
        os.close(follower)
        follower = -1
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            output += chunk
        return done.returncode, output
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


@pytest.mark.parametrize("columns", [52, 66, 120])
def test_on_a_terminal_the_width_is_the_terminals_as_with_click(columns: int) -> None:
    fast = read_through_terminal([*FAST, "--help"], columns)
    slow = read_through_terminal([*CLICK, "--help"], columns)
    assert fast == slow
    assert fast[0] == 0
    # The option and command lists are wrapped to the terminal (the examples are not).
    lists = fast[1].decode().partition("Options:")[2].splitlines()
    assert max(len(line) for line in lists) <= min(columns, 80) - 2
    assert read_through_terminal([*FAST, "--help"], 80)[1] != fast[1] or columns >= 80


def test_a_closed_pipe_ends_quietly_with_exit_code_1_as_with_click() -> None:
    results = []
    for command in (FAST, CLICK):
        reader, writer = os.pipe()
        os.close(reader)
        try:
            done = subprocess.run(
                [*command, "--help"], stdout=writer, stderr=subprocess.PIPE, timeout=60
            )
        finally:
            os.close(writer)
        results.append((done.returncode, done.stderr))
    assert results[0] == results[1] == (1, b"")


def test_shell_completion_still_goes_through_click() -> None:
    env = env_with(None, _POLICYFEED_COMPLETE="bash_source")
    fast = subprocess.run([*FAST, "--help"], capture_output=True, env=env, timeout=60)
    slow = subprocess.run([*CLICK, "--help"], capture_output=True, env=env, timeout=60)
    assert fast.returncode == slow.returncode == 0
    assert fast.stdout == slow.stdout
    assert b"_POLICYFEED_COMPLETE" in fast.stdout  # the completion script, not the help


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["biuld"], 2, b"No such command 'biuld'. Did you mean 'build'?"),
        (["--help", "biuld"], 0, b"Usage: policyfeed [OPTIONS] COMMAND [ARGS]..."),
        (["build", "--help"], 0, b"Usage: policyfeed build [OPTIONS]"),
        (["--hlep"], 2, b"Did you mean '--help'?"),
        (["--version"], 0, b"policyfeed, version"),
    ],
)
def test_everything_but_a_bare_help_is_clicks(args: list[str], code: int, message: bytes) -> None:
    fast = subprocess.run([*FAST, *args], capture_output=True, env=env_with(None), timeout=60)
    slow = subprocess.run([*CLICK, *args], capture_output=True, env=env_with(None), timeout=60)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        slow.returncode,
        slow.stdout,
        slow.stderr,
    )
    assert fast.returncode == code
    assert message in fast.stdout + fast.stderr


def test_text_that_is_not_ascii_is_left_to_click(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """click decides how to write what the terminal's encoding cannot take; we do not guess."""
    monkeypatch.setattr(quickhelp, "render_root_help", lambda width: "Usage: policyfeed \u2026")
    assert quickhelp.print_root_help() is False
    assert capsys.readouterr().out == ""


def test_a_word_longer_than_the_line_is_cut_as_click_cuts_it() -> None:
    """Where the line ends, as click does, not at a hyphen as the standard library would (a
    narrow terminal puts such words in the option column: POLICYFEED_CONFIG; is one)."""
    import textwrap

    text = "12-34-56-78-90-12-34 word"
    ours = quickhelp.wrap_text(text, 10)
    assert ours == click.wrap_text(text, 10, preserve_paragraphs=True)
    assert ours != textwrap.fill(text, 10)
