"""The package's layout holds: stages as subpackages, no import circles, the store at the bottom.

Every import counts, at module level or inside a function (lazy imports keep ``--help`` fast, but
they are dependencies all the same), and those made only for type checking too.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "policyfeed"

# What each part of the package may import (besides itself and the package root, which holds
# only ``__version__``). The subpackages' docstrings say the same in words.
BASE = {"model", "errors"}
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "errors": set(),
    "output": set(),
    "wording": set(),
    "config": {"errors"},
    "schedule": {"errors"},
    "lock": {"errors"},
    "processes": set(),
    "store": {"model", "config", "errors"},
    "content": {*BASE, "config", "store"},
    "templating": {*BASE, "config", "content"},
    "audience": {*BASE, "config", "output", "templating", "store", "content"},
    "digest": {*BASE, "config", "output", "schedule", "templating", "store", "content", "audience"},
    "site": {*BASE, "config", "output", "processes", "templating", "store", "content", "digest"},
    "delivery": {*BASE, "config", "output", "processes", "store", "content", "audience", "digest"},
    # The preflight reads what site and digest produce; delivery's job starts after it.
    "check": {
        *BASE,
        "config",
        "output",
        "schedule",
        "templating",
        "store",
        "content",
        "audience",
        "digest",
        "site",
    },
}
#: Who may import the preflight: the two that run it.
CHECK_USERS = {"publish", "cli"}
# The top: they put the stages together and nothing imports them but each other.
TOP = {"publish", "web", "cli", "__main__"}
STAGES = ("content", "site", "digest", "delivery", "audience")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The policyfeed modules ``path`` imports (``from a import b`` is ``a.b`` when b is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import; use absolute ones"
            if node.module and node.module.split(".")[0] == "policyfeed":
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "policyfeed")
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, set(known)) for name, path in known.items()}


def part(module: str) -> str:
    """``policyfeed.site.feeds`` belongs to ``site``; the root package to ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_import_names_a_module_that_exists() -> None:
    known = set(modules())
    missing = sorted(
        f"{name} imports {dep}"
        for name, deps in graph().items()
        for dep in deps
        if dep not in known
    )
    assert missing == []


def test_no_module_imports_itself_back_through_others() -> None:
    assert cycles(graph()) == []


def test_the_store_imports_only_the_model_config_and_errors() -> None:
    allowed = {"policyfeed", "policyfeed.model", "policyfeed.config", "policyfeed.errors"}
    wrong = {
        name: sorted(d for d in deps if d not in allowed and part(d) != "store")
        for name, deps in graph().items()
        if part(name) == "store"
    }
    assert {name: deps for name, deps in wrong.items() if deps} == {}


def test_each_part_imports_only_the_parts_below_it() -> None:
    wrong = []
    for name, deps in sorted(graph().items()):
        own = part(name)
        if own in TOP or own == "":
            continue
        assert own in ALLOWED, f"{name}: a new part of the package; give it a row in ALLOWED"
        for dep in sorted(deps):
            other = part(dep)
            if other not in ("", own) and other not in ALLOWED[own]:
                wrong.append(f"{name} imports {dep}")
    assert wrong == []


def test_nothing_below_the_top_imports_the_top() -> None:
    wrong = [
        f"{name} imports {dep}"
        for name, deps in sorted(graph().items())
        if part(name) not in TOP
        for dep in sorted(deps)
        if part(dep) in TOP
    ]
    assert wrong == []


def test_only_publish_and_the_cli_import_the_check() -> None:
    wrong = [
        f"{name} imports {dep}"
        for name, deps in sorted(graph().items())
        if part(name) not in CHECK_USERS | {"check"}
        for dep in sorted(deps)
        if part(dep) == "check"
    ]
    assert wrong == []


@pytest.mark.parametrize("stage", [*STAGES, "check"])
def test_each_stage_is_a_package_that_says_what_it_owns_and_may_import(stage: str) -> None:
    init = PACKAGE / stage / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc, f"{stage}/__init__.py has no docstring"
    assert 2 <= len(doc.splitlines()) <= 3
    assert "Imports" in doc and "never" in doc


