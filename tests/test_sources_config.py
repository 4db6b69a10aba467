"""``[[sources]]`` in policyfeed.toml: every key checked, each error naming the source (by its
name, else its place) and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyfeed.config import Source, load_settings
from policyfeed.errors import ConfigError

SITE = '[site]\nbase_url = "https://policy.example.org/"\n'


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "policyfeed.toml"
    path.write_text(SITE + text, encoding="utf-8")
    return load_settings(path, environ={})


def test_sources_are_read_with_their_defaults(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "[digest]\nsync_before_publish = true\n"
        '[[sources]]\nname = "blog"\nurl = "https://blog.example.org/feed/"\n'
        'author = "Comms  team"\ntopics = { "Uncategorized" = "", "WCIT" = "ITU / WCIT" }\n'
        'add_topics = ["From the blog"]\n'
        '[[sources]]\nname = "news-2"\nurl = "https://news.example.org/atom.xml"\n'
        'unmapped_topics = "drop"\ntimeout = 5\nmax_bytes = 2048\n',
    )
    assert settings.sync_before_publish is True  # type: ignore[attr-defined]
    assert settings.sources == (  # type: ignore[attr-defined]
        Source(
            name="blog",
            url="https://blog.example.org/feed/",
            author="Comms team",
            topics=(("Uncategorized", ""), ("WCIT", "ITU / WCIT")),
            add_topics=("From the blog",),
        ),
        Source(
            name="news-2",
            url="https://news.example.org/atom.xml",
            unmapped_topics="drop",
            timeout=5.0,
            max_bytes=2048,
        ),
    )


def test_no_sources_by_default(tmp_path: Path) -> None:
    settings = load(tmp_path, "")
    assert settings.sources == ()  # type: ignore[attr-defined]
    assert settings.sync_before_publish is False  # type: ignore[attr-defined]


BLOG = '[[sources]]\nname = "blog"\nurl = "https://blog.example.org/feed/"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[sources]\nname = "blog"\n',
            "sources are written [[sources]] (two brackets), one table per feed",
        ),
        ('[[sources]]\nurl = "https://b.example.org/"\n', "[[sources]] #1: name is missing"),
        ('[[sources]]\nname = "blog"\n', "[[sources]] 'blog': url is missing (the feed's"),
        (
            '[[sources]]\nname = "My Blog"\nurl = "https://b.example.org/"\n',
            "[[sources]] 'My Blog': name must be a short name of lower-case letters, digits and "
            "hyphens, like blog, not 'My Blog'",
        ),
        (
            '[[sources]]\nname = "blog"\nurl = "ftp://b.example.org/feed"\n',
            "[[sources]] 'blog': url must be the feed's absolute http(s) URL, not "
            "'ftp://b.example.org/feed'",
        ),
        (
            '[[sources]]\nname = "blog"\nurl = "/feed/"\n',
            "[[sources]] 'blog': url must be the feed's absolute http(s) URL, not '/feed/'",
        ),
        (
            BLOG + "tpoics = {}\n",
            "[[sources]] 'blog': unknown key 'tpoics' (known: name, url, author, topics, "
            "add_topics, unmapped_topics, timeout, max_bytes)",
        ),
        (BLOG + 'password = "x"\n', "[[sources]] 'blog': a feed that needs a login is not"),
        (BLOG + "timeout = 0\n", "[[sources]] 'blog': timeout must be a number of seconds from"),
        (BLOG + 'timeout = "30s"\n', "timeout must be a number of seconds from 1 to 300"),
        (BLOG + "max_bytes = 10\n", "[[sources]] 'blog': max_bytes must be a whole number of"),
        (BLOG + 'unmapped_topics = "hide"\n', 'unmapped_topics must be "keep" or "drop"'),
        (BLOG + 'add_topics = "Blog"\n', "add_topics must be a list of topic names"),
        (BLOG + 'topics = ["a"]\n', "[[sources]] 'blog': topics must be a table of the feed's"),
        (
            BLOG + 'topics = { "WCIT" = 3 }\n',
            "[[sources]] 'blog': topics: 'WCIT' must map to a topic name (text, \"\" to drop it)",
        ),
        (BLOG + 'author = "A\\nB"\n', "[[sources]] 'blog': author must be one line of text"),
        (
            BLOG + BLOG,
            "[[sources]] 'blog': the name is also the name of [[sources]] #1",
        ),
        ('[digest]\nsync_before_publish = "often"\n', "sync_before_publish must be true or false"),
    ],
)
def test_a_bad_source_is_an_error_naming_it(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "policyfeed.toml"))
