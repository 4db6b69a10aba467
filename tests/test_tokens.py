"""Unsubscribe tokens: an HMAC of subscriber id and list, keyed by POLICYFEED_SECRET."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyfeed.audience.tokens import make_token, read_token

SECRET = "correct horse battery staple"
LIST = "digest.policy.example.org"


def test_a_token_names_its_subscriber() -> None:
    assert read_token(SECRET, make_token(SECRET, 42, LIST), LIST) == 42


def test_a_token_is_url_safe_short_and_carries_no_address() -> None:
    token = make_token(SECRET, 7, LIST)
    assert re.fullmatch(r"[0-9]+\.[A-Za-z0-9_-]+", token)
    assert len(token) <= 40
    assert "@" not in token


def test_tokens_are_stable_for_the_same_subscriber_and_differ_between_subscribers() -> None:
    assert make_token(SECRET, 1, LIST) == make_token(SECRET, 1, LIST)
    assert make_token(SECRET, 1, LIST).split(".")[1] != make_token(SECRET, 2, LIST).split(".")[1]


def test_a_token_without_a_secret_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="secret"):
        make_token("", 1, LIST)


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(lambda t: "43." + t.split(".")[1], id="mac of another subscriber"),
        pytest.param(lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), id="one character changed"),
        pytest.param(lambda t: "042." + t.split(".")[1], id="id with a leading zero"),
        pytest.param(lambda t: t.split(".")[0], id="no mac"),
        pytest.param(lambda t: "." + t.split(".")[1], id="no id"),
        pytest.param(lambda t: "4²." + t.split(".")[1], id="unicode digit"),
        pytest.param(lambda t: t + "é", id="non-ASCII mac"),
        pytest.param(lambda t: t + "A" * 100, id="too long"),
        pytest.param(lambda t: "", id="empty"),
    ],
)
def test_a_forged_or_damaged_token_names_nobody(forged: object) -> None:
    genuine = make_token(SECRET, 42, LIST)
    assert callable(forged)
    assert read_token(SECRET, forged(genuine), LIST) is None


def test_a_token_is_only_good_for_its_own_list_and_secret() -> None:
    token = make_token(SECRET, 42, LIST)
    assert read_token(SECRET, token, "digest.other.example.org") is None
    assert read_token("another secret", token, LIST) is None
    assert read_token("", token, LIST) is None


@given(st.text(max_size=120))
def test_reading_arbitrary_text_never_fails_and_names_nobody(text: str) -> None:
    assert read_token(SECRET, text, LIST) is None


@given(st.integers(min_value=0, max_value=2**53), st.text(min_size=1, max_size=40))
def test_every_subscriber_id_round_trips(subscriber_id: int, list_id: str) -> None:
    assert read_token(SECRET, make_token(SECRET, subscriber_id, list_id), list_id) == subscriber_id
