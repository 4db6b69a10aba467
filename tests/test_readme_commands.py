"""The README's two commands in its order: ``make run`` (twice), then ``make test``. ``make run``
changes the working tree's posts.db (it records an issue); the tests used to copy that file and
gave "75 failed, 22 errors" after it. They take the demo from its committed source now."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(folder), *args], check=True, capture_output=True, timeout=60,
        env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"},
    )  # fmt: skip


def test_the_demo_tests_pass_after_make_run_changed_posts_db(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("tests", "demo"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("policyfeed.toml", "pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, checkout / name)
    # posts.db as committed: the working tree's may be one `make run` has changed already.
    committed = subprocess.run(
        ["git", "-C", str(ROOT), "show", "HEAD:posts.db"], capture_output=True, check=False
    )
    if committed.returncode != 0:
        pytest.skip("not a git checkout with posts.db committed")
    (checkout / "posts.db").write_bytes(committed.stdout)
    git(checkout, "init", "-q")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-qm", "the checkout")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYFEED_")}
    env["POLICYFEED_SECRET"] = "a-secret-for-this-run-only-0000000"
    for _ in range(2):  # what `make run` runs, twice
        done = subprocess.run(
            [sys.executable, "-m", "policyfeed", "--db", "posts.db", "--config",
             "policyfeed.toml", "publish"],
            cwd=checkout, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert (checkout / "posts.db").read_bytes() != committed.stdout  # make run changed it
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_demo.py",
         "tests/test_feeds_golden.py", "tests/test_build_folder.py"],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert " failed" not in tests.stdout and " skipped" not in tests.stdout


def _root_names(tree: ast.Module) -> set[str]:
    """Names a test module binds to the checkout's root (``Path(__file__)...parent.parent``, or
    ``ROOT`` imported from elsewhere)."""
    names = {"ROOT"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, text = node.targets[0], ast.unparse(node.value)
            if isinstance(target, ast.Name) and "__file__" in text and ".parent.parent" in text:
                names.add(target.id)
    return names


def working_tree_db_reads(source: str) -> list[int]:
    """Lines of ``source`` that name the working tree's posts.db: ``ROOT / "posts.db"``,
    ``ROOT.joinpath("posts.db")`` or ``os.path.join(ROOT, "posts.db")``."""
    tree = ast.parse(source)
    roots = _root_names(tree)

    def is_root(node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id in roots

    def is_db(node: ast.expr) -> bool:
        return isinstance(node, ast.Constant) and node.value == "posts.db"

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            if is_root(node.left) and is_db(node.right):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and any(is_db(arg) for arg in node.args):
            func = node.func
            if isinstance(func, ast.Attribute) and (
                is_root(func.value) or any(is_root(arg) for arg in node.args)
            ):
                lines.append(node.lineno)
    return sorted(lines)


def test_the_finder_finds_each_way_of_naming_the_working_tree_s_posts_db() -> None:
    source = (
        "from pathlib import Path\nimport os, shutil\n"
        "HERE = Path(__file__).resolve().parent.parent\n"
        "shutil.copyfile(HERE / 'posts.db', 'x')\n"
        "ROOT.joinpath('posts.db')\n"
        "os.path.join(ROOT, 'posts.db')\n"
        "Path('posts.db'); tmp_path / 'posts.db'; ROOT / 'policyfeed.toml'\n"
    )
    assert working_tree_db_reads(source) == [4, 5, 6]


def test_no_test_module_reads_the_working_tree_s_posts_db() -> None:
    """``make run`` changes that file: the demo comes from conftest's ``pristine_demo_db`` /
    ``demo_db_path`` (made from ``demo/``), or from git as committed."""
    found = [
        f"{path.name}:{line}"
        for path in sorted((ROOT / "tests").glob("*.py"))
        for line in working_tree_db_reads(path.read_text(encoding="utf-8"))
    ]
    assert found == []
