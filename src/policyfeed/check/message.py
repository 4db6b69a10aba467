"""Each variant of an issue as the message a member receives: read back with the ``email``
package and its HTML part with lxml, as a mail client would.

Errors are what breaks a message or the law: Gmail clipping it (and the unsubscribe link with
it), a missing part or header, links and images a client cannot follow, template syntax left
over, stylesheets that are never loaded, control characters in the subject. Warnings are what
makes it worse: close to the clipping size, a long subject, no preheader, CSS that Gmail or
Outlook drops.
"""

from __future__ import annotations

import logging
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from policyfeed.check import emailcss
from policyfeed.check.a11y import declarations, describe_element
from policyfeed.check.report import Report
from policyfeed.digest.render import CLIP_BYTES, PLACEHOLDERS, WARN_BYTES

if TYPE_CHECKING:
    import lxml.html

AREA = "message"
SUBJECT_CHARS = 100
ONE_CLICK = "List-Unsubscribe=One-Click"
#: Template syntax that should never reach a reader: Jinja's, the digest's own placeholders,
#: and the merge tags of other mailing tools (Mailchimp ``*|FNAME|*``, ``%%FIRSTNAME%%``).
LEFTOVER = re.compile(
    r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\{\{|\{%|"
    + "|".join(re.escape(p) for p in PLACEHOLDERS)
    + r"|\*\|[A-Z0-9_:]+\|\*|%%[A-Z][A-Z0-9_]*%%",
    re.S,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_IMPORT = re.compile(r"@import\b", re.I)
_ANGLE_ITEM = re.compile(r"\s*<([^<>]*)>\s*")


def check_message(report: Report, name: str, raw: bytes) -> None:
    """Add what is wrong with the message ``raw`` (the variant ``name``) to ``report``."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    _headers(report, name, message)
    text = message.get_body(("plain",))
    if text is None:
        report.error(AREA, name, "no plain-text part")
    else:
        content = text.get_content()
        if not content.strip():
            report.error(AREA, name, "the plain-text part is empty")
        _leftovers(report, name, content, "text part")
    html_part = message.get_body(("html",))
    if html_part is None:
        report.error(AREA, name, "no HTML part")
        return
    html = html_part.get_content()
    check_html(report, name, html)


def _headers(report: Report, name: str, message: EmailMessage) -> None:
    sender = message["From"]
    addresses = getattr(sender, "addresses", ()) if sender is not None else ()
    if not addresses:
        report.error(AREA, name, "no From header")
    elif not all(a.username and a.domain and "." in a.domain for a in addresses):
        report.error(AREA, name, f"the From header is not an address: {str(sender)!r}")

    subject = str(message["Subject"] or "")
    if not subject.strip():
        report.error(AREA, name, "no subject")
    elif _CONTROL.search(subject):
        char = _CONTROL.search(subject)
        assert char is not None
        report.error(
            AREA, name, f"the subject holds a control character (U+{ord(char.group()):04X})"
        )
    elif len(subject) >= SUBJECT_CHARS:
        report.warn(
            AREA,
            name,
            f"the subject is {len(subject)} characters long; inboxes cut it before {SUBJECT_CHARS}",
            f'"{subject[:40]}…"',
        )
    _leftovers(report, name, subject, "subject")

    unsubscribe = message["List-Unsubscribe"]
    if unsubscribe is None:
        report.error(AREA, name, "no List-Unsubscribe header")
    else:
        value = " ".join(str(unsubscribe).split())
        items = value.split(",")
        urls = [m.group(1) for item in items if (m := _ANGLE_ITEM.fullmatch(item))]
        if len(urls) != len(items) or not urls:
            report.error(AREA, name, f"List-Unsubscribe is not a list of <URL>s: {value!r}")
        elif not any(_is_https(url) for url in urls):
            report.error(
                AREA,
                name,
                "List-Unsubscribe has no https URL, which one-click unsubscribe (RFC 8058) needs",
                value,
            )
    post = message["List-Unsubscribe-Post"]
    if post is None:
        report.error(AREA, name, "no List-Unsubscribe-Post header (RFC 8058 one-click)")
    elif str(post).strip() != ONE_CLICK:
        report.error(AREA, name, f"List-Unsubscribe-Post must be {ONE_CLICK!r}, not {str(post)!r}")


def _is_https(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme == "https" and bool(parts.netloc)


def _leftovers(report: Report, name: str, text: str, where: str) -> None:
    match = LEFTOVER.search(text)
    if match:
        shown = " ".join(match.group().split())
        report.error(AREA, name, f"template syntax left over: {shown[:60]!r}", where)


def check_html(report: Report, name: str, html: str) -> None:
    """The rules for the HTML part of a message."""
    import lxml.html

    size = len(html.encode("utf-8"))
    if size >= CLIP_BYTES:
        report.error(
            AREA,
            name,
            f"the HTML part is {size:,} bytes: Gmail clips it above {CLIP_BYTES:,} and hides "
            "the rest, the unsubscribe link with it",
        )
    elif size > WARN_BYTES:
        report.warn(AREA, name, f"the HTML part is {size:,} bytes, close to Gmail's {CLIP_BYTES:,}")
    root = lxml.html.document_fromstring(html)
    _links_and_images(report, name, root)
    if not _has_preheader(root):
        report.warn(
            AREA,
            name,
            "no preheader: inboxes show the first text of the message after the subject",
        )
    _template_syntax(report, name, root)
    _stylesheets(report, name, root)


def _links_and_images(report: Report, name: str, root: lxml.html.HtmlElement) -> None:
    seen: set[str] = set()
    for element in root.iter("a", "area"):
        href = element.get("href")
        if href is None or href in seen:
            continue
        seen.add(href)
        parts = urlsplit(href.strip())
        if not (parts.scheme in ("http", "https") and parts.netloc) and parts.scheme != "mailto":
            report.error(
                AREA,
                name,
                f"link {href[:80]!r} is not an absolute http(s) or mailto URL",
                describe_element(element),
            )
    for image in root.iter("img"):
        src = image.get("src") or ""
        parts = urlsplit(src.strip())
        if not (parts.scheme in ("http", "https") and parts.netloc):
            report.error(AREA, name, f"image {src[:80]!r} has no absolute http(s) src")
        if image.get("alt") is None:
            report.error(AREA, name, f"image {src[:80]!r} has no alt text")


def _has_preheader(root: lxml.html.HtmlElement) -> bool:
    """A hidden block of text before anything visible, as inboxes read it."""
    body = root.find(".//body")
    if body is None:
        return False
    for element in body.iter():
        if element is body or not isinstance(element.tag, str):
            continue
        values = declarations(element.get("style", ""))
        hidden = values.get("display", ("", False))[0].strip().lower() == "none"
        text = " ".join(element.text_content().split()).strip("\u200c\u2007\ufeff\u034f ")
        if hidden and text:
            return True
        if (element.text or "").strip():
            return False  # visible text came first
    return False


def _template_syntax(report: Report, name: str, root: lxml.html.HtmlElement) -> None:
    for element in root.iter():
        if not isinstance(element.tag, str) or element.tag in ("style", "script"):
            continue
        in_code = any(a.tag in ("pre", "code") for a in element.iterancestors()) or element.tag in (
            "pre",
            "code",
        )
        texts = [] if in_code else [element.text or ""]
        texts.extend(child.tail or "" for child in element if not in_code)
        texts.extend(element.attrib.values())
        for text in texts:
            match = LEFTOVER.search(text)
            if match:
                shown = " ".join(match.group().split())
                report.error(
                    AREA,
                    name,
                    f"template syntax left over: {shown[:60]!r}",
                    f"HTML part, {describe_element(element)}",
                )
                return


def _stylesheets(report: Report, name: str, root: lxml.html.HtmlElement) -> None:
    import cssutils

    for link in root.iter("link"):
        if "stylesheet" in (link.get("rel") or "").lower().split():
            report.error(
                AREA,
                name,
                f"a stylesheet link ({link.get('href')}): mail clients never load it; put the "
                "CSS in the template's <style>",
            )
    flagged: set[str] = set()

    def flag(prop: str, value: str, where: str) -> None:
        for what, who, feature in emailcss.dropped(prop, value):
            if what not in flagged:
                flagged.add(what)
                report.warn(AREA, name, f"{what} is dropped by {who} (caniemail: {feature})", where)

    cssutils.log.setLevel(logging.CRITICAL)
    for style in root.iter("style"):
        css = style.text or ""
        if _IMPORT.search(css):
            report.error(AREA, name, "@import in a <style> block: mail clients never load it")
        for rule in cssutils.parseString(css, validate=False):
            inner = [rule] if rule.type == rule.STYLE_RULE else []
            if rule.type == rule.MEDIA_RULE:
                inner = [r for r in rule if r.type == r.STYLE_RULE]
            for style_rule in inner:
                for prop in style_rule.style:
                    flag(prop.name, prop.value, style_rule.selectorText)
    styles: dict[str, lxml.html.HtmlElement] = {}
    for element in root.iter():
        if isinstance(element.tag, str) and element.get("style"):
            styles.setdefault(element.get("style", ""), element)
    for style_text, element in styles.items():
        if _IMPORT.search(style_text):
            report.error(AREA, name, "@import in a style attribute", describe_element(element))
        for prop, (value, _important) in declarations(style_text).items():
            flag(prop, value, describe_element(element))
