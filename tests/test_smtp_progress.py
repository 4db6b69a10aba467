"""The progress bar of long sends: on a terminal only, never with --json."""

from __future__ import annotations

import io

from policyfeed.cli.progress import sending_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_that_reaches_the_total() -> None:
    terminal = Terminal()
    with sending_progress(stream=terminal) as progress:
        assert progress is not None
        for done in range(1, 8):
            progress(done, 7)
    drawn = terminal.getvalue()
    assert "Sending" in drawn
    assert "7/7" in drawn


def test_no_bar_when_stderr_is_not_a_terminal() -> None:
    log = io.StringIO()
    with sending_progress(stream=log) as progress:
        assert progress is None
    assert log.getvalue() == ""


def test_no_bar_with_json_even_on_a_terminal() -> None:
    terminal = Terminal()
    with sending_progress(enabled=False, stream=terminal) as progress:
        assert progress is None
    assert terminal.getvalue() == ""


def test_nothing_is_drawn_when_nothing_is_sent() -> None:
    terminal = Terminal()
    with sending_progress(stream=terminal):
        pass
    assert terminal.getvalue() == ""
