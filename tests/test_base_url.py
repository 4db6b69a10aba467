"""A site's base URL is where its posts' permanent ids and links come from, and readers keep
those for good: ``init`` asks for (or requires) the real one, and while it is a loopback or
placeholder address no post is published and no issue made, with an error naming the setting.
Drafts and previews still work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policyfeed.cli import cli
from policyfeed.config import placeholder_reason

LOOPBACK_CONFIG = """\
[site]
title = "Trying it out"
base_url = "http://127.0.0.1:8000/"
"""
REFUSAL = "Error: site.base_url is http://127.0.0.1:8000/ (127.0.0.1 is this machine's loopback"


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8000/", "127.0.0.1 is this machine's loopback address"),
        ("http://127.8.9.10/", "127.8.9.10 is this machine's loopback address"),
        ("http://[::1]:8000/", "::1 is this machine's loopback address"),
        ("http://0.0.0.0/", "0.0.0.0 is the unspecified address"),
        ("http://169.254.10.1/", "169.254.10.1 is a link-local address"),
        ("http://localhost:8000/", "localhost is this machine"),
        ("https://blog.localhost/", "blog.localhost is this machine"),
        ("https://policy.invalid/", "policy.invalid is a name reserved never to resolve"),
        ("https://policy.test/", "policy.test is a name reserved for testing"),
        ("https://policy.example/", "policy.example is a name reserved for examples"),
        ("http://nas.local/", "nas.local is a name on the local network only"),
        ("https://your-site.org/", "your-site.org is a placeholder"),
        ("https://policy.example.org/", ""),  # the demo's: a real (documentation) domain
        ("https://www.internetsociety.org/policy/", ""),
        ("http://10.0.0.5/", ""),  # an intranet's address may well be the real one
    ],
)
def test_what_counts_as_a_placeholder(url: str, reason: str) -> None:
    assert placeholder_reason(url) == reason


# --- init ------------------------------------------------------------------------------------


def test_init_without_a_base_url_in_a_script_says_what_it_needs(tmp_path: Path) -> None:
    result = run("init")
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: init needs the site's public address: --base-url https://policy.example.org/ "
        "(feeds, pages and digests link to it, and posts take their permanent ids from it)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_init_asks_for_the_base_url_at_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("policyfeed.cli.site._interactive", lambda: True)
    result = run("init", stdin="http://127.0.0.1:8000/\nhttps://policy.example.org\n")
    assert result.exit_code == 0, result.output
    assert (
        "Error: site.base_url: http://127.0.0.1:8000/ (127.0.0.1 is this machine's loopback "
        "address) is no public address; give the site's own, e.g. https://policy.example.org/"
    ) in result.output
    assert result.output.count("The site's public address (its base URL") == 2
    text = (tmp_path / "policyfeed.toml").read_text(encoding="utf-8")
    assert 'base_url = "https://policy.example.org/"' in text.splitlines()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/", "http://localhost/", "https://x.invalid"]
)
def test_init_refuses_a_loopback_or_placeholder_base_url(tmp_path: Path, url: str) -> None:
    result = run("init", "--base-url", url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: site.base_url: {url.rstrip('/')}/ (")
    assert "is no public address; give the site's own" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_keeps_an_existing_config_and_warns_about_its_loopback_base_url(
    tmp_path: Path,
) -> None:
    (tmp_path / "policyfeed.toml").write_text(LOOPBACK_CONFIG, encoding="utf-8")
    result = run("init", "--base-url", "https://policy.example.org/")
    assert result.exit_code == 0
    assert result.stdout == "Kept policyfeed.toml (already there)\nDatabase ready: posts.db\n"
    assert result.stderr == (
        "Warning: --base-url https://policy.example.org/ not written: policyfeed.toml exists; "
        "change site.base_url in it\n"
        "Warning: site.base_url is http://127.0.0.1:8000/ (127.0.0.1 is this machine's loopback "
        "address): no post can be published and no issue made until it is the site's public "
        "address\n"
    )


# --- nothing published, no issue made on a loopback base URL --------------------------------


@pytest.fixture
def trial(tmp_path: Path) -> Path:
    """A site whose config still has the loopback address, with one draft."""
    (tmp_path / "policyfeed.toml").write_text(LOOPBACK_CONFIG, encoding="utf-8")
    assert run("init").exit_code == 0
    result = run("posts", "add", "--title", "A draft", "--body", "<p>Hello</p>")
    assert result.exit_code == 0, result.output
    return tmp_path


def test_a_post_is_not_published(trial: Path) -> None:
    result = run("posts", "add", "--title", "News", "--body", "<p>x</p>", "--publish")
    assert result.exit_code == 1
    assert result.stderr.startswith(REFUSAL)
    assert "refusing to publish a post" in result.stderr
    assert "Set site.base_url in the config (or POLICYFEED_BASE_URL)" in result.stderr
    result = run("posts", "publish", "a-draft")
    assert result.exit_code == 1 and "refusing to publish a post" in result.stderr
    assert run("posts", "list").stdout.splitlines()[1:] == [
        "-           draft      a-draft  A draft"
    ]


def test_an_import_of_published_posts_is_refused_whole(trial: Path) -> None:
    (trial / "posts.json").write_text(
        '[{"title": "Old", "date": "2012-07-01"}, {"title": "Older", "date": "2012-06-01"}]',
        encoding="utf-8",
    )
    result = run("posts", "import", "posts.json")
    assert result.exit_code == 1
    assert "refusing to import published posts" in result.stderr
    assert len(run("posts", "list").stdout.splitlines()) == 2  # the header and the draft


def test_no_issue_is_made_and_publish_writes_nothing(trial: Path) -> None:
    # A post published while the address was right (it came from the environment), then the
    # address is lost again: the post waits, and no issue takes it.
    public = {"POLICYFEED_BASE_URL": "https://policy.example.org/"}
    published = CliRunner().invoke(cli, ["posts", "publish", "a-draft"], env=public)
    assert published.exit_code == 0, published.output
    assert "with 1 post" in run("issue", "new", "--dry-run").stdout
    result = run("issue", "new")
    assert result.exit_code == 1
    assert result.stderr.startswith(REFUSAL) and "refusing to make an issue" in result.stderr
    result = run("publish")
    assert result.exit_code == 1
    assert "refusing to publish" in result.stderr
    assert not (trial / "public").exists() and not (trial / "outbox").exists()


def test_a_draft_site_still_builds_for_a_preview(trial: Path) -> None:
    result = run("build")
    assert result.exit_code == 0, result.output
    assert (trial / "public" / "index.html").exists()


def test_the_environment_can_give_the_real_address(trial: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["posts", "publish", "a-draft", "--date", "2012-07-25"],
        env={"POLICYFEED_BASE_URL": "https://policy.example.org/"},
    )
    assert result.exit_code == 0, result.output
    assert "tag:policy.example.org,2012-07-25:posts/a-draft" in result.stdout


def test_a_second_init_says_which_of_its_options_it_did_not_write(tmp_path: Path) -> None:
    """init keeps an existing config as it is; each option given that differs from it is
    named, with the key to change instead (none is dropped silently)."""
    first = run(
        "init", "--title", "First", "--base-url", "https://policy.example.org/",
        "--mail-from", "digest@policy.example.org",
    )  # fmt: skip
    assert first.exit_code == 0, first.stderr
    again = run(
        "init", "--title", "Second", "--base-url", "https://policy.example.org/",
        "--mail-from", "digest@policy.example.org", "--postal-address", "Rue 1, Geneva",
    )  # fmt: skip
    assert again.exit_code == 0
    assert again.stderr == (
        "Warning: --title Second not written: policyfeed.toml exists; change site.title in it\n"
        "Warning: --postal-address Rue 1, Geneva not written: policyfeed.toml exists; change "
        "digest.postal_address in it\n"
    )
    assert 'title = "First"' in (tmp_path / "policyfeed.toml").read_text(encoding="utf-8")
