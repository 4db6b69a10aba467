"""Accessibility of what the templates produce: ``lang`` set, headings in order, link text that
says where it goes, and text/background contrast at WCAG 2.x AA in the light and the dark scheme.

Contrast is computed from the CSS as a mail client or browser applies it: on a document whose
stylesheet was inlined (a digest as sent, or a page run through the same inliner), each element
with text takes its colour from itself or its ancestors, and its background from the nearest
ancestor that paints one. The dark scheme adds the rules of ``@media (prefers-color-scheme:
dark)`` over the inline styles (``!important`` ones win, as in a browser).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import lxml.html

# WCAG 2.2, 1.4.3: 4.5:1 for text, 3:1 for large text (24px, or 18.66px when bold).
AA_NORMAL = 4.5
AA_LARGE = 3.0
LARGE_PX = 24.0
LARGE_BOLD_PX = 18.66

LIGHT, DARK = "light", "dark"
# What a client shows where the author set nothing.
_DEFAULT = {LIGHT: ((0, 0, 0), (255, 255, 255)), DARK: ((255, 255, 255), (18, 18, 18))}
_LINK_BLUE = (0, 0, 238)
_HEADING_PX = {"h1": 32.0, "h2": 24.0, "h3": 18.72, "h4": 16.0, "h5": 13.28, "h6": 10.72}
_BOLD_TAGS = {"b", "strong", "th", *_HEADING_PX}
_SKIP_TAGS = {"head", "title", "style", "script", "noscript", "template"}
#: Link texts that say nothing out of context (WCAG 2.4.4), compared lower-case without
#: surrounding punctuation or arrows.
VAGUE_LINK_TEXT = frozenset(
    {"click here", "click", "here", "click this", "this", "link", "this link", "more",
     "read more", "learn more", "more info", "go", "details"}
)  # fmt: skip

# The CSS colour keywords (CSS Color 4); enough of them for real templates.
NAMED_COLOURS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "red": (255, 0, 0), "green": (0, 128, 0),
    "blue": (0, 0, 255), "yellow": (255, 255, 0), "gray": (128, 128, 128),
    "grey": (128, 128, 128), "silver": (192, 192, 192), "lightgray": (211, 211, 211),
    "lightgrey": (211, 211, 211), "darkgray": (169, 169, 169), "darkgrey": (169, 169, 169),
    "gainsboro": (220, 220, 220), "whitesmoke": (245, 245, 245), "dimgray": (105, 105, 105),
    "dimgrey": (105, 105, 105), "navy": (0, 0, 128), "maroon": (128, 0, 0),
    "purple": (128, 0, 128), "teal": (0, 128, 128), "olive": (128, 128, 0),
    "orange": (255, 165, 0), "lime": (0, 255, 0), "aqua": (0, 255, 255),
    "cyan": (0, 255, 255), "fuchsia": (255, 0, 255), "magenta": (255, 0, 255),
    "ivory": (255, 255, 240), "beige": (245, 245, 220), "linen": (250, 240, 230),
    "snow": (255, 250, 250), "ghostwhite": (248, 248, 255), "aliceblue": (240, 248, 255),
}  # fmt: skip
_HEX = re.compile(r"#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})\b")
_RGB = re.compile(
    r"rgba?\(\s*([\d.]+%?)[\s,]+([\d.]+%?)[\s,]+([\d.]+%?)(?:\s*[,/]\s*([\d.]+%?))?\s*\)"
)
_PX = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(px|pt|em|rem|%)(?![\w])")

RGB = tuple[int, int, int]


# --- colours ----------------------------------------------------------------------------------


def parse_colour(value: str) -> RGB | None:
    """An opaque sRGB colour from a CSS value (hex, rgb(), a keyword), or None: transparent,
    translucent, or nothing we can read (a gradient, a variable)."""
    text = value.strip().lower().replace("!important", "").strip()
    match = _HEX.fullmatch(text)
    if match:
        digits = match.group(1)
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        if len(digits) == 8 and digits[6:] != "ff":
            return None
        return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    match = _RGB.fullmatch(text)
    if match:
        alpha = match.group(4)
        if alpha is not None and _channel(alpha, 1.0) < 1.0:
            return None
        r, g, b = (round(_channel(match.group(i), 255.0)) for i in (1, 2, 3))
        return (min(r, 255), min(g, 255), min(b, 255))
    return NAMED_COLOURS.get(text)


def _channel(text: str, scale: float) -> float:
    return float(text[:-1]) / 100 * scale if text.endswith("%") else float(text)


def background_colour(value: str) -> RGB | None:
    """The colour in a ``background`` shorthand (``#fff url(x.png) no-repeat``)."""
    if "gradient(" in value or "var(" in value:
        return None
    for token in re.findall(r"#[0-9a-fA-F]+|rgba?\([^)]*\)|[a-zA-Z]+", value):
        colour = parse_colour(token)
        if colour is not None:
            return colour
    return None


def hex_colour(colour: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def luminance(colour: RGB) -> float:
    """Relative luminance (WCAG 2.x)."""

    def linear(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# --- CSS declarations ------------------------------------------------------------------------


def declarations(style: str) -> dict[str, tuple[str, bool]]:
    """``prop: value`` pairs of a style attribute (lower-case names; (value, important)).
    Semicolons inside quotes or parentheses (``url(data:…;…)``) do not split."""
    found: dict[str, tuple[str, bool]] = {}
    for part in _split_declarations(style):
        name, colon, value = part.partition(":")
        if not colon:
            continue
        value = value.strip()
        important = bool(re.search(r"!\s*important\s*$", value, re.I))
        if important:
            value = re.sub(r"\s*!\s*important\s*$", "", value, flags=re.I)
        found[name.strip().lower()] = (value, important)
    return found


def _split_declarations(style: str) -> Iterator[str]:
    depth, quote, start = 0, "", 0
    for index, char in enumerate(style):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif char == ";" and depth == 0:
            yield style[start:index]
            start = index + 1
    yield style[start:]


@dataclass(frozen=True)
class DarkRule:
    selector: str
    specificity: tuple[int, int, int]
    order: int
    values: dict[str, tuple[str, bool]]


def dark_rules(root: lxml.html.HtmlElement) -> list[DarkRule]:
    """The rules inside ``@media (prefers-color-scheme: dark)`` of the document's <style>
    blocks, in cascade order (specificity, then source order)."""
    import cssselect
    import cssutils

    cssutils.log.setLevel(logging.CRITICAL)
    rules: list[DarkRule] = []
    for style in root.iter("style"):
        sheet = cssutils.parseString(style.text or "", validate=False)
        for rule in sheet:
            if rule.type != rule.MEDIA_RULE:
                continue
            media = rule.media.mediaText.replace(" ", "").lower()
            if "prefers-color-scheme:dark" not in media:
                continue
            for inner in rule:
                if inner.type != inner.STYLE_RULE:
                    continue
                values = {p.name.lower(): (p.value, p.priority == "important") for p in inner.style}
                for selector in inner.selectorList:
                    text = selector.selectorText
                    try:
                        specificity = cssselect.parse(text)[0].specificity()
                    except Exception:  # a selector cssselect cannot read: not applied
                        continue
                    rules.append(DarkRule(text, specificity, len(rules), values))
    rules.sort(key=lambda r: (r.specificity, r.order))
    return rules


def _matches(
    root: lxml.html.HtmlElement, rules: list[DarkRule]
) -> dict[lxml.html.HtmlElement, list[DarkRule]]:
    from lxml.cssselect import CSSSelector

    # Keyed by the element itself: holding it keeps lxml's proxy (and so its identity) alive.
    matched: dict[lxml.html.HtmlElement, list[DarkRule]] = {}
    for rule in rules:
        try:
            selector = CSSSelector(rule.selector, translator="html")
        except Exception:  # pseudo-classes and the like: a browser applies them on interaction
            continue
        for element in selector(root):
            matched.setdefault(element, []).append(rule)
    return matched


# --- contrast --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LowContrast:
    scheme: str
    text: RGB
    background: RGB
    ratio: float
    needed: float
    element: str  # tag.class and the start of its text

    def describe(self) -> str:
        return (
            f"text {hex_colour(self.text)} on {hex_colour(self.background)} has a contrast of "
            f"{self.ratio:.2f}:1, below the {self.needed:g}:1 of WCAG AA ({self.scheme} scheme)"
        )


@dataclass
class _State:
    colour: RGB | None
    background: RGB | None
    size: float
    bold: bool
    hidden: bool


def low_contrast(root: lxml.html.HtmlElement) -> list[LowContrast]:
    """Every (scheme, text colour, background) below AA, once per kind of element, in document
    order. ``root`` is a whole document whose CSS is inlined."""
    rules = dark_rules(root)
    found: list[LowContrast] = []
    # Once per (colours, kind of element): a pair the dark scheme leaves as it is was reported
    # for the light one already.
    seen: set[tuple[RGB, RGB, str]] = set()
    for scheme in (LIGHT, DARK):
        matched = _matches(root, rules) if scheme == DARK else {}
        body = root.find(".//body")
        start = body if body is not None else root
        state = _State(None, None, 16.0, False, False)
        for ancestor in reversed(list(start.iterancestors())):
            state = _apply(ancestor, state, scheme, matched)
        for element, current in _walk(start, state, scheme, matched):
            result = _judge(element, current, scheme)
            if result is None:
                continue
            key = (result.text, result.background, result.element.split(" ")[0])
            if key not in seen:
                seen.add(key)
                found.append(result)
    return found


def _walk(
    element: lxml.html.HtmlElement,
    parent: _State,
    scheme: str,
    matched: dict[lxml.html.HtmlElement, list[DarkRule]],
) -> Iterator[tuple[lxml.html.HtmlElement, _State]]:
    if not isinstance(element.tag, str) or element.tag in _SKIP_TAGS:
        return
    state = _apply(element, parent, scheme, matched)
    if state.hidden:
        return
    yield element, state
    for child in element:
        yield from _walk(child, state, scheme, matched)


def _apply(
    element: lxml.html.HtmlElement,
    parent: _State,
    scheme: str,
    matched: dict[lxml.html.HtmlElement, list[DarkRule]],
) -> _State:
    values = declarations(element.get("style", ""))
    from_sheet: set[str] = set()
    for rule in matched.get(element, ()):  # in cascade order: a later one wins a tie
        for name, (value, important) in rule.values.items():
            current = values.get(name)
            inline = current is not None and name not in from_sheet
            if (
                current is None
                or (inline and important and not current[1])
                or (not inline and (important or not current[1]))
            ):
                values[name] = (value, important)
                from_sheet.add(name)
    colour = parent.colour
    if "color" in values:
        colour = parse_colour(values["color"][0]) or colour
    elif element.get("color"):  # <font color>
        colour = parse_colour(element.get("color", "")) or colour
    if element.tag == "a" and element.get("href") is not None and "color" not in values:
        colour = _LINK_BLUE if scheme == LIGHT else None
    background = parent.background
    painted = None
    if "background-color" in values:
        painted = parse_colour(values["background-color"][0])
    elif "background" in values:
        painted = background_colour(values["background"][0])
    elif element.get("bgcolor"):
        painted = parse_colour(element.get("bgcolor", ""))
    if painted is not None:
        background = painted
    size = _HEADING_PX.get(str(element.tag), parent.size)
    for name in ("font-size", "font"):
        if name in values:
            size = _font_size(values[name][0], parent.size) or size
            break
    bold = parent.bold or element.tag in _BOLD_TAGS
    weight = values.get("font-weight", ("", False))[0].lower()
    if weight:
        bold = weight in ("bold", "bolder") or (weight.isdigit() and int(weight) >= 600)
    hidden = parent.hidden or _hides(values)
    return _State(colour, background, size, bold, hidden)


def _font_size(value: str, parent: float) -> float | None:
    match = _PX.search(value)
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2)
    if unit == "px":
        return number
    if unit == "pt":
        return number * 4 / 3
    if unit in ("em", "rem"):
        return number * (parent if unit == "em" else 16.0)
    return number / 100 * parent


def _hides(values: dict[str, tuple[str, bool]]) -> bool:
    def value(name: str) -> str:
        return values.get(name, ("", False))[0].strip().lower()

    if value("display") == "none" or value("visibility") == "hidden":
        return True
    if value("opacity") in ("0", "0.0"):
        return True
    if value("mso-hide") == "all":
        return True
    return value("max-height") in ("0", "0px") and value("overflow") == "hidden"


def _own_text(element: lxml.html.HtmlElement) -> str:
    parts = [element.text or ""]
    parts.extend(child.tail or "" for child in element)
    return " ".join(" ".join(parts).split())


def _judge(element: lxml.html.HtmlElement, state: _State, scheme: str) -> LowContrast | None:
    text = _own_text(element)
    if not text or not any(c.isalnum() for c in text):
        return None
    default_text, default_background = _DEFAULT[scheme]
    if state.colour is None and element.tag == "a" and scheme == DARK:
        return None  # a client's own link colour in dark mode: not the template's
    colour = state.colour or default_text
    background = state.background or default_background
    if scheme == DARK and state.colour is None and state.background is None:
        return None
    ratio = contrast_ratio(colour, background)
    large = state.size >= LARGE_PX or (state.bold and state.size >= LARGE_BOLD_PX)
    needed = AA_LARGE if large else AA_NORMAL
    if round(ratio, 2) >= needed:
        return None
    return LowContrast(scheme, colour, background, ratio, needed, describe_element(element))


def describe_element(element: lxml.html.HtmlElement, text: str = "") -> str:
    """``p.note-label "From the editor"``: how a finding points at an element."""
    classes = ".".join(element.get("class", "").split())
    name = str(element.tag) + (f".{classes}" if classes else "")
    text = text or " ".join(element.text_content().split())
    if len(text) > 40:
        text = text[:39].rstrip() + "…"
    return f'{name} "{text}"' if text else name


# --- structure -------------------------------------------------------------------------------


def missing_lang(root: lxml.html.HtmlElement) -> bool:
    html = root if root.tag == "html" else root.find(".//html")
    return html is None or not (html.get("lang") or "").strip()


def heading_skips(root: lxml.html.HtmlElement) -> list[tuple[str, str, str]]:
    """(heading, the one before it, where) for each heading that skips a level going down."""
    skips = []
    previous: str | None = None
    for element in root.iter("h1", "h2", "h3", "h4", "h5", "h6"):
        tag = str(element.tag)
        if previous is not None and int(tag[1]) > int(previous[1]) + 1:
            skips.append((tag, previous, describe_element(element)))
        previous = tag
    return skips


def link_text(element: lxml.html.HtmlElement) -> str:
    """What a screen reader announces for a link: its text, image alt texts, or aria-label."""
    label = (element.get("aria-label") or "").strip()
    if label:
        return label
    parts = [element.text or ""]
    for child in element.iter():
        if child is element:
            continue
        if child.tag == "img":
            parts.append(child.get("alt") or "")
        elif isinstance(child.tag, str):
            parts.append(child.text or "")
        parts.append(child.tail or "")
    return " ".join(" ".join(parts).split())


def unclear_links(root: lxml.html.HtmlElement) -> list[tuple[str, str]]:
    """(what is wrong, the link's URL) for links with no text or a text that says nothing."""
    found = []
    for element in root.iter("a"):
        href = element.get("href")
        if href is None:
            continue
        text = link_text(element)
        plain = text.lower().strip(" .,:;!?…→←»«>-–—()[]")
        if not plain:
            found.append(("link has no text (a screen reader reads out its URL)", href))
        elif plain in VAGUE_LINK_TEXT:
            found.append((f'link text "{text}" says nothing out of context', href))
    return found
