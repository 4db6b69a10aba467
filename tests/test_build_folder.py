"""The output folder: ``build`` refuses a folder holding a site this database did not build
(``--force`` takes it over), keeps its state in the database rather than in the folder a web
server publishes, and moves the ``public/.policyfeed/`` state of older versions into the
database on the first build after an upgrade, without a full rebuild or a wipe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from policyfeed.cli import cli
from policyfeed.site.ownership import folder_key
from policyfeed.store import open_db
from site_support import check_feed_folder

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> object:
    return CliRunner().invoke(cli, ["--config", "policyfeed.toml", *args])


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def site(tmp_path: Path, demo_db_path: Path) -> Path:
    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    assert demo_db_path == tmp_path / "posts.db"
    return tmp_path


def live_site(folder: Path) -> dict[str, bytes]:
    """Another site's files, as a web server would serve them."""
    for rel in ("index.html", "feed.xml", "posts/their-post/index.html", "posts/other/index.html"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(f"<p>another site: {rel}</p>", encoding="utf-8")
    return files(folder)


def test_build_refuses_a_folder_holding_another_site_and_changes_nothing(site: Path) -> None:
    before = live_site(site / "live")
    result = run("build", "--out", "live")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: live: holds files that this database did not build (feed.xml, index.html, "
        "posts); check --out and build.output_dir, or build there anyway with "
        "`policyfeed build --force` (it replaces the site and removes the pages of posts this "
        "database does not have)\n"
    )
    assert files(site / "live") == before
    assert run("build", "--out", "live", "--full").exit_code == 1  # --full is not --force


def test_force_takes_the_folder_over_and_later_builds_need_no_force(site: Path) -> None:
    live_site(site / "live")
    result = run("build", "--out", "live", "--force")
    assert result.exit_code == 0, result.output
    assert not (site / "live" / "posts" / "their-post").exists()
    check_feed_folder(site / "live", 5)
    again = run("build", "--out", "live")
    assert (again.exit_code, again.stdout) == (
        0,
        "Built live: 5 posts, 0 files written, 0 removed\n",
    )


def test_an_empty_or_missing_folder_is_built_into_without_force(site: Path) -> None:
    (site / "empty").mkdir()
    assert run("build", "--out", "empty").exit_code == 0
    assert run("build", "--out", "new/public").exit_code == 0
    check_feed_folder(site / "new" / "public", 5)


def test_the_build_state_is_in_the_database_not_in_the_published_folder(site: Path) -> None:
    result = run("build")
    assert result.exit_code == 0, result.output
    public = site / "public"
    hidden = [p for p in public.rglob(".*")]
    assert hidden == []
    db = open_db(site / "posts.db")
    names = db.execute(
        "SELECT name FROM build_state WHERE folder = ? ORDER BY name", [folder_key(public)]
    ).fetchall()
    assert [n for (n,) in names] == ["archive", "claimed", "site"]
    db.conn.close()
    # The state is what makes the next build incremental.
    assert run("build").stdout == "Built public: 5 posts, 0 files written, 0 removed\n"


def test_a_deleted_output_folder_is_built_again_in_full(site: Path) -> None:
    assert run("build").exit_code == 0
    before = files(site / "public")
    shutil.rmtree(site / "public")
    result = run("build")
    assert result.exit_code == 0, result.output
    assert "(full build)" in result.stdout
    assert files(site / "public") == before


def legacy_layout(db_path: Path, public: Path) -> None:
    """Turn a build of this version into what an older one left: the state files inside the
    output folder and none in the database."""
    db = sqlite_utils.Database(db_path)
    legacy = public / ".policyfeed"
    legacy.mkdir()
    names = {"site": "build-state.json", "archive": "archive-state.json"}
    for name, data in db.execute("SELECT name, data FROM build_state").fetchall():
        if name in names:
            (legacy / names[name]).write_bytes(data)
    (legacy / "websub-pending.json").write_text(json.dumps(["https://hub.example/x"]))
    with db.conn:
        db.execute("DELETE FROM build_state")
    db.conn.close()


def test_an_upgrade_moves_the_old_state_into_the_database_and_keeps_the_site(site: Path) -> None:
    assert run("build").exit_code == 0
    public = site / "public"
    before = files(public)
    legacy_layout(site / "posts.db", public)
    result = run("build")
    assert result.exit_code == 0, result.output
    # Incremental (the old state was read): nothing rewritten, nothing removed.
    assert result.stdout == "Built public: 5 posts, 0 files written, 0 removed\n"
    assert not (public / ".policyfeed").exists()
    assert files(public) == before
    db = open_db(site / "posts.db")
    pending = db.execute("SELECT data FROM build_state WHERE name = 'websub-pending'").fetchone()
    assert json.loads(pending[0]) == ["https://hub.example/x"]
    db.conn.close()


def test_the_old_state_of_another_database_is_refused_like_any_other_site(
    site: Path, tmp_path: Path
) -> None:
    assert run("build").exit_code == 0
    legacy_layout(site / "posts.db", site / "public")
    other = tmp_path / "other.db"
    assert CliRunner().invoke(cli, ["--db", str(other), "init"]).exit_code == 0
    added = run("--db", str(other), "posts", "add", "--title", "Elsewhere", "--publish")
    assert added.exit_code == 0, added.output
    before = files(site / "public")
    result = run("--db", str(other), "build")
    assert result.exit_code == 1
    assert "public: holds files that this database did not build" in result.stderr
    assert files(site / "public") == before


def test_publish_refuses_an_output_folder_holding_another_site_before_making_an_issue(
    site: Path,
) -> None:
    live_site(site / "public")
    env = {"POLICYFEED_SECRET": "s" * 32}
    result = CliRunner().invoke(cli, ["publish", "--json"], env=env)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "error"
    assert "public: holds files that this database did not build" in report["error"]
    listed = CliRunner().invoke(cli, ["issue", "list"])
    assert listed.stdout == "No issues yet.\n"
    dry = CliRunner().invoke(cli, ["publish", "--dry-run"], env=env)
    assert dry.exit_code == 1 and "holds files" in dry.stderr
