"""An operator sees and sets a member's topics: ``subscribers add --topic``, ``subscribers
topics``, the TOPICS column of ``subscribers list`` and ``subscribers export``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policyfeed.cli import App, cli


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    monkeypatch.setattr(App, "now", lambda self: now)


def run(db_path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db_path), *args])


def ok(db_path: Path, *args: str) -> str:
    result = run(db_path, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_add_with_topics_then_list_shows_them(demo_db_path: Path) -> None:
    assert ok(
        demo_db_path, "subscribers", "add", "kim@example.org", "--chapter", "vancouver",
        "--topic", "IETF", "--topic", "trade-agreements",
    ) == "Added kim@example.org (vancouver; topics: ietf, trade-agreements)\n"  # fmt: skip
    listed = ok(demo_db_path, "subscribers", "list", "--chapter", "vancouver")
    assert listed.splitlines() == [
        "EMAIL                   STATUS        CHAPTER       TOPICS                 NAME",
        "chen.wei@example.org    active        vancouver     -                      Chen Wei",
        "kim@example.org         active        vancouver     ietf,trade-agreements  ",
        "sam.taylor@example.org  active        vancouver     -                      Sam Taylor",
    ]
    members = json.loads(ok(demo_db_path, "subscribers", "list", "--json"))["subscribers"]
    topics = {m["email"]: m["topics"] for m in members}
    assert topics["kim@example.org"] == ["ietf", "trade-agreements"]
    assert topics["chen.wei@example.org"] is None


def test_topics_shows_sets_and_resets_a_members_choice(demo_db_path: Path) -> None:
    member = "ana.silva@example.org"
    assert ok(demo_db_path, "subscribers", "topics", member) == (
        "ana.silva@example.org: what switzerland gets, the posts on internet-governance, itu-wcit\n"
    )
    assert ok(demo_db_path, "subscribers", "topics", member, "--topic", "Trade agreements") == (
        "ana.silva@example.org: the posts on trade-agreements (their choice)\n"
    )
    shown = json.loads(ok(demo_db_path, "subscribers", "topics", member, "--json"))
    assert shown == {
        "email": member,
        "chapter": "switzerland",
        "topics": ["trade-agreements"],
        "chapter_topics": ["internet-governance", "itu-wcit"],
    }
    exported = json.loads(ok(demo_db_path, "subscribers", "export", member))
    assert exported["topics"] == [{"slug": "trade-agreements", "name": "Trade agreements"}]
    assert ok(demo_db_path, "subscribers", "topics", member, "--reset").startswith(
        "ana.silva@example.org: what switzerland gets"
    )
    assert ok(demo_db_path, "subscribers", "topics", "policy-watch@example.org") == (
        "policy-watch@example.org: every post (no chapter, no topics chosen)\n"
    )


def test_mistakes_are_one_clear_line_and_change_nothing(demo_db_path: Path) -> None:
    member = "ana.silva@example.org"
    unknown = run(
        demo_db_path, "subscribers", "topics", member, "--topic", "ietf", "--topic", "DNS"
    )
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith(
        "Error: --topic: unknown topic 'DNS' (known: ietf, intellectual-property, "
    )
    assert len(unknown.stderr.splitlines()) == 1
    both = run(demo_db_path, "subscribers", "topics", member, "--topic", "ietf", "--reset")
    assert both.exit_code == 2 and "not both" in both.stderr
    nobody = run(demo_db_path, "subscribers", "topics", "nobody@example.org")
    assert nobody.exit_code == 1 and "no subscriber 'nobody@example.org'" in nobody.stderr
    added = run(demo_db_path, "subscribers", "add", "kim@example.org", "--topic", "Gardening")
    assert added.exit_code == 1 and "unknown topic 'Gardening'" in added.stderr
    assert "kim@example.org" not in ok(demo_db_path, "subscribers", "list")
    assert json.loads(ok(demo_db_path, "subscribers", "topics", member, "--json"))["topics"] is None


def test_forget_erases_the_choice_with_the_member(demo_db_path: Path) -> None:
    import sqlite3

    ok(demo_db_path, "subscribers", "topics", "zoe.muller@example.org", "--topic", "ietf")
    ok(demo_db_path, "subscribers", "forget", "zoe.muller@example.org", "--yes")
    with sqlite3.connect(demo_db_path) as conn:
        assert conn.execute("SELECT count(*) FROM subscriber_topics").fetchone() == (0,)
