"""The wheel ships every default template, and the installed package finds them."""

from __future__ import annotations

import importlib.resources
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Files of kinds and depths the templates folder does not hold yet, to prove the packaging rule
# takes any file rather than a list of extensions.
PROBES = ("probe-root.xsl", "web/probe.svg", "email/nested/deeper/probe.json", "probe.js")


def template_files(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative, POSIX), bytecode left out."""
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A wheel built from a copy of the project (templates as they are now, plus probes)."""
    work = tmp_path_factory.mktemp("wheel")
    project = work / "project"
    project.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", project / "src", ignore=ignore)
    shutil.copytree(ROOT / "templates", project / "templates", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", project)
    if (ROOT / "README.md").exists():
        shutil.copy(ROOT / "README.md", project)
    else:  # the metadata needs it; this test is about the templates
        (project / "README.md").write_text("# policyfeed\n")
    for probe in PROBES:
        (project / "templates" / probe).parent.mkdir(parents=True, exist_ok=True)
        (project / "templates" / probe).write_text("probe\n")
    # Bytecode next to the templates (as an editable install leaves it) must stay out.
    (project / "templates" / "__pycache__").mkdir()
    (project / "templates" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
         "--outdir", str(work / "dist"), str(project)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = (work / "dist").glob("policyfeed-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    return wheel, names


def test_every_file_under_templates_is_in_the_wheel(built: tuple[Path, list[str]]) -> None:
    _, names = built
    files = template_files(ROOT / "templates")
    assert any(name.endswith(".html") for name in files), files  # the folder is really there
    missing = [f for f in files if f"policyfeed/templates/{f}" not in names]
    assert missing == []


def test_template_files_of_any_kind_and_depth_are_shipped(built: tuple[Path, list[str]]) -> None:
    _, names = built
    assert [p for p in PROBES if f"policyfeed/templates/{p}" not in names] == []


def test_the_wheel_holds_no_bytecode(built: tuple[Path, list[str]]) -> None:
    _, names = built
    assert [n for n in names if n.endswith(".pyc") or "__pycache__" in n] == []


def test_the_wheel_has_the_package_the_script_and_the_typing_marker(
    built: tuple[Path, list[str]],
) -> None:
    wheel, names = built
    source = ROOT / "src" / "policyfeed"
    modules = ["policyfeed/" + path.relative_to(source).as_posix() for path in source.rglob("*.py")]
    assert "policyfeed/cli/__init__.py" in modules
    assert [m for m in modules if m not in names] == []  # subpackages included
    assert "policyfeed/py.typed" in names
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = archive.read(entry_points).decode()
    assert "policyfeed = policyfeed.cli:main" in text


def test_the_installed_wheel_finds_its_templates_with_importlib_resources(
    built: tuple[Path, list[str]], tmp_path: Path
) -> None:
    wheel, _ = built
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # a pure-Python wheel installs by unpacking
    script = (
        "import importlib.resources, policyfeed\n"
        "root = importlib.resources.files('policyfeed.templates')\n"
        "def walk(node, prefix=''):\n"
        "    for child in node.iterdir():\n"
        "        if child.is_dir():\n"
        "            yield from walk(child, prefix + child.name + '/')\n"
        "        else:\n"
        "            yield prefix + child.name\n"
        "print(policyfeed.__file__)\n"
        "print('\\n'.join(sorted(walk(root))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    package_file, *found = done.stdout.splitlines()
    assert Path(package_file).is_relative_to(site)  # the wheel's copy, not the source tree
    assert set(template_files(ROOT / "templates")) <= set(found)


def test_this_installation_finds_the_default_templates() -> None:
    root = importlib.resources.files("policyfeed.templates")
    for name in template_files(ROOT / "templates"):
        node = root
        for part in name.split("/"):
            node = node / part
        assert node.is_file(), name
