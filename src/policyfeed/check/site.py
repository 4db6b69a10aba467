"""The pages in the output folder: each parses as HTML (html5lib, the WHATWG parsing rules
browsers follow), carries no control character, and every internal link and image resolves to a
file the build wrote; no relative URL leads out of the site.

A page is read once into :class:`PageFacts` (what it links to, what is wrong inside it); the
facts are kept between runs (:mod:`policyfeed.check.state`) so that only pages whose bytes
changed are parsed again. Whether a link's target exists is decided on every run, against the
files there now.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

from policyfeed.check import a11y
from policyfeed.check.report import ERROR, WARN, Report

if TYPE_CHECKING:
    import lxml.html

AREA = "site"
#: Paths the web application answers (``policyfeed serve`` or the WSGI app behind the site), not
#: files: links to them are not looked for in the output folder.
APP_ENDPOINTS = frozenset(
    {"unsubscribe", "subscribe", "confirm", "preferences", "healthz", "preview", "webhooks"}
)
# C0 controls but tab, LF and CR; DEL and C1; Unicode noncharacters. HTML calls each a parse
# error, and feed readers and mail clients show them as boxes or drop text around them.
_BAD_CHARACTER = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff"
    "\U0001fffe\U0001ffff\U0010fffe\U0010ffff]"
)
_URL_ATTRIBUTES = (
    ("a", "href"), ("area", "href"), ("link", "href"), ("img", "src"), ("script", "src"),
    ("source", "src"), ("iframe", "src"), ("video", "src"), ("video", "poster"),
    ("audio", "src"), ("track", "src"), ("embed", "src"), ("object", "data"),
)  # fmt: skip
#: Where a page's kind is read from its path: one page of each kind has its contrast computed.
_KINDS = (
    ("posts/", "posts/*"),
    ("topics/", "topics/*"),
    ("archive/", "archive/*"),
    ("issues/", "issues/*"),
)

Facts = dict[str, Any]


# --- URLs ------------------------------------------------------------------------------------


def page_kind(rel: str) -> str:
    """``posts/*`` for ``posts/a/index.html``; a page of its own kind otherwise."""
    if rel.count("/") >= 2:
        for prefix, kind in _KINDS:
            if rel.startswith(prefix):
                return kind
    return rel


def resolve(href: str, page: str, base_url: str) -> tuple[str, str | None]:
    """Where ``href`` on page ``page`` (a path in the output folder) leads:

    ``("external", None)``, ``("leaves", None)`` (a relative URL above the site's root),
    ``("fragment", id)`` for a link inside the page, ``("app", path)`` for an endpoint of the web
    application, or ``("file", path)`` with the path in the output folder it must exist at.
    """
    href = href.strip()
    parts = urlsplit(href)
    base = urlsplit(base_url)
    base_path = base.path if base.path.endswith("/") else base.path + "/"
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https", ""):
            return "external", None
        if (parts.hostname or "") != (base.hostname or "") or parts.port != base.port:
            return "external", None
        if not (parts.path + "/").startswith(base_path):
            return "external", None
        path = parts.path[len(base_path) :]
    elif not parts.path:
        return ("fragment", unquote(parts.fragment)) if parts.fragment else ("file", page)
    elif parts.path.startswith("/"):
        if not (parts.path + "/").startswith(base_path):
            return "leaves", None
        path = parts.path[len(base_path) :]
    else:
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(page), parts.path))
        if joined == ".." or joined.startswith("../"):
            return "leaves", None
        path = "" if joined == "." else joined
        if parts.path.endswith("/") or parts.path.endswith((".", "..")):
            path += "/" if path else ""
    path = unquote(path)
    if path.split("/", 1)[0] in APP_ENDPOINTS:
        return "app", path
    if path == "" or path.endswith("/"):
        path += "index.html"
    return "file", path


def exists(path: str, files: Mapping[str, object] | set[str]) -> bool:
    """True when ``path`` is a file the build wrote (or a folder with an index.html, which web
    servers serve for a link without its final slash)."""
    return path in files or f"{path}/index.html" in files


# --- reading a page --------------------------------------------------------------------------


def analyse_page(rel: str, data: bytes, base_url: str, *, contrast: bool = False) -> Facts:
    """What a page links to and what is wrong inside it. ``contrast``: also compute the contrast
    of its colours (once per kind of page: it costs an inlining)."""
    import lxml.html
    from lxml import etree

    findings: list[list[str]] = []
    facts: Facts = {"k": "page", "f": findings, "t": []}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        findings.append([ERROR, AREA, f"not UTF-8 ({exc.reason} at byte {exc.start})", ""])
        return facts
    bad = _BAD_CHARACTER.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        findings.append(
            [
                ERROR,
                AREA,
                f"a control character or noncharacter U+{ord(bad.group()):04X}",
                f"line {line}",
            ]
        )
    findings.extend(_parse_errors(data))
    try:
        root = lxml.html.document_fromstring(data)
    except (ValueError, etree.ParserError) as exc:
        findings.append([ERROR, AREA, f"no HTML document in it ({exc})", ""])
        return facts
    ids = {element.get("id") for element in root.iter() if element.get("id")}
    ids.update(element.get("name") for element in root.iter("a") if element.get("name"))
    targets: dict[str, list[str]] = {}
    for tag, attribute in _URL_ATTRIBUTES:
        for element in root.iter(tag):
            for value in _urls(element, attribute):
                _follow(value, element, rel, base_url, ids, targets, findings)
    facts["t"] = [[path, *where] for path, where in targets.items()]
    findings.extend(page_a11y(root))
    if contrast:
        facts["c"] = page_contrast(text)
    return facts


def _urls(element: lxml.html.HtmlElement, attribute: str) -> Iterable[str]:
    value = element.get(attribute)
    if value is not None and value.strip():
        yield value
    srcset = element.get("srcset") if attribute == "src" else None
    if srcset:
        for candidate in srcset.split(","):
            url = candidate.strip().split(" ")[0]
            if url:
                yield url


def _follow(
    href: str,
    element: lxml.html.HtmlElement,
    page: str,
    base_url: str,
    ids: set[str | None],
    targets: dict[str, list[str]],
    findings: list[list[str]],
) -> None:
    where = f"line {element.sourceline}"
    kind, path = resolve(href, page, base_url)
    if kind == "leaves":
        findings.append([ERROR, AREA, f"relative URL {href!r} leads outside the site", where])
    elif kind == "fragment" and path not in ids and path not in ("top", ""):
        findings.append([WARN, AREA, f"link to #{path}, which is not on the page", where])
    elif kind == "file" and path is not None and path != page:
        noun = "links to" if element.tag in ("a", "area", "link") else f"loads ({element.tag})"
        targets.setdefault(path, [where, noun])


def _parse_errors(data: bytes) -> list[list[str]]:
    import html5lib

    parser = html5lib.HTMLParser(strict=False, namespaceHTMLElements=False)
    parser.parse(data)
    # A bad character is reported with its real line by the character rule.
    errors = [e for e in parser.errors if e[1] != "invalid-codepoint"]
    if not errors:
        return []
    (line, column), code, _ = errors[0]
    more = f" and {len(errors) - 1} more" if len(errors) > 1 else ""
    return [[ERROR, AREA, f"does not parse as HTML: {code}{more}", f"line {line}, column {column}"]]


def page_a11y(root: lxml.html.HtmlElement) -> list[list[str]]:
    """lang, headings in order, link texts, image alt texts of one page (area a11y)."""
    found = []
    if a11y.missing_lang(root):
        found.append(
            [ERROR, "a11y", "no lang attribute on <html>: screen readers guess the language", ""]
        )
    for heading, previous, where in a11y.heading_skips(root):
        found.append(
            [WARN, "a11y", f"heading {heading} follows {previous}, skipping a level", where]
        )
    for what, href in a11y.unclear_links(root):
        found.append([WARN, "a11y", what, href])
    for image in root.iter("img"):
        if image.get("alt") is None:
            found.append([WARN, "a11y", "image without alt text", image.get("src") or ""])
    return found


def page_contrast(html: str) -> list[list[str]]:
    """The page's colour pairs below AA, as findings (its CSS inlined first, as for mail)."""
    import lxml.html
    import premailer

    # premailer applies the cascade (specificity, order) and writes the result inline, which is
    # what the contrast reading walks; the same settings as the digest's, never the network.
    inlined = premailer.Premailer(
        html,
        base_url=None,
        disable_link_rewrites=True,
        keep_style_tags=False,
        allow_network=False,
        allow_loading_external_files=False,
        remove_classes=False,
        strip_important=False,
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
    root = lxml.html.document_fromstring(str(inlined))
    return [[ERROR, "a11y", low.describe(), low.element] for low in a11y.low_contrast(root)]


# --- the rules over all pages -----------------------------------------------------------------


#: For a page, the links of the post bodies it shows: target path -> (post slug, the link).
BodyLinks = Callable[[str], Mapping[str, tuple[str, str]]]


def report_pages(
    report: Report,
    pages: Mapping[str, Facts],
    files: set[str],
    body_links: BodyLinks | None = None,
) -> None:
    """The findings inside each page, and its links to files that are not there.

    A missing target that a post body on the page links to (``body_links``) is the editor's
    link, often to a page of the same host that lives outside policyfeed (/about, /donate): a
    warning naming the post and the link. Any other missing target is a link the templates
    wrote to a page the build should have made: an error."""
    for rel in sorted(pages):
        facts = pages[rel]
        for level, area, what, where in facts["f"]:
            report.add(level, area, rel, what, where)
        for level, area, what, where in facts.get("c", ()):
            report.add(level, area, rel, what, where)
        missing = [t for t in facts["t"] if not exists(t[0], files)]
        in_bodies = body_links(rel) if missing and body_links is not None else {}
        for path, where, *noun in missing:  # OPML outlines and feeds name no noun
            if path in in_bodies:
                slug, link = in_bodies[path]
                report.warn(AREA, rel, f"post {slug} links to {link}, {_NOT_BUILT}", where)
                continue
            what = f"{noun[0] if noun else 'links to'} {path}, which the site does not have"
            report.error(AREA, rel, f"{what} (a 404)", where)


_NOT_BUILT = "which policyfeed does not build (fine for a page of yours outside it, else a 404)"


def body_targets(slug: str, body_html: str, page: str, base_url: str) -> dict[str, tuple[str, str]]:
    """The files of the site that the body of post ``slug`` links to or loads, as shown on
    ``page``: target path -> (slug, the absolute link). A link stored relative to the site
    (``./about``) is read against ``base_url``."""
    import lxml.html
    from lxml import etree

    found: dict[str, tuple[str, str]] = {}
    if not body_html.strip():
        return found
    try:
        root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    except (ValueError, etree.ParserError):
        return found
    for tag, attribute in _URL_ATTRIBUTES:
        for element in root.iter(tag):
            for value in _urls(element, attribute):
                link = urljoin(base_url, value.strip())
                kind, path = resolve(link, page, base_url)
                if kind == "file" and path is not None:
                    found.setdefault(path, (slug, link))
    return found
