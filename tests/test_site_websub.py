"""WebSub: feeds name the hub; a build pings it (a local HTTP endpoint) for feeds that changed."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import lxml.etree
import pytest
import sqlite_utils
from click.testing import CliRunner

from policyfeed.cli import cli
from policyfeed.config import Settings
from policyfeed.site.build import build_site
from site_support import NOW, save

ATOM = "{http://www.w3.org/2005/Atom}"


class Hub:
    """A hub on 127.0.0.1 that records publish pings and answers with ``status``."""

    def __init__(self) -> None:
        self.pings: list[dict[str, list[str]]] = []
        self.status = 204
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                form["content-type"] = [self.headers.get("Content-Type", "")]
                hub.pings.append(form)
                self.send_response(hub.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self.thread.start()

    def topics(self) -> list[str]:
        return sorted(url for ping in self.pings for url in ping["hub.url"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def hub() -> Iterator[Hub]:
    running = Hub()
    yield running
    running.close()


def test_feeds_name_the_hub_in_all_three_formats(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path, hub: Hub
) -> None:
    settings = dataclasses.replace(settings, websub_hub=hub.url)
    build_site(demo_db, settings, tmp_path / "site", NOW, notify_hub=False)
    for folder in (tmp_path / "site", tmp_path / "site" / "topics" / "ietf"):
        rss = lxml.etree.parse(folder / "feed.xml").getroot()
        assert [link.get("href") for link in rss.iterfind(f"channel/{ATOM}link[@rel='hub']")] == [
            hub.url
        ]
        atom = lxml.etree.parse(folder / "atom.xml").getroot()
        assert [link.get("href") for link in atom.iterfind(f"{ATOM}link[@rel='hub']")] == [hub.url]
        assert json.loads((folder / "feed.json").read_bytes())["hubs"] == [
            {"type": "WebSub", "url": hub.url}
        ]
    assert hub.pings == []  # notify_hub=False


def test_a_build_pings_the_hub_for_each_feed_that_changed_and_only_then(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path, hub: Hub
) -> None:
    settings = dataclasses.replace(settings, websub_hub=hub.url)
    site = settings.base_url
    first = build_site(demo_db, settings, tmp_path / "site", NOW)
    assert first.hub_error == ""
    assert set(hub.topics()) >= {f"{site}feed.xml", f"{site}atom.xml", f"{site}feed.json"}
    assert f"{site}topics/ietf/atom.xml" in hub.topics()
    assert all(p["hub.mode"] == ["publish"] for p in hub.pings)
    assert hub.pings[0]["content-type"] == ["application/x-www-form-urlencoded"]
    assert sorted(first.hub_notified) == hub.topics()

    hub.pings.clear()
    build_site(demo_db, settings, tmp_path / "site", NOW)
    assert hub.pings == []  # nothing changed: no ping

    save(demo_db, settings, "ietf-85", date=NOW, topics=["IETF"])
    build_site(demo_db, settings, tmp_path / "site", NOW)
    expected = [
        f"{site}{rel}{name}"
        for rel in ("", "topics/ietf/")
        for name in ("atom.xml", "feed.json", "feed.xml")
    ]
    # The demo has no issue yet: the issue feeds are dated by the site's last change, which the
    # new post moved (JSON Feed has no feed date).
    expected += [f"{site}issues/atom.xml", f"{site}issues/feed.xml"]
    assert hub.topics() == sorted(expected)


def test_archive_pages_that_change_are_not_pinged_the_site_s_or_a_topic_s(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path, hub: Hub
) -> None:
    # One post a feed: a new IETF post pushes the older ones into archive pages.
    settings = dataclasses.replace(settings, websub_hub=hub.url, feed_limit=1)
    site = settings.base_url
    build_site(demo_db, settings, tmp_path / "site", NOW)
    hub.pings.clear()
    save(demo_db, settings, "ietf-85", date=NOW, topics=["IETF"])
    result = build_site(demo_db, settings, tmp_path / "site", NOW)
    written = {p.relative_to(tmp_path / "site").as_posix() for p in result.written}
    assert "topics/ietf/archive/1/atom.xml" in written
    assert [rel for rel in written if rel.startswith("archive/") and rel.endswith("atom.xml")]
    assert [url for url in hub.topics() if "/archive/" in url] == []
    assert {f"{site}atom.xml", f"{site}topics/ietf/atom.xml"} <= set(hub.topics())


def test_a_hub_that_fails_is_pinged_again_by_the_next_build(
    demo_db: sqlite_utils.Database, settings: Settings, tmp_path: Path, hub: Hub
) -> None:
    settings = dataclasses.replace(settings, websub_hub=hub.url)
    hub.status = 503
    failed = build_site(demo_db, settings, tmp_path / "site", NOW)
    assert "503" in failed.hub_error
    assert failed.hub_notified == []
    wanted = sorted(set(hub.topics()))

    hub.status, hub.pings = 204, []
    retried = build_site(demo_db, settings, tmp_path / "site", NOW)  # no file changes this time
    assert retried.written == [] and retried.hub_error == ""
    assert hub.topics() == wanted
    hub.pings.clear()
    build_site(demo_db, settings, tmp_path / "site", NOW)
    assert hub.pings == []  # the pending list was cleared


def test_the_build_command_exits_75_when_the_hub_is_down_and_names_it(
    demo_db_path: Path, tmp_path: Path, hub: Hub
) -> None:
    config = tmp_path / "policyfeed.toml"
    config.write_text(
        f'[site]\nbase_url = "https://policy.example.org/"\n[build]\nwebsub_hub = "{hub.url}"\n'
    )
    hub.close()  # nothing listens there any more
    result = CliRunner().invoke(
        cli,
        ["--db", str(demo_db_path), "--config", str(config), "build", "--out", str(tmp_path / "s")],
    )
    assert result.exit_code == 75
    assert f"Error: WebSub hub {hub.url} not reachable" in result.output
    assert "the next build tries again" in result.output
    assert (tmp_path / "s" / "feed.xml").is_file()  # the site itself was built
