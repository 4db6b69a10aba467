"""Plain text for the digest's text part: wrapping at 78 columns, underlined headings, and
post bodies turned from HTML into paragraphs, lists and quotes with their links listed as [n]."""

from __future__ import annotations

import re
import textwrap
import unicodedata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import lxml.html

TEXT_WIDTH = 78
_LINK_SCHEMES = ("http", "https", "mailto")


def display_width(text: str) -> int:
    """Columns a terminal or mail reader gives ``text`` (wide East Asian and emoji count 2)."""
    return sum(
        0
        if unicodedata.combining(ch)
        else 2
        if unicodedata.east_asian_width(ch) in ("W", "F")
        else 1
        for ch in text
    )


def wrap_text(
    text: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None
) -> str:
    """Wrap each line of ``text`` at ``width``; long words (URLs) are never broken."""
    out: list[str] = []
    for line in str(text).splitlines() or [""]:
        if not line.strip():
            out.append("")
            continue
        out.append(
            textwrap.fill(
                line.strip(),
                width=width,
                initial_indent=indent if first is None or out else first,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(out)


def text_heading(text: str, char: str = "=") -> str:
    """``text`` wrapped, then underlined with ``char`` as wide as its longest line."""
    wrapped = wrap_text(text)
    width = max((display_width(line) for line in wrapped.splitlines()), default=0)
    return f"{wrapped}\n{char * min(width, TEXT_WIDTH)}"


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:–—-") + "…"


# A block that ends like this is prose; one that does not is a heading, a table cell, a line of
# code or a caption, which an excerpt neither runs into the sentences before it nor starts with.
_SENTENCE_END = re.compile(r"[.!?…:;][\"'”’»)\]]*$")
_LAST_SENTENCE = re.compile(r"[.!?…][\"'”’»)\]]*(?=\s)")


def excerpt(text: str, limit: int) -> str:
    """The start of a post's text (one block a line, as ``body_text`` keeps it) for a summary:
    its leading whole prose blocks that fit in ``limit`` characters, skipping headings before
    the first one and stopping at the next block that is not prose; a first block too long is
    cut at its last sentence that fits, else at a word. Ends with an ellipsis when text is left
    out."""
    blocks = [" ".join(line.split()) for line in text.splitlines()]
    blocks = [block for block in blocks if block]
    if len(blocks) == 1 and len(blocks[0]) <= limit:
        return blocks[0]
    prose = [i for i, block in enumerate(blocks) if _SENTENCE_END.search(block)]
    start = prose[0] if prose else 0
    room = limit - 2  # for " …"
    taken: list[str] = []
    for block in blocks[start:]:
        if taken and (not _SENTENCE_END.search(block) or len(" ".join([*taken, block])) > room):
            break
        taken.append(block)
        if not _SENTENCE_END.search(block):
            break
    whole = " ".join(taken)
    if len(whole) <= room:
        return whole if start + len(taken) == len(blocks) else whole + " …"
    cut = whole[: limit - 1]  # one block, too long
    sentences = [m.end() for m in _LAST_SENTENCE.finditer(cut) if m.end() <= room]
    if sentences and sentences[-1] >= limit // 3:
        return cut[: sentences[-1]] + " …"
    return shorten(whole, limit)


def tidy_text(text: str) -> str:
    """Lines without trailing blanks, at most one empty line in a row, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


_BLOCKS = {
    "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre",
    "table", "thead", "tbody", "tfoot", "tr", "figure", "figcaption", "hr", "dl", "dt", "dd",
    "caption",
}  # fmt: skip


def absolute_link(href: str | None) -> bool:
    """True for an absolute http(s) URL with a host, or a mailto: address."""
    if not href:
        return False
    parts = urlsplit(href)
    return parts.scheme in _LINK_SCHEMES and (parts.scheme == "mailto" or bool(parts.netloc))


def html_fragment(html: str) -> lxml.html.HtmlElement:
    """An HTML fragment parsed inside one <div>."""
    import lxml.html

    return lxml.html.fragment_fromstring(html or "", create_parent="div")


class _TextWriter:
    """Plain text of an HTML fragment: paragraphs, lists, quotes; links listed as [n]."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.links: list[str] = []
        self._inline: list[str] = []
        self._marker: str | None = None  # a list item's "- " or "2. ", for its first line

    def _link_ref(self, href: str) -> int:
        if href not in self.links:
            self.links.append(href)
        return self.links.index(href) + 1

    def _flush(self, indent: str) -> None:
        text = "".join(self._inline)
        self._inline = []
        lines = [" ".join(line.split()) for line in text.split("\n")]
        text = "\n".join(line for line in lines if line)
        if text:
            self.blocks.append(wrap_text(text, indent=indent, first=self._marker))
            self._marker = None

    def _inline_element(self, el: Any) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == "br":
            self._inline.append("\n")
        elif tag == "img":
            alt = " ".join((el.get("alt") or "").split())
            if alt:
                self._inline.append(f"[{alt}]")
        elif tag:
            start = len(self._inline)
            self._inline.append(el.text or "")
            for child in el:
                self._inline_element(child)
                self._inline.append(child.tail or "")
            href = el.get("href") if tag == "a" else None
            if href and absolute_link(href):
                label = " ".join("".join(self._inline[start:]).split())
                bare = href.removeprefix("mailto:")
                if label in (href, bare, href.rstrip("/")):
                    del self._inline[start:]
                    self._inline.append(bare)
                else:
                    self._inline.append(f" [{self._link_ref(href)}]")

    def walk(self, el: Any, indent: str = "") -> None:
        """Write the content of ``el``: inline runs become wrapped paragraphs."""
        self._inline.append(el.text or "")
        number = int(el.get("start", "1") or 1) if el.tag == "ol" else 1
        for child in el:
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag not in _BLOCKS:
                self._inline_element(child)
            else:
                self._flush(indent)
                if tag == "hr":
                    self.blocks.append(indent + "* * *")
                elif tag == "pre":
                    code = child.text_content().rstrip("\n")
                    self.blocks.append("\n".join(indent + line for line in code.split("\n")))
                elif tag == "li":
                    marker = f"{number}. " if el.tag == "ol" else "- "
                    number += 1
                    self._marker = indent + marker
                    self.walk(child, indent + " " * len(marker))
                    self._marker = None
                elif tag == "blockquote":
                    self.walk(child, indent + "> ")
                elif tag == "tr":
                    cells = [" ".join(c.text_content().split()) for c in child]
                    self.blocks.append(wrap_text(" | ".join(c for c in cells if c), indent=indent))
                else:
                    self.walk(child, indent)
            self._inline.append(child.tail or "")
        self._flush(indent)

    def text(self) -> str:
        return "\n\n".join(self.blocks)


def html_to_mail_text(body_html: str) -> tuple[str, list[str]]:
    """Wrapped plain text of a post body and the links it references as [1], [2]…"""
    writer = _TextWriter()
    writer.walk(html_fragment(body_html))
    return writer.text(), writer.links
