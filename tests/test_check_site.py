"""policyfeed check, site: every page parses, has no control character, and links only to files
the build wrote; the page-level accessibility rules; and the state that spares a re-read."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import sqlite_utils

import policyfeed.check.run
from check_support import build, edit, scrub_lines, site_lines
from policyfeed.check.site import resolve
from policyfeed.config import Settings

POST = "posts/beijing-treaty-on-audiovisual-performances/index.html"


@pytest.fixture
def site(demo_db: sqlite_utils.Database, settings: Settings, now: datetime) -> Path:
    build(demo_db, settings, now)
    return settings.output_dir


def readable(site: Path) -> list[str]:
    """The pages, feeds and OPML of a built site: what a first check reads."""
    names = (".html", "feed.xml", "atom.xml", "feed.json", ".opml")
    found = [p.relative_to(site).as_posix() for p in site.rglob("*") if p.name.endswith(names)]
    return sorted(rel for rel in found if not rel.startswith(".policyfeed/"))


def lines_of(db: sqlite_utils.Database, settings: Settings, now: datetime) -> list[str]:
    lines = site_lines(db, settings, now)
    return scrub_lines(lines)


def test_the_demo_pages_pass(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    assert lines_of(demo_db, settings, now) == []


def test_a_link_to_a_missing_page(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    (site / "posts" / "itu-council-refers-internet-issues-to-wtsa" / "index.html").unlink()
    lines = [line for line in lines_of(demo_db, settings, now) if line.startswith("ERROR site ")]
    assert lines == [
        "ERROR site index.html: links to posts/itu-council-refers-internet-issues-to-wtsa/"
        "index.html, which the site does not have (a 404), line N "
        "(also topics/internet-governance/index.html, topics/itu-wcit/index.html)"
    ]


def test_a_root_relative_link_to_a_missing_page_and_an_image_that_is_not_there(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(
        site / POST,
        "</article>",
        '<a href="/about/">About us</a><img src="../../logo.png"></article>',
    )
    assert lines_of(demo_db, settings, now) == [
        f"ERROR site {POST}: links to about/index.html, which the site does not have (a 404), "
        "line N",
        f"ERROR site {POST}: loads (img) logo.png, which the site does not have (a 404), line N",
        f"WARN a11y {POST}: image without alt text, ../../logo.png",
    ]


def test_links_to_the_web_apps_endpoints_are_not_files(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(
        site / POST,
        "</article>",
        '<a href="https://policy.example.org/unsubscribe">Leave</a> '
        '<a href="/subscribe">Join</a></article>',
    )
    assert lines_of(demo_db, settings, now) == []


def test_a_page_that_does_not_parse_as_html(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(site / POST, "</article>", "</article></span>")
    assert lines_of(demo_db, settings, now) == [
        f"ERROR site {POST}: does not parse as HTML: unexpected-end-tag, line N, column 17"
    ]


@pytest.mark.parametrize(
    ("char", "code"), [("\x07", "U+0007"), ("\x85", "U+0085"), ("\ufdd0", "U+FDD0")]
)
def test_a_control_character_or_noncharacter_in_a_page(
    demo_db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    site: Path,
    char: str,
    code: str,
) -> None:
    edit(site / POST, "<h1>", f"<h1>{char}")
    assert lines_of(demo_db, settings, now) == [
        f"ERROR site {POST}: a control character or noncharacter {code}, line N"
    ]


def test_a_page_that_is_not_utf8(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    path = site / POST
    data = path.read_bytes()
    path.write_bytes(data.replace(b"<h1>", b"<h1>\xff"))
    at = data.index(b"<h1>") + 4
    assert lines_of(demo_db, settings, now) == [
        f"ERROR site {POST}: not UTF-8 (invalid start byte at byte {at})"
    ]


def test_a_relative_url_that_leads_out_of_the_site(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(site / POST, "</article>", '<a href="../../../elsewhere/">Elsewhere</a></article>')
    assert lines_of(demo_db, settings, now) == [
        f"ERROR site {POST}: relative URL '../../../elsewhere/' leads outside the site, line N"
    ]


def test_a_root_relative_url_outside_a_site_that_lives_in_a_folder() -> None:
    base = "https://example.net/policy/"
    assert resolve("/blog/", "index.html", base) == ("leaves", None)
    assert resolve("/policy/feed.xml", "index.html", base) == ("file", "feed.xml")
    assert resolve("../", "posts/a/index.html", base) == ("file", "posts/index.html")
    assert resolve("../../", "posts/a/index.html", base) == ("file", "index.html")
    assert resolve("https://example.net/other/", "index.html", base) == ("external", None)
    assert resolve("https://example.net/policy/posts/a/", "index.html", base) == (
        "file",
        "posts/a/index.html",
    )
    assert resolve("mailto:a@example.net", "index.html", base) == ("external", None)
    assert resolve("#top", "index.html", base) == ("fragment", "top")
    assert resolve("topics/caf%C3%A9/", "index.html", base) == ("file", "topics/café/index.html")


def test_a_fragment_link_to_an_id_the_page_lacks(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(
        site / POST,
        "</article>",
        '<a href="#fn:1">1</a><p id="here">x</p><a href="#here">h</a></article>',
    )
    assert lines_of(demo_db, settings, now) == [
        f"WARN site {POST}: link to #fn:1, which is not on the page, line N"
    ]


def test_an_opml_outline_naming_a_feed_that_is_not_there(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(site / "feeds.opml", "topics/ietf/feed.xml", "topics/ietf/rss.xml")
    assert lines_of(demo_db, settings, now) == [
        "ERROR site feeds.opml: links to topics/ietf/rss.xml, which the site does not have "
        "(a 404), outline 'Public Policy: IETF'"
    ]


def test_no_site_built_yet(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    assert site_lines(demo_db, settings, now) == [
        f"ERROR site {settings.output_dir}: no site here: `policyfeed build` writes it"
    ]


# --- accessibility of the pages ----------------------------------------------------------------


def test_a_page_without_lang(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(site / POST, '<html lang="en">', "<html>")
    assert lines_of(demo_db, settings, now) == [
        f"ERROR a11y {POST}: no lang attribute on <html>: screen readers guess the language"
    ]


def test_a_heading_that_skips_a_level(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(site / POST, "</article>", "<h4>Deep</h4></article>")
    assert lines_of(demo_db, settings, now) == [
        f'WARN a11y {POST}: heading h4 follows h1, skipping a level, h4 "Deep"'
    ]


def test_link_texts_that_say_nothing(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    edit(
        site / POST,
        "</article>",
        '<a href="https://example.net/">Click here</a>. <a href="https://example.net/x"></a>'
        '<a href="https://example.net/y"><img src="https://example.net/y.png" alt="The treaty">'
        "</a></article>",
    )
    assert lines_of(demo_db, settings, now) == [
        f'WARN a11y {POST}: link text "Click here" says nothing out of context, https://example.net/',
        f"WARN a11y {POST}: link has no text (a screen reader reads out its URL), https://example.net/x",
    ]


def test_a_light_grey_text_colour_on_the_site(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    """A site template whose meta lines are light grey: every page shows them, one of each kind
    has its contrast computed."""
    from policyfeed.templating import template_environment

    source = template_environment(settings).loader.get_source(  # type: ignore[union-attr]
        template_environment(settings), "site/base.html"
    )[0]
    (tmp_path / "templates" / "site").mkdir(parents=True)
    grey = source.replace(".meta { color: #52606d;", ".meta { color: #aaaaaa;")
    assert grey != source
    (tmp_path / "templates" / "site" / "base.html").write_text(grey, encoding="utf-8")
    settings = build(demo_db, settings, now, templates_dir=tmp_path / "templates")
    lines = [line for line in lines_of(demo_db, settings, now) if "#aaaaaa on #ffffff" in line]
    assert lines[0] == (
        "ERROR a11y index.html: text #aaaaaa on #ffffff has a contrast of 2.32:1, below the 4.5:1 "
        'of WCAG AA (light scheme), p.meta "25 July 2012 · Public Policy team · Int…" '
        "(also posts/acta-and-tppa-a-coincidence-worth-exploring/index.html, "
        "topics/ietf/index.html)"
    )


# --- what the state spares --------------------------------------------------------------------


def test_a_second_check_reads_only_the_files_that_changed(
    demo_db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: list[str] = []
    analyse = policyfeed.check.run._analyse

    def counting(kind: str, rel: str, *args: object) -> dict:
        read.append(rel)
        return analyse(kind, rel, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(policyfeed.check.run, "_analyse", counting)
    first = lines_of(demo_db, settings, now)
    assert sorted(read) == readable(site)  # every page and feed of the demo
    read.clear()
    assert lines_of(demo_db, settings, now) == first
    assert read == []
    edit(site / POST, "</article>", "</article></span>")
    assert len(lines_of(demo_db, settings, now)) == 1
    assert read == [POST]
    # a broken page stays broken on the next check, without being read again
    read.clear()
    assert len(lines_of(demo_db, settings, now)) == 1
    assert read == []


def test_a_new_base_url_reads_every_file_again(
    demo_db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines_of(demo_db, settings, now)
    read: list[str] = []
    analyse = policyfeed.check.run._analyse
    monkeypatch.setattr(
        policyfeed.check.run,
        "_analyse",
        lambda kind, rel, *a: read.append(rel) or analyse(kind, rel, *a),
    )
    moved = dataclasses.replace(settings, base_url="https://policy.example.net/")
    lines = lines_of(demo_db, moved, now)
    assert sorted(read) == readable(site)
    assert "the rel=self link is https://policy.example.org/atom.xml" in " ".join(lines)


def test_the_check_writes_nothing_into_the_site(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    before = {p: p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}
    lines_of(demo_db, settings, now)
    assert {p: p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()} == before


def test_a_folder_this_database_does_not_build_is_checked_but_never_claimed(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path, tmp_path: Path
) -> None:
    from policyfeed.site.ownership import folder_key
    from policyfeed.store import build_state

    other = tmp_path / "somebody-elses-site"
    shutil.copytree(site, other)
    elsewhere = dataclasses.replace(settings, output_dir=other)
    assert lines_of(demo_db, elsewhere, now) == []
    assert not build_state.is_claimed(demo_db, folder_key(other))
    assert build_state.read(demo_db, folder_key(site), "check") is None  # nor checked there yet
    lines_of(demo_db, settings, now)
    assert build_state.read(demo_db, folder_key(site), "check") is not None


def test_after_a_build_the_check_reads_again_only_what_it_wrote(
    demo_db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What publish does: the build's result says which files changed."""
    from policyfeed.check.report import Report
    from policyfeed.check.run import check_site
    from policyfeed.site.build import build_site
    from policyfeed.store import posts as post_store
    from site_support import save

    lines_of(demo_db, settings, now)
    read: list[str] = []
    analyse = policyfeed.check.run._analyse
    monkeypatch.setattr(
        policyfeed.check.run,
        "_analyse",
        lambda kind, rel, *a: read.append(rel) or analyse(kind, rel, *a),
    )
    save(demo_db, settings, "a-new-post", date=now.replace(hour=9), body_html="<p>New.</p>")
    post_store.delete_post(demo_db, "beijing-treaty-on-audiovisual-performances")
    built = build_site(demo_db, settings, site, now)
    assert built.written and built.removed
    report = Report()
    check_site(report, demo_db, settings, site, now=now, built=built)
    wrote = sorted(p.relative_to(site).as_posix() for p in built.written)
    assert sorted(read) == [rel for rel in wrote if rel in readable(site)]
    assert "posts/a-new-post/index.html" in read
    # the removed post's page is gone from the list, and nothing links to it any more
    assert report.lines() == ["check: 0 errors, 0 warnings"]


