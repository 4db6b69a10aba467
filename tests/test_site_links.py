"""The build copies no file into the output folder, so a symlink in the templates folder (a
theme's assets, a static folder) cannot carry a file from outside the site into it. Today every
output file is rendered from the database and the templates; this holds it so if files are
ever copied."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import sqlite_utils

from policyfeed.config import Settings
from policyfeed.site.build import build_site
from site_support import NOW


def test_links_in_the_templates_folder_never_reach_the_output(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    theme = tmp_path / "theme"
    for folder in ("static", "assets", "site/static"):
        (theme / folder).mkdir(parents=True)
        (theme / folder / "leak.txt").symlink_to(outside / "passwd")
        (theme / folder / "style.css").write_text("body { color: red }")
    (theme / "site" / "outside").symlink_to(outside, target_is_directory=True)
    out = tmp_path / "public"
    build_site(demo_db, dataclasses.replace(settings, templates_dir=theme), out, NOW)

    files = [p for p in out.rglob("*") if not p.is_dir()]
    assert files, "the build wrote nothing"
    assert not [p for p in out.rglob("*") if p.is_symlink()]
    for path in files:
        assert b"root:x:0:0" not in path.read_bytes(), path
    assert not [p for p in files if p.name in ("leak.txt", "passwd", "style.css")]
