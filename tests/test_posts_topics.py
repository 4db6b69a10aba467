"""`posts add/edit --topic` takes only topics that exist: `--topic IEFT` (for IETF) used to
make a new topic, with its own page and feed, without a word. A new topic is asked for by
name (`--new-topic`); an import may bring new topics, and its summary names them."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policyfeed.cli import App, cli

CONFIG = """\
[site]
title = "Public Policy"
base_url = "https://policy.example.org/"
timezone = "Europe/Zurich"
"""


@pytest.fixture
def site(
    tmp_path: Path, demo_db_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The demo database (topics IETF, ITU / WCIT, Internet governance, …) and a config."""
    (tmp_path / "policyfeed.toml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setattr(App, "now", lambda self: now)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def table(site: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(site / "posts.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def topics(site: Path) -> list[str]:
    return [str(r[0]) for r in table(site, "SELECT name FROM topics ORDER BY name")]


def post_topics(site: Path, slug: str) -> list[str]:
    return [
        str(r[0])
        for r in table(
            site,
            "SELECT t.name FROM topics t JOIN post_topics pt ON pt.topic_id = t.id "
            f"JOIN posts p ON p.id = pt.post_id WHERE p.slug = '{slug}' ORDER BY t.name",
        )
    ]


def test_a_mistyped_topic_is_refused_with_the_close_match(site: Path) -> None:
    before = topics(site), table(site, "SELECT count(*) FROM posts")
    result = run("posts", "add", "--title", "IETF 85 in Atlanta", "--topic", "IEFT")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: unknown topic 'IEFT'; did you mean 'IETF'? create it with "
        "`policyfeed topics add 'IEFT'`, or pass --new-topic 'IEFT' to create it with the post\n"
    )
    assert (topics(site), table(site, "SELECT count(*) FROM posts")) == before


def test_an_unknown_topic_with_nothing_close_is_refused_too(site: Path) -> None:
    result = run("posts", "add", "--title", "Zebras", "--topic", "Zoology")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: unknown topic 'Zoology'; create it with `policyfeed topics add 'Zoology'`, or "
        "pass --new-topic 'Zoology' to create it with the post\n"
    )
    assert "Zoology" not in topics(site)


def test_an_existing_topic_is_taken_by_its_name_or_its_slug(site: Path) -> None:
    result = run("posts", "add", "--title", "IETF 85", "--topic", "IETF", "--topic", "itu-wcit")
    assert (result.exit_code, result.stdout) == (0, "Added ietf-85 (draft)\n")
    assert post_topics(site, "ietf-85") == ["IETF", "ITU / WCIT"]


def test_new_topic_creates_the_topic_with_the_post_and_says_so(site: Path) -> None:
    result = run(
        "posts", "add", "--title", "Spectrum", "--topic", "IETF", "--new-topic", "Spectrum policy"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "Added spectrum (draft); new topic: Spectrum policy\n"
    assert post_topics(site, "spectrum") == ["IETF", "Spectrum policy"]
    # Naming a topic that exists with --new-topic is no error: the post gets it.
    again = run("posts", "add", "--title", "More spectrum", "--new-topic", "Spectrum policy")
    assert (again.exit_code, again.stdout) == (0, "Added more-spectrum (draft)\n")


def test_edit_refuses_a_mistyped_topic_and_leaves_the_post_as_it_was(site: Path) -> None:
    slug = str(table(site, "SELECT slug FROM posts ORDER BY id LIMIT 1")[0][0])
    before = post_topics(site, slug), topics(site)
    result = run("posts", "edit", slug, "--topic", "Intellectual proprety")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: unknown topic 'Intellectual proprety'; did you mean 'Intellectual property'? "
    )
    assert (post_topics(site, slug), topics(site)) == before
    added = run("posts", "edit", slug, "--topic", "IETF", "--new-topic", "Standards")
    assert added.exit_code == 0, added.output
    assert added.stdout == f"Updated {slug}; new topic: Standards\n"
    assert post_topics(site, slug) == ["IETF", "Standards"]


@pytest.mark.parametrize("command", ["add", "edit"])
def test_the_help_says_how_to_make_a_new_topic(command: str) -> None:
    text = " ".join(run("posts", command, "--help").stdout.split())
    assert "--new-topic NAME" in text
    assert "--topic must exist" in text


def test_an_import_may_bring_new_topics_and_its_summary_names_them(site: Path) -> None:
    records = [
        {"title": "One", "date": "2012-07-09", "topics": ["IETF", "Spectrum policy"]},
        {"title": "Two", "date": "2012-07-10", "topics": ["Accessibility", "Spectrum policy"]},
    ]
    (site / "more.json").write_text(json.dumps(records), encoding="utf-8")
    result = run("posts", "import", "more.json")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Imported 2 posts from more.json (2 new, 0 updated, 0 unchanged; "
        "2 new topics: Accessibility, Spectrum policy)\n"
    )
    again = run("posts", "import", "more.json")
    assert again.stdout == "Imported 2 posts from more.json (0 new, 0 updated, 2 unchanged)\n"