def test_the_flat_folder_is_gone() -> None:
    flat = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert flat == [
        "config", "errors", "lock", "model", "output", "processes", "publish", "schedule",
        "templating", "wording",
    ]  # fmt: skip


def test_the_documented_entry_points_still_work(tmp_path: Path) -> None:
    from policyfeed.web import make_app

    assert callable(make_app)
    done = subprocess.run(
        [sys.executable, "-m", "policyfeed", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: policyfeed" in done.stdout


def test_help_loads_no_stage() -> None:
    """``policyfeed --help`` stays as light as it was: the command modules import their stage
    inside the commands."""
    code = (
        "import sys, contextlib, io\n"
        "from policyfeed.cli import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--help'], prog_name='policyfeed')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('policyfeed'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout.split()
    assert [m for m in loaded if part(m) in STAGES or part(m) == "store"] == []


def test_help_imports_no_command_module() -> None:
    """``policyfeed --help`` lists the commands without importing the modules that define them;
    a command's own help imports its modules, and only those."""
    group = ("policyfeed.cli.root", "policyfeed.cli.table")  # the root group, not a command
    code = (
        "import sys, contextlib, io\n"
        "from policyfeed.cli import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(sys.argv[1:], prog_name='policyfeed')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('policyfeed.cli.') "
        f"and m not in {group!r})))\n"
    )

    def loaded(*args: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
        )
        return done.stdout.split()

    assert loaded("--help") == []
    assert loaded("build", "--help") == ["policyfeed.cli.build"]
    issue_modules = ["deliveries", "editing", "issues", "sendtest"]
    assert loaded("issue", "--help") == [f"policyfeed.cli.{m}" for m in issue_modules]


def test_the_console_scripts_bare_help_loads_neither_click_nor_the_root_group() -> None:
    """``policyfeed --help`` as a user runs it (``policyfeed.cli:main``) prints the root help
    from the command table (policyfeed.cli.quickhelp), without click or policyfeed.cli.root."""
    code = (
        "import sys, contextlib, io\n"
        "sys.argv[1:] = ['--help']\n"
        "from policyfeed.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main()\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('policyfeed', "
        "'click'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [
        "policyfeed",
        "policyfeed.cli",
        "policyfeed.cli.quickhelp",
        "policyfeed.cli.table",
    ]


def test_the_command_table_matches_the_commands() -> None:
    """What ``--help`` shows of a command before loading it is what it shows once loaded, and
    every module of the cli package is named in the table."""
    import click

    from policyfeed.cli import COMMANDS, cli

    modules = {m for found, _ in COMMANDS.values() for m in found}
    helpers = {
        "progress",
        "quickhelp",
        "root",
        "table",
    }  # no command of their own (root: the group)
    on_disk = {p.stem for p in (PACKAGE / "cli").glob("*.py") if p.stem != "__init__"}
    assert sorted(on_disk - helpers) == sorted(modules)
    for name, (found, first_paragraph) in COMMANDS.items():
        command = cli.commands[name]
        assert command.callback is not None
        assert command.callback.__module__ == f"policyfeed.cli.{found[0]}", name
        stand_in = click.Command(name, help=first_paragraph)
        for limit in (30, 45, 60, 200):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), name
    with click.Context(cli) as ctx:
        assert cli.list_commands(ctx) == sorted(COMMANDS)


def test_the_readme_layout_shows_the_tree() -> None:
    readme = (SRC.parent / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("src/policyfeed/\n") :].split("```", 1)[0]
    shown = set(re.findall(r"\b([a-z_]+)(?:\.py|/)", block))
    # Each part is described once: two lines for one package say two different things.
    starts = re.findall(r"^  ([a-z_]+(?:\.py|/))\s", block, re.MULTILINE)
    assert sorted({s for s in starts if starts.count(s) > 1}) == []
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert sorted((packages | top) - shown) == []
    assert (
        sorted(
            shown
            - packages
            - top
            - {"src", "policyfeed", "templates", "tests", "benchmarks", "docs", "demo"}
        )
        == []
    )
