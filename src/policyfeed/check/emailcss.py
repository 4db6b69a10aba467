"""CSS that Gmail or Outlook drops, by property name: a small table kept from caniemail's data.

Source: caniemail.com (github.com/hteumeuleu/caniemail, the ``_features/css-*.md`` files, read at
commit 6b086a3 of June 2026): a property is listed when its latest test says "n" (not supported)
for Gmail's webmail or for Outlook on Windows (2019 and later, Word's engine), and losing it
changes the layout or hides content. Properties whose loss only makes the message plainer
(border-radius, opacity, max-width and max-height, white-space, word-wrap, overflow, box-sizing,
outline, media queries and prefers-color-scheme) are progressive enhancement by design and left
out: the digest template uses them on purpose.

Keys are property names; ``VALUE_FEATURES`` lists values that are dropped whatever the property
(``display: flex``, ``var()``, gradients).
"""

from __future__ import annotations

import re

GMAIL = "Gmail"
OUTLOOK = "Outlook for Windows"
BOTH = f"{GMAIL} and {OUTLOOK}"

#: property -> (who drops it, the caniemail feature it comes from)
DROPPED_PROPERTIES: dict[str, tuple[str, str]] = {
    "position": (BOTH, "css-position"),
    "top": (BOTH, "css-left-right-top-bottom"),
    "right": (BOTH, "css-left-right-top-bottom"),
    "bottom": (BOTH, "css-left-right-top-bottom"),
    "left": (BOTH, "css-left-right-top-bottom"),
    "z-index": (BOTH, "css-z-index"),
    "float": (OUTLOOK, "css-float"),
    "visibility": (BOTH, "css-visibility"),
    "transform": (BOTH, "css-transform"),
    "transition": (BOTH, "css-transition"),
    "animation": (BOTH, "css-animation"),
    "filter": (BOTH, "css-filter"),
    "clip-path": (BOTH, "css-clip-path"),
    "box-shadow": (BOTH, "css-box-shadow"),
    "text-shadow": (BOTH, "css-text-shadow"),
    "border-image": (BOTH, "css-border-image"),
    "justify-content": (BOTH, "css-justify-content"),
    "flex-direction": (BOTH, "css-flex-direction"),
    "flex-wrap": (BOTH, "css-flex-wrap"),
    "grid-template": (BOTH, "css-grid-template"),
    "grid-template-columns": (BOTH, "css-grid-template"),
    "grid-template-rows": (BOTH, "css-grid-template"),
    "grid-template-areas": (BOTH, "css-grid-template"),
    "gap": (OUTLOOK, "css-gap"),
    "column-gap": (OUTLOOK, "css-gap"),
    "row-gap": (OUTLOOK, "css-gap"),
    "background-image": (OUTLOOK, "css-background-image"),
    "background-size": (OUTLOOK, "css-background-size"),
    "background-position": (OUTLOOK, "css-background-position"),
    "list-style-image": (BOTH, "css-list-style-image"),
    "text-underline-offset": (BOTH, "css-text-underline-offset"),
    "text-decoration-thickness": (BOTH, "css-text-decoration-thickness"),
    "object-fit": (OUTLOOK, "css-object-fit"),
    "object-position": (OUTLOOK, "css-object-position"),
    "shape-outside": (BOTH, "css-shape-outside"),
    "inline-size": (BOTH, "css-inline-size"),
    "block-size": (BOTH, "css-block-inline-size"),
    "margin-inline": (BOTH, "css-margin-inline-block"),
    "margin-block": (BOTH, "css-margin-inline-block"),
    "margin-inline-start": (BOTH, "css-margin-inline-start-end"),
    "margin-inline-end": (BOTH, "css-margin-inline-start-end"),
    "margin-block-start": (BOTH, "css-margin-block-start-end"),
    "margin-block-end": (BOTH, "css-margin-block-start-end"),
    "padding-inline": (BOTH, "css-padding-inline-block"),
    "padding-block": (BOTH, "css-padding-inline-block"),
    "padding-inline-start": (BOTH, "css-padding-inline-start-end"),
    "padding-inline-end": (BOTH, "css-padding-inline-start-end"),
    "padding-block-start": (BOTH, "css-padding-block-start-end"),
    "padding-block-end": (BOTH, "css-padding-block-start-end"),
    "border-inline": (BOTH, "css-border-inline-block"),
    "border-block": (BOTH, "css-border-inline-block"),
}

#: (pattern in a value, what it is, who drops it, caniemail feature)
VALUE_FEATURES: tuple[tuple[re.Pattern[str], str, str, str], ...] = (
    (re.compile(r"^\s*(inline-)?flex\b", re.I), "display: flex", OUTLOOK, "css-display-flex"),
    (re.compile(r"^\s*(inline-)?grid\b", re.I), "display: grid", OUTLOOK, "css-display-grid"),
    (re.compile(r"\bvar\(", re.I), "var() (CSS variables)", BOTH, "css-variables"),
    (re.compile(r"\blinear-gradient\(", re.I), "linear-gradient()", OUTLOOK, "css-linear-gradient"),
    (re.compile(r"\bradial-gradient\(", re.I), "radial-gradient()", OUTLOOK, "css-radial-gradient"),
    (re.compile(r"\bconic-gradient\(", re.I), "conic-gradient()", BOTH, "css-conic-gradient"),
    (re.compile(r"\blight-dark\(", re.I), "light-dark()", BOTH, "css-function-light-dark"),
)
#: value features that only count on one property
_VALUE_PROPERTY = {"display: flex": "display", "display: grid": "display"}


def dropped(name: str, value: str) -> list[tuple[str, str, str]]:
    """(feature, who drops it, caniemail feature) for one declaration; empty when it is safe."""
    name = name.strip().lower()
    found = []
    if name in DROPPED_PROPERTIES:
        who, feature = DROPPED_PROPERTIES[name]
        found.append((f"CSS property {name}", who, feature))
    for pattern, what, who, feature in VALUE_FEATURES:
        if _VALUE_PROPERTY.get(what, name) == name and pattern.search(value):
            found.append((what, who, feature))
    return found
