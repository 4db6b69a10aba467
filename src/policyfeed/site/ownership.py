"""Which output folders a database builds into, and the build state that older versions left
inside the folder.

A build renders the database's site and removes the pages of posts the database does not have,
so building into a folder that holds another site would wipe it. A folder is the database's when
the database has built into it before (``build_state`` records it), when it is empty or missing,
or when it holds the state an older policyfeed kept in ``.policyfeed/`` and that state names this
database. Anything else is refused unless the caller forces it.

The state now lives in the database (:mod:`policyfeed.store.build_state`), out of what a web
server or a CDN sync publishes; a first build after an upgrade moves the old files there.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from sqlite_utils import Database

from policyfeed.errors import ConflictError
from policyfeed.store import build_state
from policyfeed.store.site import journal_head, journal_post_at

#: Where versions before 0.2 kept the build state: inside the output folder.
LEGACY_DIR = ".policyfeed"
#: The files of that folder and the state each became.
LEGACY_FILES = {
    "build-state.json": "site",
    "archive-state.json": "archive",
    "websub-pending.json": "websub-pending",
}


def folder_key(out_dir: Path) -> str:
    """How ``build_state`` names an output folder: its absolute path."""
    return str(Path(out_dir).resolve())


def _legacy_is_ours(db: Database, legacy: Path) -> bool | None:
    """Whether the old state in ``legacy`` was written by a build of this database (None: there
    is no readable old site state)."""
    try:
        data = json.loads((legacy / "build-state.json").read_bytes())
        seq, post = int(data["journal"][0]), data["journal"][1]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    if seq == 0:  # built before any post existed: nothing of another site is at stake
        return True
    return seq <= journal_head(db) and journal_post_at(db, seq) == post


def _remove_legacy(legacy: Path) -> None:
    for name in LEGACY_FILES:
        with contextlib.suppress(FileNotFoundError):
            (legacy / name).unlink()
    with contextlib.suppress(OSError):
        legacy.rmdir()  # only when nothing else is in it


def _entries(out_dir: Path) -> list[str]:
    try:
        return sorted(p.name for p in out_dir.iterdir())
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise ConflictError(f"{out_dir}: is a file, not a folder to build the site into") from None


def output_folder_problem(db: Database, out_dir: Path) -> str:
    """Why building into ``out_dir`` would put this database's site over something else, or ""
    when it may. Reads only (a dry run asks this)."""
    if build_state.is_claimed(db, folder_key(out_dir)):
        return ""
    entries = _entries(out_dir)
    if not entries:
        return ""
    if (out_dir / LEGACY_DIR).is_dir() and _legacy_is_ours(db, out_dir / LEGACY_DIR):
        return ""
    shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
    return (
        f"{out_dir}: holds files that this database did not build ({shown}); check --out and "
        "build.output_dir, or build there anyway with `policyfeed build --force` (it replaces "
        "the site and removes the pages of posts this database does not have)"
    )


def claim_output_folder(db: Database, out_dir: Path, *, force: bool = False) -> None:
    """Make ``out_dir`` a folder this database builds into, before anything is written there.

    Raises ConflictError when it holds something else (see :func:`output_folder_problem`),
    unless ``force``. Moves the state an older version left in ``out_dir/.policyfeed/`` into
    the database (when it is this database's) and removes it from the folder.
    """
    out_dir = Path(out_dir)
    key = folder_key(out_dir)
    problem = output_folder_problem(db, out_dir)
    if problem and not force:
        raise ConflictError(problem)
    legacy = out_dir / LEGACY_DIR
    if legacy.is_dir():
        if _legacy_is_ours(db, legacy) and not build_state.is_claimed(db, key):
            for file, name in LEGACY_FILES.items():
                with contextlib.suppress(OSError):
                    build_state.write(db, key, name, (legacy / file).read_bytes())
        _remove_legacy(legacy)
    build_state.claim(db, key)
