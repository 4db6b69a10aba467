"""``policyfeed --help`` without importing click, which alone takes twice as long as Python's
own start. The text is the one click renders for the root group, byte for byte: the same
strings (:mod:`policyfeed.cli.table`: the root's help, its options' help, the commands' first
paragraphs) laid out by the same steps as ``click.HelpFormatter``, at the width click takes.
tests/test_quickhelp.py compares the two at every width, so a change to the root group or to
click that this module does not follow fails there.
"""

from __future__ import annotations

import os
import sys
import textwrap

# click's own strings, translated as click translates them; not named _ so that `make catalogs`
# does not take them for the site's.
from gettext import gettext as click_text

from policyfeed.cli.table import (
    COMMANDS,
    CONFIG_HELP,
    DB_HELP,
    DEFAULT_DB_NAME,
    ROOT_HELP,
    VERBOSE_HELP,
)

#: What click prints after ``Usage: policyfeed`` for a group.
USAGE_ARGS = "[OPTIONS] COMMAND [ARGS]..."


def root_options() -> list[tuple[str, str]]:
    """The Options rows, in click's order: --version is declared last, so it comes first."""
    default = click_text("default: {default}").format(default=DEFAULT_DB_NAME)
    return [
        ("--version", click_text("Show the version and exit.")),
        ("--db FILE", f"{DB_HELP}  [{default}]"),
        ("--config FILE", CONFIG_HELP),
        ("-v, --verbose", VERBOSE_HELP),
        ("--help", click_text("Show this message and exit.")),
    ]


