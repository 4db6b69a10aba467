"""``policyfeed chapters …`` and ``policyfeed subscribers …`` on the command line."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from policyfeed.cli import App, cli


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    monkeypatch.setattr(App, "now", lambda self: now)


def run(db_path: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db_path), *args], input=input)


def ok(db_path: Path, *args: str) -> str:
    result = run(db_path, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_chapters_add_and_list(demo_db_path: Path) -> None:
    assert ok(
        demo_db_path, "chapters", "add", "ietf-fans", "--name", "IETF fans", "--topic", "IETF"
    ) == ("Added chapter ietf-fans (ietf)\n")
    assert ok(demo_db_path, "chapters", "list") == (
        "SLUG         ACTIVE  NAME (TOPICS)\n"
        "ietf-fans         0  IETF fans (ietf)\n"
        "switzerland       2  Switzerland Chapter (internet-governance, itu-wcit)\n"
        "vancouver         2  Vancouver Chapter (ietf, intellectual-property, trade-agreements)\n"
    )
    listed = json.loads(ok(demo_db_path, "chapters", "list", "--json"))
    assert listed[1]["intro"].startswith("What the ITU meetings")


def test_a_chapter_with_an_unknown_topic_is_an_error(demo_db_path: Path) -> None:
    result = run(demo_db_path, "chapters", "add", "dns", "--name", "DNS", "--topic", "DNS")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: chapter dns: unknown topic 'DNS' (known: ietf, ")


def test_subscribers_add_list_unsubscribe_and_remove(demo_db_path: Path) -> None:
    assert ok(
        demo_db_path,
        "subscribers",
        "add",
        "Kim@Example.org",
        "--name",
        "Kim",
        "--chapter",
        "vancouver",
    ) == ("Added Kim@example.org (vancouver)\n")
    assert ok(demo_db_path, "subscribers", "unsubscribe", "kim@example.org") == (
        "Unsubscribed kim@example.org\n"
    )
    assert ok(demo_db_path, "subscribers", "unsubscribe", "kim@example.org") == (
        "kim@example.org was already unsubscribed\n"
    )
    listed = ok(demo_db_path, "subscribers", "list", "--status", "unsubscribed")
    assert listed.splitlines()[1].split() == [
        "Kim@example.org", "unsubscribed", "vancouver", "-", "Kim",  # "-": the chapter's topics
    ]  # fmt: skip
    assert ok(demo_db_path, "subscribers", "remove", "kim@example.org", "--yes") == (
        "Removed Kim@example.org\n"
    )
    assert (
        ok(demo_db_path, "subscribers", "list", "--status", "unsubscribed") == "No subscribers.\n"
    )


def test_remove_asks_first(demo_db_path: Path) -> None:
    result = run(demo_db_path, "subscribers", "remove", "ana.silva@example.org", input="n\n")
    assert result.exit_code == 1  # aborted
    assert "ana.silva@example.org" in ok(demo_db_path, "subscribers", "list")


def test_a_bad_address_is_refused_with_a_clear_error(demo_db_path: Path) -> None:
    result = run(demo_db_path, "subscribers", "add", "Ana <ana@example.org>")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: subscriber: 'Ana <ana@example.org>': "
        "the part before @ is not a plain mailbox name\n"
    )


def test_import_reports_what_it_did_and_is_all_or_nothing(
    demo_db_path: Path, tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        "email,name,chapter\nnew@example.org,New,switzerland\nana.silva@example.org,Ana S.,\n"
    )
    assert ok(demo_db_path, "subscribers", "import", str(good)) == (
        f"Imported 2 subscribers from {good} (1 new, 1 updated, 0 unchanged)\n"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("email\nfine@example.org\nbroken\n")
    result = run(demo_db_path, "subscribers", "import", str(bad))
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: {bad}, line 3: 'broken' is not an email address (name@example.org)\n"
    )
    assert "fine@example.org" not in ok(demo_db_path, "subscribers", "list")


def test_export_prints_everything_about_one_member_including_deliveries(
    demo_db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "policyfeed.toml").write_text(
        (Path(__file__).resolve().parent.parent / "policyfeed.toml").read_text()
    )
    ok(demo_db_path, "--config", str(tmp_path / "policyfeed.toml"), "publish")
    exported = json.loads(ok(demo_db_path, "subscribers", "export", "zoe.muller@example.org"))
    assert (exported["email"], exported["name"], exported["status"]) == (
        "zoe.muller@example.org",
        "Zoë Müller",
        "active",
    )
    assert exported["chapter"] == {"slug": "switzerland", "name": "Switzerland Chapter"}
    [delivery] = exported["deliveries"]
    assert (delivery["issue"], delivery["status"]) == (1, "sent")
    assert delivery["message_id"].startswith("issue-1.sub-2.")


def test_every_subscriber_and_chapter_command_has_help_ending_with_an_example() -> None:
    for group_name in ("subscribers", "chapters"):
        group = cli.commands[group_name]
        assert isinstance(group, click.Group)
        for name, command in group.commands.items():
            assert command.help and "Example:" in command.help, name
            example = [w for w in command.help.rsplit("Example:", 1)[1].split() if w != "\b"]
            assert example[:2] == ["policyfeed", group_name], name
    assert set(cli.commands["subscribers"].commands) == {  # type: ignore[attr-defined]
        "add", "import", "list", "remove", "unsubscribe", "export", "forget", "reactivate",
        "topics",
    }  # fmt: skip
    assert set(cli.commands["chapters"].commands) == {"add", "list", "edit"}  # type: ignore[attr-defined]
