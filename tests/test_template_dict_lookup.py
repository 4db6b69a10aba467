"""Templates read a plain dict's keys at once (not after a failed getattr): the answers must be
the ones Jinja gives, dict methods and missing keys included."""

from __future__ import annotations

import jinja2
import pytest

from policyfeed.templating import _environment_class


@pytest.fixture
def env() -> jinja2.Environment:
    return _environment_class()(undefined=jinja2.StrictUndefined, autoescape=True)


def test_keys_read_as_attributes(env: jinja2.Environment) -> None:
    page = env.from_string("{{ post.title }}|{{ post.url }}|{{ post['title'] }}")
    assert page.render(post={"title": "<A>", "url": "/a/"}) == "&lt;A&gt;|/a/|&lt;A&gt;"


def test_dict_methods_still_win_over_keys(env: jinja2.Environment) -> None:
    value = {"items": "shadow", "get": "g"}
    page = env.from_string(
        "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.get('get') }}"
    )
    assert page.render(d=value) == jinja2.Environment(autoescape=True).from_string(
        "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.get('get') }}"
    ).render(d=value)


def test_missing_key_is_undefined(env: jinja2.Environment) -> None:
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ post.nope }}").render(post={"title": "x"})
    assert env.from_string("{{ post.nope is defined }}").render(post={}) == "False"


def test_other_objects_unchanged(env: jinja2.Environment) -> None:
    class Thing(dict):  # not a plain dict: Jinja's own order (attribute first)
        title = "attribute"

    assert env.from_string("{{ t.title }}").render(t=Thing(title="key")) == "attribute"