def test_a_build_between_two_checks_is_seen_by_the_second_one(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, site: Path
) -> None:
    """The weekly run: publish checks the site, an editor adds a post and runs `policyfeed
    build` (no check), and the next publish's build then has nothing left to write. Its check
    must still know the new post's page (it was refused: "links to posts/… which the site does
    not have" and a feed history one post short)."""
    from policyfeed.check.report import Report
    from policyfeed.check.run import check_site
    from policyfeed.site.build import build_site
    from site_support import save

    assert lines_of(demo_db, settings, now) == []
    save(demo_db, settings, "a-new-post", date=now.replace(hour=9), body_html="<p>New.</p>")
    assert build_site(demo_db, settings, site, now).written  # `policyfeed build`
    built = build_site(demo_db, settings, site, now)  # publish's own build: nothing to do
    assert not built.written
    report = Report()
    check_site(report, demo_db, settings, site, now=now, built=built)
    assert report.lines() == ["check: 0 errors, 0 warnings"]


def test_a_build_killed_before_it_saved_its_state_is_seen_by_the_next_check(
    demo_db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A publish killed in its second build (its files written, its state not saved): the
    recovering publish's build renders the same bytes again, so it writes nothing."""
    import policyfeed.site.build
    from policyfeed.check.report import Report
    from policyfeed.check.run import check_site
    from policyfeed.site.build import build_site
    from site_support import save

    assert lines_of(demo_db, settings, now) == []
    save(demo_db, settings, "a-new-post", date=now.replace(hour=9), body_html="<p>New.</p>")

    def killed(*args: object) -> None:
        raise SystemExit("SIGKILL")

    with monkeypatch.context() as patch:
        patch.setattr(policyfeed.site.build, "save_state", killed)
        with pytest.raises(SystemExit):
            build_site(demo_db, settings, site, now)
    assert (site / "posts" / "a-new-post" / "index.html").exists()
    built = build_site(demo_db, settings, site, now)
    report = Report()
    check_site(report, demo_db, settings, site, now=now, built=built)
    assert report.lines() == ["check: 0 errors, 0 warnings"]