def help_width() -> int:
    """The width ``click.HelpFormatter`` takes: the terminal's columns less 2, from 50 to 78."""
    return max(min(_terminal_columns(), 80) - 2, 50)


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil (another tenth of
    Python's start): COLUMNS if it is a positive number, else the terminal's, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 80
    return columns


class _Wrapper(textwrap.TextWrapper):
    """click's TextWrapper on plain text: a word longer than the line is cut where the line
    ends (the standard library's looks for a hyphen first)."""

    def _handle_long_word(
        self, reversed_chunks: list[str], cur_line: list[str], cur_len: int, width: int
    ) -> None:
        space_left = max(width - cur_len, 1)
        if self.break_long_words:
            last = reversed_chunks[-1]
            cur_line.append(last[:space_left])
            reversed_chunks[-1] = last[space_left:]
        elif not cur_line:
            cur_line.append(reversed_chunks.pop())


def wrap_text(text: str, width: int, indent: str = "", subsequent: str = "") -> str:
    """``click.formatting.wrap_text(..., preserve_paragraphs=True)``: paragraphs rewrapped,
    a paragraph that starts with a ``\\b`` line kept as it is, each indented as its first line."""
    wrapper = _Wrapper(
        width, initial_indent=indent, subsequent_indent=subsequent, replace_whitespace=False
    )
    paragraphs: list[tuple[int, bool, str]] = []
    lines: list[str] = []
    first_indent: int | None = None

    def flush() -> None:
        if lines:
            if lines[0].strip() == "\b":
                paragraphs.append((first_indent or 0, True, "\n".join(lines[1:])))
            else:
                paragraphs.append((first_indent or 0, False, " ".join(lines)))
            lines.clear()

    for line in text.expandtabs().splitlines():
        if not line:
            flush()
            first_indent = None
            continue
        if first_indent is None:
            stripped = line.lstrip()
            first_indent = len(line) - len(stripped)
            line = stripped
        lines.append(line)
    flush()

    out = []
    for extra, raw, paragraph in paragraphs:
        wrapper.initial_indent = indent + " " * extra
        wrapper.subsequent_indent = subsequent + " " * extra
        if raw:
            out.append(
                "\n".join(
                    (wrapper.subsequent_indent if i else wrapper.initial_indent) + line
                    for i, line in enumerate(paragraph.splitlines())
                )
            )
        else:
            out.append(wrapper.fill(paragraph))
    return "\n\n".join(out)


def short_help(text: str, limit: int) -> str:
    """``Command.get_short_help_str(limit)`` of a command whose help is ``text``: the first
    sentence of the first paragraph, shortened to ``limit`` with "..."."""
    words = text.partition("\n\n")[0].split()
    if words and words[0] == "\b":
        words = words[1:]
    if not words:
        return ""
    last = len(words) - 1
    for i, word in enumerate(words):
        if word.endswith(".") and (i == last or not words[i + 1][0].islower()):
            words = words[: i + 1]
            break
    joined = " ".join(words)
    if len(joined) <= limit:
        return joined.strip()
    if limit < len("..."):
        return "..."
    return textwrap.shorten(joined, limit, placeholder="...", break_on_hyphens=False).strip()


class _Formatter:
    """The parts of ``click.HelpFormatter`` the root help uses, for text without ANSI codes."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.indent = 0
        self.buffer: list[str] = []

    def write_usage(self, prog: str, args: str) -> None:
        prefix = f"{click_text('Usage:')} "
        usage_prefix = f"{prefix:>{self.indent}}{prog} "
        text_width = self.width - self.indent
        if text_width >= len(usage_prefix) + 20:
            pad = " " * len(usage_prefix)
            self.buffer.append(
                _Wrapper(
                    text_width,
                    initial_indent=usage_prefix,
                    subsequent_indent=pad,
                    replace_whitespace=False,
                ).fill(args)
            )
        else:
            pad = " " * (max(self.indent, len(prefix)) + 4)
            self.buffer.append(f"{usage_prefix}\n")
            self.buffer.append(
                _Wrapper(
                    text_width, initial_indent=pad, subsequent_indent=pad, replace_whitespace=False
                ).fill(args)
            )
        self.buffer.append("\n")

    def write_paragraph(self) -> None:
        if self.buffer:
            self.buffer.append("\n")

    def write_text(self, text: str) -> None:
        pad = " " * self.indent
        self.buffer.append(wrap_text(text, self.width, pad, pad))
        self.buffer.append("\n")

    def write_section(self, heading: str, rows: list[tuple[str, str]]) -> None:
        """``with formatter.section(heading): formatter.write_dl(rows)``."""
        self.write_paragraph()
        self.buffer.append(f"{'':>{self.indent}}{heading}:\n")
        self.indent += 2
        first_col = min(max(len(first) for first, _ in rows), 30) + 2
        for first, second in rows:
            self.buffer.append(f"{'':>{self.indent}}{first}")
            if not second:
                self.buffer.append("\n")
                continue
            if len(first) <= first_col - 2:
                self.buffer.append(" " * (first_col - len(first)))
            else:
                self.buffer.append("\n" + " " * (first_col + self.indent))
            lines = wrap_text(second, max(self.width - first_col - 2, 10)).splitlines()
            if lines:
                self.buffer.append(f"{lines[0]}\n")
                for line in lines[1:]:
                    self.buffer.append(f"{'':>{first_col + self.indent}}{line}\n")
            else:
                self.buffer.append("\n")
        self.indent -= 2


def render_root_help(width: int) -> str:
    """What click's ``policyfeed --help`` shows at that formatter width (without the final
    newline, like ``Context.get_help``)."""
    formatter = _Formatter(width)
    formatter.write_usage("policyfeed", USAGE_ARGS)
    formatter.write_paragraph()
    formatter.indent += 2
    formatter.write_text(ROOT_HELP)
    formatter.indent -= 2
    formatter.write_section(click_text("Options"), root_options())
    limit = width - 6 - max(len(name) for name in COMMANDS)
    commands = [(name, short_help(COMMANDS[name][1], limit)) for name in sorted(COMMANDS)]
    formatter.write_section(click_text("Commands"), commands)
    return "".join(formatter.buffer).rstrip("\n")


def print_root_help() -> bool:
    """Print the root help as ``click.echo`` would; False (nothing printed) if the text is not
    plain ASCII, where click's handling of the terminal's encoding and styles would matter."""
    text = render_root_help(help_width())
    if not text.isascii():
        return False
    try:
        sys.stdout.write(f"{text}\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # As click does: the reader went away (``| head``); quiet, exit code 1.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        sys.exit(1)
    return True
