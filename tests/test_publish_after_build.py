"""The weekly run with an editor in between: publish, then posts added and the site rebuilt by
hand (`policyfeed build`), then the next publish. Its own build finds nothing left to write, and
its check must still see the pages the editor's build wrote (it refused the issue: "links to
posts/…, which the site does not have", the feeds' history one post short)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import run


def test_publish_after_an_editors_build_sends_the_next_issue(cli_site: Path) -> None:
    first = run("publish", "--period", "2012-07-23T08:00", "--force", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.splitlines()[-1])["status"] == "sent"
    added = run("posts", "add", "--title", "News after the first issue", "--body",
                "<p>News.</p>", "--date", "2012-07-29 10:00", "--publish")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert run("build").exit_code == 0

    second = run("publish", "--json")

    report = json.loads(second.stdout.splitlines()[-1])
    assert (second.exit_code, report["status"]) == (0, "sent"), report.get("check", report)
    assert report["period"] == "2012-07-30T08:00"
    assert (cli_site / "public" / "posts" / "news-after-the-first-issue" / "index.html").exists()
