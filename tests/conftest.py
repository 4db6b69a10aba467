"""Shared fixtures. Every test runs in its own folder with no POLICYFEED_* variables set, so no
test can touch a real database, config or outbox."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils

from policyfeed.config import Settings, load_settings
from policyfeed.store import open_db

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "policyfeed.toml"
DEMO_POSTS = ROOT / "demo" / "posts.json"
NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)  # a Monday after the demo posts


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import os

    for name in list(os.environ):
        if name.startswith("POLICYFEED_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The demo site's settings, with output folders inside the test's folder."""
    return load_settings(
        DEMO_CONFIG,
        environ={},
        cwd=tmp_path,
        overrides={"output_dir": tmp_path / "public", "outbox_dir": tmp_path / "outbox"},
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    """An empty, migrated database file."""
    database = open_db(tmp_path / "test.db")
    yield database
    database.conn.close()


def build_demo_db(target: Path) -> Path:
    """The demo database made from its committed source, ``demo/``, as ``make demo-db`` does.

    Never the working tree's ``posts.db``: ``make run`` changes that one (it records an issue),
    and the tests must pass after it as before it.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_demo_db", ROOT / "demo" / "make_demo_db.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.build(target)
    return target


@pytest.fixture(scope="session")
def pristine_demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database, made once per test run from ``demo/``; copy it, never change it."""
    return build_demo_db(tmp_path_factory.mktemp("demo-source") / "posts.db")


@pytest.fixture
def demo_db_path(tmp_path: Path, pristine_demo_db: Path) -> Path:
    """A fresh copy of the demo database (made from ``demo/``) in the test's folder."""
    target = tmp_path / "posts.db"
    shutil.copyfile(pristine_demo_db, target)
    return target


@pytest.fixture
def demo_db(demo_db_path: Path) -> Iterator[sqlite_utils.Database]:
    database = open_db(demo_db_path)
    yield database
    database.conn.close()


@pytest.fixture
def cli_site(
    tmp_path: Path, demo_db_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The test's working folder as a demo site for ``cli_support.run``: the shipped config,
    a fresh demo database, the CLI's clock at ``now`` and a secret in the environment."""
    from policyfeed.cli import App

    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    monkeypatch.setattr(App, "now", lambda self: now)
    monkeypatch.setenv("POLICYFEED_SECRET", "s" * 32)
    return tmp_path
