"""policyfeed check, messages: each variant is built as delivery builds it (for a sample member)
and read back with the email package; each rule fires on a message that breaks it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import datetime

import pytest
import sqlite_utils

from policyfeed.check.message import check_message
from policyfeed.check.report import Report
from policyfeed.check.run import check_messages, render_variants, sample_message
from policyfeed.config import Settings
from policyfeed.digest.issues import plan_issue
from policyfeed.digest.mail import build_template
from policyfeed.digest.render import MESSAGE_PLACEHOLDERS, RenderedDigest, render_issue

TOKEN = MESSAGE_PLACEHOLDERS


@pytest.fixture
def digest(demo_db: sqlite_utils.Database, settings: Settings, now: datetime) -> RenderedDigest:
    """The demo's next issue, whole, as publish renders it."""
    planned = plan_issue(demo_db, settings, now=now)
    assert planned is not None
    return render_issue(*planned, settings)


def lines(
    digest: RenderedDigest,
    settings: Settings,
    now: datetime,
    *,
    placeholders: Mapping[str, str] = TOKEN,
    mutate: Callable[[bytes], bytes] | None = None,
) -> list[str]:
    template = build_template(
        digest, settings, issue_number=1, variant="", now=now, placeholders=placeholders
    )
    raw = sample_message(settings, template, "issue-1")
    report = Report()
    check_message(report, "issue-1", mutate(raw) if mutate else raw)
    return report.lines()


def sent_html_size(digest: RenderedDigest, settings: Settings, now: datetime) -> int:
    """The HTML part's size as a member gets it (the unsubscribe link filled in)."""
    from email import message_from_bytes, policy

    template = build_template(
        digest, settings, issue_number=1, variant="", now=now, placeholders=TOKEN
    )
    message = message_from_bytes(
        sample_message(settings, template, "issue-1"), policy=policy.default
    )
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return len(html.encode("utf-8"))


def changed(digest: RenderedDigest, old: str, new: str, **fields: str) -> RenderedDigest:
    assert old in digest.html, old
    return dataclasses.replace(digest, html=digest.html.replace(old, new), **fields)


def without_header(name: bytes) -> Callable[[bytes], bytes]:
    return lambda raw: re.sub(rb"(?m)^" + name + rb":.*\r\n(?:[ \t].*\r\n)*", b"", raw, count=1)


