"""``policyfeed check`` on a site built before the database last changed says so, once, and
what to do (``policyfeed build``), instead of the symptoms (feeds that miss the new posts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_support import run


@pytest.fixture
def site(cli_site: Path) -> Path:
    return cli_site


def test_a_site_older_than_the_database_is_one_error_saying_build(site: Path) -> None:
    assert run("build").exit_code == 0
    for n in range(3):
        added = run("posts", "add", "--title", f"News {n}", "--body", "<p>News.</p>",
                    "--date", f"2012-07-29 0{n}:00", "--publish")  # fmt: skip
        assert added.exit_code == 0, added.output

    checked = run("check")

    assert checked.exit_code == 1
    errors = [line for line in checked.output.splitlines() if line.startswith("ERROR ")]
    assert errors == [
        "ERROR site public: the site in public/ is older than the database "
        "(posts changed since it was built): run `policyfeed build`"
    ], checked.output

    assert run("build").exit_code == 0
    again = run("check")
    assert not [line for line in again.output.splitlines() if line.startswith("ERROR ")], (
        again.output
    )
