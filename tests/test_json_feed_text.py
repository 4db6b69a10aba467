"""The JSON Feed's text is laid out by hand (json's C string encoder, not its pure-Python
indenting one): it must be exactly what ``json.dumps(indent=2)`` writes, whatever the values."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from policyfeed.site.feeds import indented_json

_scalars = st.none() | st.booleans() | st.integers() | st.text()
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400)
@given(_values)
def test_same_text_as_json_dumps(value: object) -> None:
    assert indented_json(value) == json.dumps(value, ensure_ascii=False, indent=2)


def test_nested_indent_continues_each_line() -> None:
    item = {"id": "a\u2028b", "tags": ["x", "é"], "authors": [{"name": '"q"'}], "empty": []}
    text = indented_json(item, "    ")
    expected = json.dumps(item, ensure_ascii=False, indent=2).replace("\n", "\n    ")
    assert text == expected
    assert json.loads(text) == item


def test_control_characters_and_surrogates_escaped_as_json_does() -> None:
    for text in ["\x00\x1f\x7f", "\ud800", "tab\there", "back\\slash", "</script>"]:
        assert indented_json([text]) == json.dumps([text], ensure_ascii=False, indent=2)
