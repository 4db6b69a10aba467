"""The fast text extraction for sanitised HTML agrees with the general one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policyfeed.posts import clean_html_to_text, html_to_text, sanitize_html

BASE = "https://policy.example.org/"
PIECES = st.sampled_from(
    [
        "<p>", "</p>", "<br>", "<br/>", "<li>", "</li>", "<ul>", "</ul>", "<h2>", "</h2>",
        '<a href="/x?a=1&b=2" title="a>b">', "</a>", '<img alt="x>y" src="i.png">',
        "<blockquote cite='/c'>", "</blockquote>", "<table><tr><td>", "</td></tr></table>",
        "&amp;", "&lt;", "&gt;", "&nbsp;", "&#x1F600;", "<!-- note -->", "<script>x</script>",
        " ", "\n", "a", "Trinidad & Tobago", "<", ">", '"', "'", "مرحبا", "]]>",
    ]
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=30))
def test_clean_html_to_text_matches_html_to_text_on_sanitised_html(parts: list[str]) -> None:
    clean = sanitize_html("".join(parts), BASE)
    assert clean_html_to_text(clean) == html_to_text(clean)


def test_clean_html_to_text_keeps_blocks_on_their_own_lines() -> None:
    clean = sanitize_html("<p>IETF 84</p><p>Trinidad &amp; Tobago<br>Vancouver</p>", BASE)
    assert clean_html_to_text(clean) == "IETF 84\nTrinidad & Tobago\nVancouver"
