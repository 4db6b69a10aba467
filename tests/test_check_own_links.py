"""A post body may link to pages of the organisation's own domain that policyfeed does not build
(its /about or /donate pages live on the same host, outside policyfeed). Such a link is the
editor's, not a fault of the build: ``check`` warns about it, naming the post and the link, and
``publish`` sends. Links the templates write to pages the build should have made stay errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_support import run

BODY = (
    "Read [about us](/about) and [give](https://policy.example.org/donate/), "
    "and [the treaty](/posts/beijing-treaty-on-audiovisual-performances/)."
)
SLUG = "our-own-pages"


@pytest.fixture
def site(cli_site: Path) -> Path:
    return cli_site


def add_post() -> None:
    added = run(
        "posts", "add", "--title", "Our own pages", "--format", "markdown", "--body", BODY,
        "--date", "2012-07-29 10:00", "--publish",
    )  # fmt: skip
    assert added.exit_code == 0, added.output


def site_lines(output: str) -> list[str]:
    return [re.sub(r"\bline \d+", "line N", x) for x in output.splitlines() if " site " in x]


def test_a_post_linking_to_its_own_hosts_other_pages_is_a_warning_naming_post_and_link(
    site: Path,
) -> None:
    add_post()
    assert run("build").exit_code == 0
    checked = run("check")
    lines = site_lines(checked.output)
    assert not [line for line in lines if line.startswith("ERROR")], checked.output
    assert sorted(lines) == sorted(
        [
            f"WARN site posts/{SLUG}/index.html: post {SLUG} links to "
            "https://policy.example.org/about, which policyfeed does not build (fine for a "
            "page of yours outside it, else a 404), line N",
            f"WARN site posts/{SLUG}/index.html: post {SLUG} links to "
            "https://policy.example.org/donate/, which policyfeed does not build (fine for a "
            "page of yours outside it, else a 404), line N",
        ]
    ), checked.output


def test_publish_sends_an_issue_whose_post_links_to_its_own_hosts_other_pages(
    site: Path,
) -> None:
    add_post()
    published = run("publish", "--json")
    assert published.exit_code == 0, published.output
    report = json.loads(published.stdout)
    assert report["status"] == "sent"
    assert report["sent"] == report["recipients"] > 0
    warned = [f["line"] for f in report["check"]["findings"] if f["area"] == "site"]
    assert warned and all(line.startswith("WARN site ") for line in warned)
    assert any(f"post {SLUG} links to https://policy.example.org/about" in x for x in warned)


def test_a_special_issue_goes_out_while_another_post_links_to_its_own_hosts_pages(
    site: Path,
) -> None:
    assert run("issue", "new", "--period", "wcit-special").exit_code == 0
    add_post()  # waits for the next scheduled issue, and is on the site
    published = run("publish", "--period", "wcit-special")
    assert published.exit_code == 0, published.output
    assert published.stdout.startswith("sent: issue 1, period wcit-special"), published.output


def test_a_template_link_to_a_page_the_build_should_have_made_stays_an_error(
    site: Path,
) -> None:
    add_post()
    assert run("build").exit_code == 0
    # The treaty post's page is one the build makes: the templates' links to it are errors
    # once it is gone (the post body's link to it is only a warning of its own).
    treaty = site / "public" / "posts" / "beijing-treaty-on-audiovisual-performances"
    (treaty / "index.html").unlink()
    checked = run("check")
    assert checked.exit_code == 1
    errors = [line for line in site_lines(checked.output) if line.startswith("ERROR site ")]
    assert errors and all(
        "posts/beijing-treaty-on-audiovisual-performances/index.html, which the site does not "
        "have (a 404)" in line
        for line in errors
    ), checked.output
