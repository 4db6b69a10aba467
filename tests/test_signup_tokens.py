"""The sign-up's tokens: confirmation, preferences and form (CSRF) tokens, each for its purpose
only, signed with POLICYFEED_SECRET, carrying no address."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyfeed.audience.tokens import (
    check_form_token,
    make_confirm_token,
    make_form_token,
    make_preferences_token,
    make_token,
    read_confirm_token,
    read_preferences_token,
    read_token,
)

SECRET = "correct horse battery staple"
LIST = "digest.policy.example.org"
NOW = 1_343_649_600


def test_each_token_reads_back_what_it_names() -> None:
    assert read_confirm_token(SECRET, make_confirm_token(SECRET, 7, LIST, expires=NOW), LIST) == (
        7,
        NOW,
    )
    assert read_preferences_token(SECRET, make_preferences_token(SECRET, 42, LIST), LIST) == 42
    token = make_form_token(SECRET, "subscribe", LIST, issued=NOW)
    assert check_form_token(SECRET, token, "subscribe", LIST, now=NOW + 60)


def test_no_token_is_accepted_for_another_purpose() -> None:
    unsubscribe = make_token(SECRET, 42, LIST)
    preferences = make_preferences_token(SECRET, 42, LIST)
    confirm = make_confirm_token(SECRET, 42, LIST, expires=NOW)
    assert read_preferences_token(SECRET, unsubscribe, LIST) is None
    assert read_preferences_token(SECRET, confirm, LIST) is None
    assert read_confirm_token(SECRET, preferences, LIST) is None
    assert read_token(SECRET, preferences, LIST) is None
    assert read_token(SECRET, preferences.removeprefix("p."), LIST) is None
    form = make_form_token(SECRET, "link", LIST, issued=NOW)
    assert not check_form_token(SECRET, form, "subscribe", LIST, now=NOW)
    bound = make_form_token(SECRET, "preferences", LIST, issued=NOW, bound_to=3)
    assert check_form_token(SECRET, bound, "preferences", LIST, now=NOW, bound_to=3)
    assert not check_form_token(SECRET, bound, "preferences", LIST, now=NOW, bound_to=4)


def test_a_changed_expiry_or_id_breaks_the_signature() -> None:
    token = make_confirm_token(SECRET, 7, LIST, expires=NOW)
    _, consent, expires, mac = token.split(".")
    assert read_confirm_token(SECRET, f"c.{consent}.{int(expires) + 86400}.{mac}", LIST) is None
    assert read_confirm_token(SECRET, f"c.8.{expires}.{mac}", LIST) is None
    assert read_confirm_token(SECRET, f"c.07.{expires}.{mac}", LIST) is None
    assert read_confirm_token("another secret", token, LIST) is None
    assert read_confirm_token(SECRET, token, "another.list") is None
    assert read_confirm_token("", token, LIST) is None


def test_form_tokens_expire_after_twelve_hours() -> None:
    token = make_form_token(SECRET, "subscribe", LIST, issued=NOW)
    assert check_form_token(SECRET, token, "subscribe", LIST, now=NOW + 12 * 3600)
    assert not check_form_token(SECRET, token, "subscribe", LIST, now=NOW + 12 * 3600 + 1)
    assert not check_form_token(SECRET, token, "subscribe", LIST, now=NOW - 3600)


def test_tokens_need_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        make_preferences_token("", 1, LIST)
    with pytest.raises(ValueError, match="secret"):
        make_confirm_token("", 1, LIST, expires=NOW)


@given(st.text(max_size=200))
def test_any_text_is_simply_not_a_token(text: str) -> None:
    assert read_confirm_token(SECRET, text, LIST) is None
    assert read_preferences_token(SECRET, text, LIST) is None
    assert not check_form_token(SECRET, text, "subscribe", LIST, now=NOW)