def test_every_variant_of_the_demo_issue_passes(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    planned = plan_issue(demo_db, settings, now=now)
    assert planned is not None
    report = Report()
    templates = render_variants(demo_db, settings, *planned, report, now=now)
    assert sorted(templates) == ["issue-1", "issue-1/switzerland", "issue-1/vancouver"]
    check_messages(report, settings, templates)
    # The Swiss chapter's subject is the one thing worth a word (issue #17's closing note).
    assert report.lines() == [
        "WARN message issue-1/switzerland: the subject is 100 characters long; inboxes cut it "
        'before 100, "Public Policy #1: Preparing for WCIT: as…"',
        "check: 0 errors, 1 warning",
    ]


def test_a_digest_padded_past_gmails_102_kb(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    padding = "<p>" + "padding text " * 7000 + "</p>"
    padded = changed(digest, "</body>", padding + "</body>")
    size = sent_html_size(padded, settings, now)
    assert lines(padded, settings, now) == [
        f"ERROR message issue-1: the HTML part is {size:,} bytes: Gmail clips it above 102,000 "
        "and hides the rest, the unsubscribe link with it",
        "check: 1 error, 0 warnings",
    ]


def test_a_digest_close_to_the_clipping_size(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    padded = changed(digest, "</body>", "<p>" + "padding text " * 6000 + "</p></body>")
    size = sent_html_size(padded, settings, now)
    assert 90_000 < size < 102_000
    assert lines(padded, settings, now) == [
        f"WARN message issue-1: the HTML part is {size:,} bytes, close to Gmail's 102,000",
        "check: 0 errors, 1 warning",
    ]


def test_an_empty_text_part(digest: RenderedDigest, settings: Settings, now: datetime) -> None:
    empty = dataclasses.replace(digest, text=" \n\n")
    assert lines(empty, settings, now)[0] == "ERROR message issue-1: the plain-text part is empty"


@pytest.mark.parametrize(
    ("header", "line"),
    [
        (b"From", "ERROR message issue-1: no From header"),
        (b"List-Unsubscribe", "ERROR message issue-1: no List-Unsubscribe header"),
        (
            b"List-Unsubscribe-Post",
            "ERROR message issue-1: no List-Unsubscribe-Post header (RFC 8058 one-click)",
        ),
    ],
)
def test_a_missing_header(
    digest: RenderedDigest, settings: Settings, now: datetime, header: bytes, line: str
) -> None:
    assert lines(digest, settings, now, mutate=without_header(header)) == [
        line,
        "check: 1 error, 0 warnings",
    ]


def test_a_one_click_header_that_says_something_else(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    def mutate(raw: bytes) -> bytes:
        return raw.replace(b"List-Unsubscribe=One-Click", b"yes")

    assert lines(digest, settings, now, mutate=mutate)[0] == (
        "ERROR message issue-1: List-Unsubscribe-Post must be 'List-Unsubscribe=One-Click', "
        "not 'yes'"
    )


def test_an_unsubscribe_url_that_is_not_https(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    plain = dataclasses.replace(settings, unsubscribe_url="http://policy.example.org/leave")
    [line, _] = lines(digest, plain, now)
    assert line.startswith(
        "ERROR message issue-1: List-Unsubscribe has no https URL, which one-click unsubscribe "
        "(RFC 8058) needs, <http://policy.example.org/leave?t="
    )


def test_a_garbled_unsubscribe_header(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    def mutate(raw: bytes) -> bytes:
        return re.sub(rb"List-Unsubscribe: <", b"List-Unsubscribe: ", raw, count=1)

    [line, _] = lines(digest, settings, now, mutate=mutate)
    assert line.startswith("ERROR message issue-1: List-Unsubscribe is not a list of <URL>s: ")


def test_links_and_images_a_mail_client_cannot_follow(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    broken = changed(
        digest,
        'href="https://policy.example.org/issues/1/"',
        'href="../issues/1/"',
    )
    broken = changed(
        broken,
        "</body>",
        '<a href="javascript:alert(1)">x</a><img src="logo.png">'
        '<img src="https://policy.example.org/logo.png"></body>',
    )
    assert lines(broken, settings, now) == [
        "ERROR message issue-1: link '../issues/1/' is not an absolute http(s) or mailto URL, "
        'a "View this issue in your browser"',
        "ERROR message issue-1: link 'javascript:alert(1)' is not an absolute http(s) or mailto "
        'URL, a "x"',
        "ERROR message issue-1: image 'logo.png' has no absolute http(s) src",
        "ERROR message issue-1: image 'logo.png' has no alt text",
        "ERROR message issue-1: image 'https://policy.example.org/logo.png' has no alt text",
        "check: 5 errors, 0 warnings",
    ]


def test_a_digest_without_a_preheader(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    bare = dataclasses.replace(
        digest, html=re.sub(r'<div class="preheader".*?</div>', "", digest.html, flags=re.S)
    )
    assert bare.html != digest.html
    assert lines(bare, settings, now) == [
        "WARN message issue-1: no preheader: inboxes show the first text of the message after "
        "the subject",
        "check: 0 errors, 1 warning",
    ]


def test_template_syntax_left_over(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    leftover = changed(
        digest,
        "Unsubscribe</a>",
        "Unsubscribe</a> Dear {{ first_name }}",
        text=digest.text + "\nHi *|FNAME|*\n",
    )
    assert lines(leftover, settings, now) == [
        "ERROR message issue-1: template syntax left over: '*|FNAME|*', text part",
        "ERROR message issue-1: template syntax left over: '{{ first_name }}', HTML part, "
        'p "Unsubscribe Dear {{ first_name }} · You…"',
        "check: 2 errors, 0 warnings",
    ]


def test_template_syntax_in_a_code_sample_is_content(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    sample = changed(digest, "</body>", "<pre><code>{{ site.title }}</code></pre></body>")
    assert lines(sample, settings, now) == ["check: 0 errors, 0 warnings"]


def test_an_unsubscribe_placeholder_that_delivery_did_not_fill(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    assert lines(digest, settings, now, placeholders={}) == [
        "ERROR message issue-1: template syntax left over: '%%UNSUBSCRIBE_URL%%', text part",
        "ERROR message issue-1: template syntax left over: '%%UNSUBSCRIBE_URL%%', HTML part, "
        'a.unsubscribe "Unsubscribe"',
        "ERROR message issue-1: link '%%UNSUBSCRIBE_URL%%' is not an absolute http(s) or mailto "
        'URL, a.unsubscribe "Unsubscribe"',
        "ERROR message issue-1: link '%%PREFERENCES_URL%%' is not an absolute http(s) or mailto "
        'URL, a "Your preferences"',
        "check: 4 errors, 0 warnings",
    ]


def test_stylesheets_that_are_never_loaded_and_css_that_clients_drop(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    styled = changed(
        digest,
        "</body>",
        '<div style="position: absolute; display: flex; background: linear-gradient(red, blue)">'
        "x</div></body>",
    )
    styled = changed(
        styled,
        "</style>",
        "@import url(https://x.example/a.css);\n.x { box-shadow: 0 0 1px red }</style>",
    )
    styled = changed(
        styled, "</head>", '<link rel="stylesheet" href="https://x.example/s.css"></head>'
    )
    assert lines(styled, settings, now) == [
        "ERROR message issue-1: a stylesheet link (https://x.example/s.css): mail clients never "
        "load it; put the CSS in the template's <style>",
        "ERROR message issue-1: @import in a <style> block: mail clients never load it",
        "WARN message issue-1: CSS property box-shadow is dropped by Gmail and Outlook for "
        "Windows (caniemail: css-box-shadow), .x",
        "WARN message issue-1: CSS property position is dropped by Gmail and Outlook for "
        'Windows (caniemail: css-position), div "x"',
        "WARN message issue-1: display: flex is dropped by Outlook for Windows (caniemail: "
        'css-display-flex), div "x"',
        "WARN message issue-1: linear-gradient() is dropped by Outlook for Windows (caniemail: "
        'css-linear-gradient), div "x"',
        "check: 2 errors, 4 warnings",
    ]


def test_a_long_subject_and_a_control_character_in_one(
    digest: RenderedDigest, settings: Settings, now: datetime
) -> None:
    long = dataclasses.replace(digest, subject="Public Policy " * 8)
    assert lines(long, settings, now)[0] == (
        "WARN message issue-1: the subject is 111 characters long; inboxes cut it before 100, "
        '"Public Policy Public Policy Public Polic…"'
    )
    bell = dataclasses.replace(digest, subject="Public Policy\x07 #1")
    assert lines(bell, settings, now)[0] == (
        "ERROR message issue-1: the subject holds a control character (U+0007)"
    )
