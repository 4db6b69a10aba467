"""What the last check read of each page and feed, so that the next one parses only files whose
bytes changed: on a large site a publish then costs a walk of the folder and the files the build
just wrote, not a parse of every page.

A file is read again when its size or modification time differs from the one recorded (the build
writes a file only when its bytes change, and a write changes the time), or when the check's
rules or the site's base URL changed. The state also keeps each entry's id, which the next check
compares ("ids stable against the previous build").

It lives in the database beside the build's own state (``build_state``, name ``check``), never in
the folder a web server publishes, and only for a folder this database builds into: a check of
another folder must not make it look like one of ours. It is a cache: losing it costs one read
of every file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from policyfeed.site.ownership import folder_key
from policyfeed.store import build_state

log = logging.getLogger(__name__)

#: Bump when what is recorded, or a rule computed from it when the file is read, changes.
RULES_VERSION = "1"
STATE_VERSION = 2
STATE_NAME = "check"
#: Where builds before the state moved into the database kept it: never part of the site.
LEGACY_STATE_DIR = ".policyfeed"

Facts = dict[str, Any]


@dataclass(frozen=True)
class Seen:
    size: int
    mtime_ns: int
    facts: Facts | None  # None: not a page or a feed (an image, a stylesheet…)


@dataclass
class CheckState:
    context: str
    files: dict[str, Seen] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        strings = _Strings()
        data = {
            "version": STATE_VERSION,
            "context": self.context,
            "files": {
                rel: [seen.size, seen.mtime_ns, _pack(seen.facts, strings)]
                for rel, seen in sorted(self.files.items())
            },
            "strings": strings.values_,
        }
        return (json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_bytes(cls, raw: bytes, context: str) -> CheckState:
        """The saved state when it is readable and made with the same context, else empty."""
        try:
            data = json.loads(raw)
            if data.get("version") != STATE_VERSION or data.get("context") != context:
                return cls(context)
            strings = data["strings"]
            files = {
                str(rel): Seen(int(size), int(mtime), _unpack(facts, strings))
                for rel, (size, mtime, facts) in data["files"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            return cls(context)
        return cls(context, files)


# A site repeats the same strings thousands of times (every page links the feeds and its topics;
# a post's id and link stand in each feed that holds it): the state names each once, in a table,
# and the lists of links and entries hold their numbers. That keeps it about six times smaller.
_INTERNED = ("t", "e")


class _Strings(dict[str, int]):
    """Each string's number in the table, in the order first seen."""

    @property
    def values_(self) -> list[str]:
        return list(self)


def _pack(facts: Facts | None, strings: _Strings) -> Facts | None:
    if facts is None:
        return None
    packed = dict(facts)
    for key in _INTERNED:
        if key in packed:
            add = strings.setdefault
            packed[key] = [[add(text, len(strings)) for text in row] for row in packed[key]]
    return packed


def _unpack(facts: Facts | None, strings: list[str]) -> Facts | None:
    if facts is None:
        return None
    for key in _INTERNED:
        if key in facts:
            facts[key] = [[strings[number] for number in row] for row in facts[key]]
    return facts


def context_of(base_url: str) -> str:
    """What the recorded facts depend on besides the bytes of the files."""
    return hashlib.sha256(f"{RULES_VERSION}\0{base_url}".encode()).hexdigest()[:16]


def load_check_state(db: Database, out_dir: Path, context: str) -> CheckState:
    raw = build_state.read(db, folder_key(out_dir), STATE_NAME)
    return CheckState(context) if raw is None else CheckState.from_bytes(raw, context)


def save_check_state(db: Database, out_dir: Path, state: CheckState) -> None:
    """Keep the state for the next check, for a folder this database builds into."""
    folder = folder_key(out_dir)
    if not build_state.is_claimed(db, folder):
        log.info("check: %s is not built from this database; its state is not kept", out_dir)
        return
    try:
        build_state.write(db, folder, STATE_NAME, state.to_bytes())
    except sqlite3.OperationalError as exc:  # a read-only database: the next check reads all
        log.info("check: could not keep its state (%s)", exc)


def site_files(out_dir: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every regular file of the site (not the build's own folder), as (path, stat)."""
    stack = [(out_dir, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if rel != LEGACY_STATE_DIR:
                    stack.append((Path(entry.path), rel + "/"))
            elif entry.is_file(follow_symlinks=False):
                yield rel, entry.stat(follow_symlinks=False)
