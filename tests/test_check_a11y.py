"""policyfeed check, accessibility: contrast at WCAG AA from the template's CSS in the light and
the dark scheme, lang, headings in order, link texts; on the digest template tried whole."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import lxml.html
import pytest
import sqlite_utils

from policyfeed.check import a11y
from policyfeed.check.report import Report
from policyfeed.check.run import check_digest_template
from policyfeed.config import Settings
from policyfeed.digest.issues import plan_issue

ROOT = Path(__file__).resolve().parent.parent
DIGEST = (ROOT / "templates" / "email" / "digest.html").read_text(encoding="utf-8")


def template_lines(
    db: sqlite_utils.Database, settings: Settings, now: datetime, source: str, folder: Path
) -> list[str]:
    """The a11y findings of the digest template ``source`` (a site's override of the default)."""
    (folder / "email").mkdir(parents=True, exist_ok=True)
    (folder / "email" / "digest.html").write_text(source, encoding="utf-8")
    settings = dataclasses.replace(settings, templates_dir=folder)
    planned = plan_issue(db, settings, now=now)
    assert planned is not None
    report = Report()
    check_digest_template(report, settings, *planned)
    return report.lines()


def edited(old: str, new: str) -> str:
    assert old in DIGEST, old
    return DIGEST.replace(old, new, 1)


# --- the arithmetic -------------------------------------------------------------------------


def test_contrast_ratios_are_wcags() -> None:
    white, black = (255, 255, 255), (0, 0, 0)
    assert a11y.contrast_ratio(black, white) == pytest.approx(21.0)
    assert round(a11y.contrast_ratio((0x77, 0x77, 0x77), white), 2) == 4.48  # just fails AA
    assert round(a11y.contrast_ratio((0x76, 0x76, 0x76), white), 2) == 4.54  # just passes
    assert a11y.contrast_ratio(white, black) == a11y.contrast_ratio(black, white)


@pytest.mark.parametrize(
    ("value", "colour"),
    [
        ("#fff", (255, 255, 255)),
        ("#1F2933", (31, 41, 51)),
        ("#1f2933 !important", (31, 41, 51)),
        ("rgb(10, 20, 30)", (10, 20, 30)),
        ("rgb(100%, 0%, 0%)", (255, 0, 0)),
        ("rgba(0, 0, 0, 1)", (0, 0, 0)),
        ("rgba(0, 0, 0, 0.5)", None),
        ("#00000080", None),
        ("transparent", None),
        ("lightgrey", (211, 211, 211)),
        ("var(--ink)", None),
    ],
)
def test_colours_are_read_as_css_writes_them(
    value: str, colour: tuple[int, int, int] | None
) -> None:
    assert a11y.parse_colour(value) == colour


def test_large_text_needs_only_three_to_one() -> None:
    html = (
        '<html lang="en"><body style="background-color:#ffffff">'
        '<p style="color:#888888;font-size:24px">Large</p>'
        '<p style="color:#888888;font-size:19px;font-weight:bold">Large and bold</p>'
        '<p style="color:#888888;font-size:19px">Not large</p>'
        '<p style="color:#888888;font-size:1px;max-height:0;overflow:hidden">Hidden</p>'
        '<div style="display:none"><p style="color:#eeeeee">Hidden too</p></div>'
        "</body></html>"
    )
    found = a11y.low_contrast(lxml.html.document_fromstring(html))
    assert [(f.element, f.needed) for f in found] == [('p "Not large"', 4.5)]


def test_the_dark_scheme_applies_important_rules_over_inline_styles() -> None:
    html = (
        '<html lang="en"><head><style>@media (prefers-color-scheme: dark) {'
        " .box { background-color: #111111 !important; } .soft { color: #000000; } }"
        '</style></head><body><div class="box" style="background-color:#ffffff">'
        '<p style="color:#333333">Dark on dark</p></div>'
        '<div style="background-color:#000000"><p class="soft" style="color:#ffffff">Inline '
        "wins</p></div></body></html>"
    )
    found = a11y.low_contrast(lxml.html.document_fromstring(html))
    assert [f.describe() + " " + f.element for f in found] == [
        "text #333333 on #111111 has a contrast of 1.49:1, below the 4.5:1 of WCAG AA (dark "
        'scheme) p "Dark on dark"'
    ]


# --- the digest template ----------------------------------------------------------------------


def test_the_default_digest_template_passes(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    assert template_lines(demo_db, settings, now, DIGEST, tmp_path) == [
        "check: 0 errors, 0 warnings"
    ]


def test_a_light_grey_text_colour(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    footer = ".footer { padding: 20px 24px 28px 24px; font-size: 12px; line-height: 18px; "
    grey = edited(footer + "color: #616e7c; }", footer + "color: #bbbbbb; }")
    assert template_lines(demo_db, settings, now, grey, tmp_path) == [
        "ERROR a11y email/digest.html: text #bbbbbb on #ffffff has a contrast of 1.92:1, below "
        'the 4.5:1 of WCAG AA (light scheme), p "You receive the Public Policy digest as…"',
        "ERROR a11y email/digest.html: text #bbbbbb on #ffffff has a contrast of 1.92:1, below "
        'the 4.5:1 of WCAG AA (light scheme), p.postal-address "Public Policy team, 1775 Wiehle '
        'Avenue,…"',
        "check: 2 errors, 0 warnings",
    ]


def test_the_note_label_in_dark_mode_as_it_was(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    """The default template before the check found it: the note's label kept its light colour
    on the dark note box. The demo issue has no note; the template is tried with one."""
    before = edited("  .note-label { color: #f0c94d !important; }\n", "")
    assert template_lines(demo_db, settings, now, before, tmp_path) == [
        "ERROR a11y email/digest.html: text #8a6d00 on #2b2612 has a contrast of 3.07:1, below "
        'the 4.5:1 of WCAG AA (dark scheme), p.note-label "From the editor"',
        "check: 1 error, 0 warnings",
    ]


def test_a_template_without_lang_with_a_heading_skip_and_a_click_here_link(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path
) -> None:
    source = edited('<html lang="{{ site.language }}" dir="{{ site.dir }}">', '<html dir="ltr">')
    source = source.replace(
        '{{ _("View this issue in your browser") }}</a>', "Click here</a> to read it online"
    )
    source = source.replace('<td class="cell footer">', '<td class="cell footer">\n<h4>About</h4>')
    assert template_lines(demo_db, settings, now, source, tmp_path) == [
        "ERROR a11y email/digest.html: no lang attribute on <html>: screen readers guess the "
        "language",
        'WARN a11y email/digest.html: heading h4 follows h2, skipping a level, h4 "About"',
        'WARN a11y email/digest.html: link text "Click here" says nothing out of context, '
        "https://policy.example.org/issues/1/",
        "check: 1 error, 2 warnings",
    ]
