"""A database path that does not exist is refused by every command but ``init``: a mistyped
``--db`` used to create an empty database, after which ``build`` wiped a live site and ``posts
list`` said ``No posts.``, all exit 0."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from policyfeed.cli import cli

ROOT = Path(__file__).resolve().parent.parent

# Every command that reads or writes the database, with arguments that would otherwise work.
COMMANDS = [
    ["posts", "list"],
    ["posts", "list", "--json"],
    ["posts", "show", "acta"],
    ["posts", "add", "--title", "New"],
    ["posts", "edit", "acta", "--title", "New"],
    ["posts", "publish", "acta"],
    ["posts", "unpublish", "acta"],
    ["posts", "remove", "acta", "--yes"],
    ["posts", "search", "ITU"],
    ["posts", "import", "posts.json"],
    ["build"],
    ["build", "--full"],
    ["issue", "new"],
    ["issue", "new", "--dry-run"],
    ["issue", "list"],
    ["issue", "show", "1"],
    ["issue", "preview"],
    ["issue", "render", "1"],
    ["issue", "send-test", "1", "--to", "editor@example.org"],
    ["subscribers", "add", "ana@example.org"],
    ["subscribers", "import", "members.csv"],
    ["subscribers", "list"],
    ["subscribers", "unsubscribe", "ana@example.org"],
    ["subscribers", "remove", "ana@example.org", "--yes"],
    ["subscribers", "export", "ana@example.org"],
    ["chapters", "add", "geneva", "--name", "Geneva"],
    ["chapters", "list"],
    ["publish"],
    ["publish", "--dry-run"],
    ["serve", "--port", "0"],
]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The demo's config, a live site in public/ and its database, posts.db."""
    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    (tmp_path / "posts.json").write_text(json.dumps([{"title": "A post"}]), encoding="utf-8")
    (tmp_path / "members.csv").write_text("email\nana@example.org\n", encoding="utf-8")
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("<p>the live site</p>", encoding="utf-8")
    return tmp_path


def folder_state(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith("posts.db")
    }


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args))
def test_a_mistyped_db_is_refused_and_nothing_is_created(site: Path, args: list[str]) -> None:
    before = folder_state(site)
    result = CliRunner().invoke(cli, ["--db", "post.db", *args])
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "Error: post.db: no such database (did you mean posts.db?). Check --db and "
        "POLICYFEED_DB, or create it with: policyfeed --db post.db init\n"
    )
    assert not (site / "post.db").exists()
    assert folder_state(site) == before


def test_the_default_database_missing_says_how_to_make_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["posts", "list"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: posts.db: no such database. Check --db and POLICYFEED_DB, or create it with: "
        "policyfeed init\n"
    )
    assert not (tmp_path / "posts.db").exists()


def test_a_mistyped_db_in_the_environment_is_refused_too(site: Path) -> None:
    result = CliRunner().invoke(cli, ["build"], env={"POLICYFEED_DB": "psots.db"})
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: psots.db: no such database (did you mean posts.db?)")
    assert (site / "public" / "index.html").read_text() == "<p>the live site</p>"


def test_publish_json_reports_a_missing_database_as_json(site: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", "post.db", "publish", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "error" and report["exit_code"] == 1
    assert report["error"].startswith("post.db: no such database")
    assert not (site / "post.db").exists()


def test_init_creates_the_database_it_is_given(site: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", "other/new.db", "init"])
    assert result.exit_code == 0, result.output
    assert (site / "other" / "new.db").is_file()
    result = CliRunner().invoke(cli, ["--db", "other/new.db", "posts", "list"])
    assert (result.exit_code, result.stdout) == (0, "No posts.\n")


def test_a_folder_given_as_the_database_is_refused(site: Path) -> None:
    (site / "data").mkdir()
    result = CliRunner().invoke(cli, ["--db", "data", "posts", "list"])
    assert result.exit_code != 0
    assert "data" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "is empty, not a policyfeed database"),
        (b"title,body\nA,B\n", "cannot open as a SQLite database"),
        (b"SQLite format 3\x00" + b"\x00" * 40, ""),  # a cut copy: SQLite's own error, named
    ],
    ids=["empty", "csv", "truncated"],
)
@pytest.mark.parametrize("args", [["posts", "list"], ["build"], ["publish", "--dry-run"]])
def test_a_file_that_is_no_database_is_refused_and_left_alone(
    site: Path, content: bytes, why: str, args: list[str]
) -> None:
    """An empty file given as --db (``: > zero.db``) used to become a new, empty database, and
    ``posts list`` said ``No posts.``: the very thing the missing-path rule prevents."""
    (site / "zero.db").write_bytes(content)
    before = folder_state(site)
    result = CliRunner().invoke(cli, ["--db", "zero.db", *args])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: zero.db: "), result.stderr
    assert why in result.stderr
    assert "Traceback" not in result.output
    assert (site / "zero.db").read_bytes() == content
    assert folder_state(site) == before


def test_init_fills_an_empty_file_given_as_the_database(site: Path) -> None:
    (site / "zero.db").write_bytes(b"")
    result = CliRunner().invoke(cli, ["--db", "zero.db", "init"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["--db", "zero.db", "posts", "list"])
    assert (result.exit_code, result.stdout) == (0, "No posts.\n")
