"""What the command line says: warnings for POLICYFEED_* typos, one line (no traceback) for a
folder that cannot be written, counts that read "1 post", an example in every group's help."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from policyfeed.cli import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copyfile(ROOT / "policyfeed.toml", tmp_path / "policyfeed.toml")
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    return tmp_path


def test_a_mistyped_environment_variable_is_named_with_the_close_match(site: Path) -> None:
    result = CliRunner().invoke(
        cli, ["posts", "list"], env={"POLICYFEED_BASEURL": "https://x.example/"}
    )
    assert result.exit_code == 0
    assert result.stderr == (
        "Warning: POLICYFEED_BASEURL is not a policyfeed setting "
        "(did you mean POLICYFEED_BASE_URL?); it is ignored\n"
    )


def test_known_variables_raise_no_warning(site: Path) -> None:
    env = {"POLICYFEED_BASE_URL": "https://x.example/", "POLICYFEED_SECRET": "s" * 32,
           "POLICYFEED_DB": "posts.db"}  # fmt: skip
    result = CliRunner().invoke(cli, ["posts", "list"], env=env)
    assert (result.exit_code, result.stderr) == (0, "")


@pytest.mark.parametrize("target", ["/proc/x", "/proc/version/site"])
def test_build_into_a_folder_that_cannot_be_written_is_one_line(site: Path, target: str) -> None:
    result = CliRunner().invoke(cli, ["build", "--out", target])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    assert result.stderr.startswith("Error: /proc/")
    assert result.stderr.count("\n") == 1


def test_counts_of_one_read_in_the_singular(site: Path) -> None:
    (site / "one.json").write_text(json.dumps([{"title": "Only", "date": "2012-07-20"}]))
    imported = CliRunner().invoke(cli, ["posts", "import", "one.json"])
    assert imported.stdout == "Imported 1 post from one.json (1 new, 0 updated, 0 unchanged)\n"
    (site / "one.csv").write_text("email\nana@example.org\n")
    members = CliRunner().invoke(cli, ["subscribers", "import", "one.csv"])
    assert members.stdout.startswith("Imported 1 subscriber from one.csv (1 new,")
    built = CliRunner().invoke(cli, ["build"])
    assert built.stdout.startswith("Built ") and ": 1 post, " in built.stdout


@pytest.mark.parametrize("group", ["posts", "issue", "subscribers", "chapters"])
def test_every_group_help_has_an_example(group: str) -> None:
    result = CliRunner().invoke(cli, [group, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    example = result.stdout.split("Example:", 1)[1]
    assert f"policyfeed {group} " in example


def test_a_reader_that_stops_early_gets_no_error_message(demo_db_path: Path) -> None:
    """``policyfeed posts list | head -1`` printed ``Error: [Errno 32] Broken pipe``: a closed
    pipe is the reader's choice, not a failure to report. The process ends quietly with the
    status a Unix tool killed by SIGPIPE has (141), so nothing claims the listing was whole."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "policyfeed", "--db", str(demo_db_path), "posts", "list"],
            stdout=write_end, stderr=subprocess.PIPE, cwd=demo_db_path.parent, timeout=60,
            check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.stderr.decode() == ""
    assert done.returncode == 141
