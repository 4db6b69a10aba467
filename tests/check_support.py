"""Helpers shared by the preflight (policyfeed check) tests."""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import datetime
from pathlib import Path

import sqlite_utils

from policyfeed.check.report import Report
from policyfeed.check.run import check_site
from policyfeed.config import Settings
from policyfeed.site.build import build_site


def build(
    db: sqlite_utils.Database, settings: Settings, now: datetime, **changes: object
) -> Settings:
    """Build the site with ``settings`` changed by ``changes``; returns those settings."""
    settings = dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
    build_site(db, settings, settings.output_dir, now)
    return settings


def site_lines(db: sqlite_utils.Database, settings: Settings, now: datetime) -> list[str]:
    """The report lines of the site and feed checks on the built site."""
    report = Report()
    check_site(report, db, settings, settings.output_dir, now=now)
    return [finding.line for finding in report.findings]


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace ``old`` (which must be there) in a built file, as a broken build would write it.
    The modification time moves on, as any write's does."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def errors(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("ERROR ")]


def scrub_lines(lines: list[str]) -> list[str]:
    """Line numbers vary with the templates: ``line 12`` reads ``line N``."""
    return [re.sub(r"\bline \d+", "line N", line) for line in lines]
