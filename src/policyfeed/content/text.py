"""The one clean-up every piece of text passes wherever it goes out (feeds, pages, mail) and on
the way in: :func:`clean_text` for any text, :func:`clean_line` for single-line text (titles,
names, subjects)."""

from __future__ import annotations

import re

# XML 1.0 forbids C0 controls (but tab, newline and carriage return), surrogates and
# U+FFFE/U+FFFF; strict parsers reject a feed holding one. DEL and the C1 controls are allowed
# but read as Windows-1252 by some parsers and shown as boxes by browsers. Unicode's
# noncharacters (U+FDD0-U+FDEF and the last two code points of every plane) are "not for
# interchange": the W3C validator rejects feeds with them.
#
# Most text is ASCII: there only the C0 controls and DEL can occur, and bytes.translate drops
# them 60 times faster than a regular expression. Other text takes one expression for the Basic
# Multilingual Plane (a bitmap lookup per character) and, only when it holds a character beyond,
# another for the last two code points of planes 1-16 (a class that mixes both planes is a list
# of ranges, tried one by one at every character: 0.3 ms for a 4 KB post).
_ASCII_UNWANTED = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_BMP_UNWANTED = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
)
_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")
_ASTRAL_UNWANTED = re.compile(
    "["
    + "".join(
        f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(1, 17)
    )
    + "]"
)
# Bidirectional embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069): in a
# title or a name they reorder what readers see ("edirrevo-LTR") and can make one name pass for
# another. The marks (U+200E, U+200F) do not override anything and stay.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """``text`` without the characters no feed, page or message should carry (see above).
    Line breaks and tabs stay."""
    if text.isprintable():
        # Every character removed here is a control, a surrogate or unassigned: none printable.
        # Most values (titles, names, URLs) take this path, without a copy.
        return text
    if text.isascii():
        raw = text.encode("ascii")
        kept = raw.translate(None, _ASCII_UNWANTED)
        return text if len(kept) == len(raw) else kept.decode("ascii")
    text = _BMP_UNWANTED.sub("", text)
    if _BEYOND_BMP.search(text):
        text = _ASTRAL_UNWANTED.sub("", text)
    return text


def clean_line(text: str) -> str:
    """One line of text: :func:`clean_text`, bidirectional controls removed, white space
    (line breaks included) folded to single spaces."""
    return " ".join(_BIDI_CONTROLS.sub("", clean_text(text)).split())
