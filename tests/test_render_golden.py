"""Golden files: issue 1 of the demo site, HTML and text, exactly as rendered.

Regenerate after an intended change with ``POLICYFEED_REGEN_GOLDEN=1 pytest
tests/test_render_golden.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from digest_support import render_demo
from policyfeed.digest.issues import get_issue, issue_posts, posts_for_chapter
from policyfeed.digest.render import render_issue
from policyfeed.model import ChapterVariant

GOLDEN = Path(__file__).parent / "golden" / "digest"
# The autouse fixture clears POLICYFEED_* variables, so read the flag when this module loads.
REGENERATE = os.environ.get("POLICYFEED_REGEN_GOLDEN") == "1"


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="")
        pytest.skip(f"regenerated {name}")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from the golden file (see module docstring)"


def test_demo_issue_html_matches_the_golden_file(demo_db, settings) -> None:
    check_golden("issue-1.html", render_demo(demo_db, settings).html)


def test_demo_issue_text_matches_the_golden_file(demo_db, settings) -> None:
    digest = render_demo(demo_db, settings)

    check_golden("issue-1.txt", f"Subject: {digest.subject}\n\n{digest.text}")


def test_demo_chapter_variant_text_matches_the_golden_file(demo_db, settings) -> None:
    render_demo(demo_db, settings)
    issue = get_issue(demo_db, 1)
    chapter = ChapterVariant(
        slug="ip-watch",
        name="IP watch",
        intro="Only the intellectual property news, for the IP working group.",
        topic_slugs=("intellectual-property",),
    )
    posts = posts_for_chapter(issue_posts(demo_db, issue), chapter.topic_slugs)

    digest = render_issue(issue, posts, settings, chapter=chapter)

    check_golden("issue-1-ip-watch.txt", f"Subject: {digest.subject}\n\n{digest.text}")
