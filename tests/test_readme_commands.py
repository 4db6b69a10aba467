"""The README's two commands in its order: ``make run`` (twice), then ``make test``. ``make run``
changes the working tree's posts.db (it records an issue); the tests used to copy that file and
gave "75 failed, 22 errors" after it. They take the demo from its committed source now."""

from __future__ import annotations

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
