"""The fast text extraction for sanitised HTML agrees with the general one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from policyfeed.content.posts import clean_html_to_text, html_to_text, sanitize_html

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
def test_clean_html_to_text_reads_the_same_text_as_html_to_text(parts: list[str]) -> None:
    # Line breaks may sit differently where blocks are mis-nested (<p> in <h2>): the sanitiser
    # builds an HTML5 tree, lxml's parser closes the heading early. The characters, in order,
    # must be the same, and every line is trimmed and not empty.
    clean = sanitize_html("".join(parts), BASE)
    fast = clean_html_to_text(clean)
    assert "".join(fast.split()) == "".join(html_to_text(clean).split())
    assert all(line and line == line.strip() for line in fast.splitlines())


def test_lines_follow_the_sanitised_tree_where_blocks_are_mis_nested() -> None:
    clean = sanitize_html("<h2></p>a</h2>&amp;", BASE)
    assert clean_html_to_text(clean) == "a\n&"


def test_clean_html_to_text_keeps_blocks_on_their_own_lines() -> None:
    clean = sanitize_html("<p>IETF 84</p><p>Trinidad &amp; Tobago<br>Vancouver</p>", BASE)
    assert clean_html_to_text(clean) == "IETF 84\nTrinidad & Tobago\nVancouver"
