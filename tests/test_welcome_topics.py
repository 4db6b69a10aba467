"""The welcome message tells a new member that they can choose topics on the preferences page
(it named only name, chapter, pause and unsubscribe), in each shipped language."""

from __future__ import annotations

from datetime import UTC, datetime

import lxml.html
import pytest

from policyfeed.config import Settings
from policyfeed.digest.render import site_context
from policyfeed.templating import render_template

SENTENCE = {
    "en": "You can also choose topics there: each issue then brings you only its posts on those "
    "topics.",
    "fr": "Vous pourrez aussi y choisir des sujets : chaque numéro ne vous apportera alors que "
    "ses articles sur ces sujets.",
    "es": "Allí también puedes elegir temas: cada número te traerá entonces solo sus artículos "
    "sobre esos temas.",
    "ar": "يمكنك هناك أيضًا اختيار المواضيع: يصلك عندها من كل عدد منشوراته عن تلك المواضيع فقط.",
}


def welcome(settings: Settings, language: str, suffix: str) -> str:
    out = render_template(
        settings,
        f"email/welcome{suffix}",
        language=language,
        site=site_context(settings, language),
        subscriber={"name": "Zoë", "email": "zoe@example.org"},
        chapter=None,
        preferences_url="https://policy.example.org/preferences?t=p.1",
        expires=datetime(2026, 12, 3, tzinfo=UTC),
    )
    if suffix == ".html":
        out = lxml.html.document_fromstring(out).text_content()
    return " ".join(out.replace("\u00a0", " ").split())


@pytest.mark.parametrize("suffix", [".txt", ".html"])
@pytest.mark.parametrize("language", sorted(SENTENCE))
def test_the_welcome_says_topics_can_be_chosen_on_the_preferences_page(
    settings: Settings, language: str, suffix: str
) -> None:
    assert SENTENCE[language] in welcome(settings, language, suffix)
