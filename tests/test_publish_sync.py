"""``publish`` with ``digest.sync_before_publish``: it syncs the sources first and mails only
what is new since the first sync (never the back catalogue); a source that cannot be synced
stops the run before an issue is made, with exit 75 when it is only unreachable for now."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feed_samples import sample_items, wordpress_feed
from feed_server import FeedServer
from policyfeed.cli import App, cli

NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)
CONFIG = """\
[site]
title = "Public Policy"
base_url = "https://policy.example.org/"
timezone = "Europe/Zurich"

[digest]
mail_from = "policy-digest@example.org"
mail_from_name = "Public Policy digest"
postal_address = "Public Policy team, 1775 Wiehle Avenue, Reston, VA 20190, USA"
schedule = "0 8 * * MON"
sync_before_publish = true

[[sources]]
name = "chapter"
url = "{url}"
"""


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture
def site(tmp_path: Path, feeds: FeedServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(App, "now", lambda self: NOW)
    monkeypatch.setenv("POLICYFEED_SECRET", "a-secret-for-the-tests-only-0123456789")
    (tmp_path / "policyfeed.toml").write_text(
        CONFIG.format(url=feeds.url("/feed/")), encoding="utf-8"
    )
    assert run("init").exit_code == 0
    for address in ("ann@example.org", "ben@example.org"):
        assert run("subscribers", "add", address).exit_code == 0
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def serve(feeds: FeedServer, count: int, etag: str) -> None:
    feeds.set("/feed/", wordpress_feed(feeds.url("/"), sample_items(count)), etag=etag)


def mailed_texts(site: Path) -> list[str]:
    texts = []
    for path in sorted((site / "outbox" / "new").iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        texts.append(part.get_content())
    return texts


def test_publish_syncs_first_and_mails_only_what_is_new(site: Path, feeds: FeedServer) -> None:
    serve(feeds, 3, '"v1"')
    result = run("publish", "--json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)
    assert first["status"] == "nothing_new"  # the back catalogue counts as announced
    assert [(s["name"], s["created"], s["announced"]) for s in first["synced"]] == [
        ("chapter", 3, 3)
    ]
    assert not (site / "outbox" / "new").exists() or not list((site / "outbox" / "new").iterdir())

    serve(feeds, 4, '"v2"')  # one post more upstream
    result = run("publish", "--json")
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert (second["status"], second["posts"], second["recipients"], second["sent"]) == (
        "sent",
        1,
        2,
        2,
    )
    assert [(s["name"], s["created"], s["unchanged"]) for s in second["synced"]] == [
        ("chapter", 1, 3)
    ]
    texts = mailed_texts(site)
    assert len(texts) == 2
    for text in texts:
        assert "WCIT preparation" in text  # the new one
        for old in ("ITU Council and WTSA", "IETF 84 in Vancouver", "The Beijing Treaty"):
            assert old not in text
        # Read it online goes to the CMS, where the post lives.
        assert feeds.url("/2012/07/05/wcit-preparation/") in text

    result = run("publish")
    assert result.exit_code == 0
    assert result.stdout.startswith("already_sent: issue 1")
    assert feeds.requests[-1].headers["if-none-match"] == '"v2"'


def test_an_unreachable_source_defers_the_issue_with_exit_75(site: Path, feeds: FeedServer) -> None:
    serve(feeds, 2, '"v1"')
    assert run("sources", "sync").exit_code == 0
    feeds.set("/feed/", "down for maintenance", status=503, content_type="text/plain")
    result = run("publish", "--json")
    assert result.exit_code == 75
    report = json.loads(result.stdout)
    assert report["status"] == "sync_deferred"
    assert report["issue"] is None
    assert "chapter: temporary failure: " in report["message"]
    assert "503 Service Unavailable" in report["message"]
    assert run("issue", "list").output.strip() == "No issues yet."


def test_a_broken_source_stops_the_issue_with_exit_1(site: Path, feeds: FeedServer) -> None:
    serve(feeds, 2, '"v1"')
    assert run("sources", "sync").exit_code == 0
    feeds.set("/feed/", wordpress_feed(feeds.url("/"), sample_items(3))[:1500], etag='"cut"')
    result = run("publish")
    assert result.exit_code == 1
    assert result.stdout.startswith(
        "sync_error: no issue, period 2012-07-30T08:00: a source could not be synced, and an "
        "issue made now would miss its new posts; none made, nothing sent (chapter: error: "
    )
    assert "not well-formed XML" in result.stdout


def test_a_dry_run_does_not_sync(site: Path, feeds: FeedServer) -> None:
    serve(feeds, 2, '"v1"')
    result = run("publish", "--dry-run", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["status"] == "nothing_new"
    assert report["warnings"] == [
        "sources not synced (a dry run writes nothing): a real run takes their new posts too"
    ]
    assert feeds.requests == []
