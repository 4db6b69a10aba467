"""Every command explains itself: help text with an example, and a mention in the README."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from policyfeed.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def walk(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        yield path
        if isinstance(command, click.Group):
            yield from walk(command, path)


COMMANDS = list(walk(cli))


def resolve(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.commands.get(name)
        assert found is not None, path
        command = found
    return command


def test_the_contracted_commands_exist() -> None:
    names = {" ".join(p) for p in COMMANDS}
    for expected in (
        "init", "build", "serve", "publish", "chapters add", "chapters list",
        "posts add", "posts list", "posts show", "posts edit", "posts publish",
        "posts unpublish", "posts remove", "posts search", "posts import",
        "issue new", "issue list", "issue show", "issue preview", "issue render",
        "issue send-test", "subscribers add", "subscribers import", "subscribers list",
        "subscribers remove", "subscribers unsubscribe", "subscribers export",
    ):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    command = resolve(path)
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert command.help, f"{' '.join(path)} has no help text"
    # Groups too: the README promises an example in every --help.
    assert "Example:" in command.help, f"{' '.join(path)} has no Example: block"


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_is_in_the_readme(path: tuple[str, ...]) -> None:
    command = resolve(path)
    if len(path) == 1:
        assert f"  {path[0]}" in README or f"policyfeed {path[0]}" in README, path
    else:
        group, name = path[-2], path[-1]
        listed = any(
            line.strip().startswith(group) and name in line.replace("|", " ").split()
            for line in README.splitlines()
        )
        assert listed or f"{group} {name}" in README, f"README does not name {' '.join(path)}"
    assert command.name == path[-1]


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    from policyfeed.config import PREFIXED, SECTIONS, SOURCE_KEYS

    rows = {
        line.split("|")[1].strip(" `[]"): line
        for line in README.splitlines()
        if line.startswith("| `[")
    }
    assert set(rows) == {*SECTIONS, "sources"}  # [[sources]]: a table per feed to sync
    for section, names in SECTIONS.items():
        for name in names:
            key = name.removeprefix(f"{section}_") if section in PREFIXED else name
            assert f"`{key}`" in rows[section], f"README does not list [{section}] {key}"
    assert rows["sources"].startswith("| `[[sources]]`")
    for key in SOURCE_KEYS:
        assert f"`{key}`" in rows["sources"], f"README does not list [[sources]] {key}"
