"""Large imports validate on the other cores, with the same results and errors as one core."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policyfeed.content import importers
from policyfeed.errors import InputError
from policyfeed.store import open_db

BASE = "https://policy.example.org/"
NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)


def write_records(path: Path, count: int, *, bad: int | None = None) -> Path:
    lines = []
    for n in range(1, count + 1):
        record = {
            "title": "" if n == bad else f"Post {n} <b>bold</b> & more",
            "slug": f"post-{n}",
            "body": f"<p>Body {n} <a href='/x/{n}'>link</a><script>x()</script></p>",
            "topics": ["IETF", "ITU / WCIT"][: 1 + n % 2],
            "published_at": f"2012-07-{1 + n % 28:02d}T09:00:00",
        }
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def dump(db_path: Path) -> list[tuple[object, ...]]:
    db = open_db(db_path)
    try:
        return db.execute(
            "SELECT slug, title, body_html, body_text, published_at, guid FROM posts ORDER BY id"
        ).fetchall()
    finally:
        db.conn.close()


def run_import(source: Path, target: Path) -> importers.ImportResult:
    db = open_db(target)
    try:
        return importers.import_posts(
            db, source, fmt="jsonl", base_url=BASE, tz=UTC, domain="policy.example.org", now=NOW
        )
    finally:
        db.conn.close()


def test_parallel_validation_gives_the_same_posts_as_serial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_records(tmp_path / "posts.jsonl", 60)
    serial = run_import(source, tmp_path / "serial.db")
    monkeypatch.setattr(importers, "PARALLEL_MIN_RECORDS", 10)
    monkeypatch.setattr(importers, "VALIDATION_CHUNK", 7)  # runs of 7 records
    parallel = run_import(source, tmp_path / "parallel.db")
    assert (serial.created, parallel.created) == (60, 60)
    assert dump(tmp_path / "parallel.db") == dump(tmp_path / "serial.db")


def test_parallel_validation_names_the_first_bad_record_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importers, "PARALLEL_MIN_RECORDS", 10)
    monkeypatch.setattr(importers, "VALIDATION_CHUNK", 7)  # runs of 7 records
    source = write_records(tmp_path / "posts.jsonl", 60, bad=37)
    with pytest.raises(InputError, match=r"posts\.jsonl, line 37: missing title"):
        run_import(source, tmp_path / "target.db")
    assert dump(tmp_path / "target.db") == []


def break_line(path: Path, number: int, text: str) -> Path:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[number - 1] = text
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("line", ["{not json", "[1, 2]"])
def test_parallel_import_names_a_malformed_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    # Lines of JSON Lines are decoded on the other cores: the error and its line stay the same.
    monkeypatch.setattr(importers, "PARALLEL_MIN_RECORDS", 10)
    monkeypatch.setattr(importers, "VALIDATION_CHUNK", 7)  # runs of 7 records
    source = break_line(write_records(tmp_path / "posts.jsonl", 60, bad=52), 41, line)
    expected = (
        r"posts\.jsonl, line 41: malformed JSON" if line.startswith("{") else
        r"posts\.jsonl, line 41: a post must be an object"
    )  # fmt: skip
    with pytest.raises(InputError, match=expected):
        run_import(source, tmp_path / "target.db")
    assert dump(tmp_path / "target.db") == []


def test_a_bad_record_before_a_malformed_line_is_the_one_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importers, "PARALLEL_MIN_RECORDS", 10)
    monkeypatch.setattr(importers, "VALIDATION_CHUNK", 7)  # runs of 7 records
    source = break_line(write_records(tmp_path / "posts.jsonl", 60, bad=12), 41, "{not json")
    with pytest.raises(InputError, match=r"posts\.jsonl, line 12: missing title"):
        run_import(source, tmp_path / "target.db")
    assert dump(tmp_path / "target.db") == []


def test_a_duplicate_slug_across_cores_names_both_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importers, "PARALLEL_MIN_RECORDS", 10)
    monkeypatch.setattr(importers, "VALIDATION_CHUNK", 7)  # runs of 7 records
    source = write_records(tmp_path / "posts.jsonl", 60)
    text = source.read_text(encoding="utf-8").replace('"slug": "post-55"', '"slug": "post-3"')
    source.write_text(text, encoding="utf-8")
    with pytest.raises(
        InputError, match=r"posts\.jsonl, line 55: duplicate slug 'post-3' \(also at line 3\)"
    ):
        run_import(source, tmp_path / "target.db")
    assert dump(tmp_path / "target.db") == []
