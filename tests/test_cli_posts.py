"""The command line for init and posts: exit codes, exact output, where the files are."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from policyfeed.cli import App, cli
from policyfeed.config import load_settings
from policyfeed.store import open_db
from policyfeed.store import posts as store

NOW = datetime(2012, 7, 30, 12, 0, tzinfo=UTC)
CONFIG = """\
[site]
title = "Public Policy"
base_url = "https://policy.example.org/"
timezone = "Europe/Zurich"
"""
TAG = "tag:policy.example.org"
#: The public address init needs (it refuses to write a loopback or placeholder one, #15).
BASE = "https://policy.example.org/"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(App, "now", lambda self: NOW)


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input)


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    result = run(*args, env=env)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return result.stdout


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config in the current folder and a posts.db with a published post and a draft."""
    (tmp_path / "policyfeed.toml").write_text(CONFIG, encoding="utf-8")
    ok("init")
    ok("posts", "add", "--title", "IETF 84 in Vancouver", "--new-topic", "IETF",
       "--summary", "Five guests.", "--body", "<p>We meet in <b>Vancouver</b>.</p>",
       "--date", "2012-07-25 09:00", "--publish")  # fmt: skip
    ok("posts", "add", "--title", "WCIT preparation", "--slug", "wcit",
       "--new-topic", "ITU / WCIT", "--new-topic", "Internet governance")  # fmt: skip
    return tmp_path


# --- init ------------------------------------------------------------------------------------


def test_init_writes_the_config_and_the_database(tmp_path: Path) -> None:
    out = ok("init", "--title", 'The "Policy" blog', "--base-url", "https://p.example.org")
    assert out == "Wrote policyfeed.toml\nDatabase ready: posts.db\n"
    text = (tmp_path / "policyfeed.toml").read_text()
    assert 'title = "The \\"Policy\\" blog"' in text
    assert 'base_url = "https://p.example.org/"' in text
    assert "posts" in open_db(tmp_path / "posts.db").table_names()


def test_init_writes_the_sender_and_the_postal_address(tmp_path: Path) -> None:
    """The README's session went from init to publish, and publish's check refused: the
    config init wrote had no sender and no postal address. init takes both."""
    ok("init", "--base-url", BASE, "--mail-from", "digest@policy.example.org",
       "--postal-address", "Rue de Lausanne 1, 1202 Genève")  # fmt: skip
    settings = load_settings(tmp_path / "policyfeed.toml")
    assert settings.mail_from == "digest@policy.example.org"
    assert settings.postal_address == "Rue de Lausanne 1, 1202 Genève"


def test_init_with_a_bad_sender_writes_nothing(tmp_path: Path) -> None:
    result = run("init", "--base-url", BASE, "--mail-from", "digest at example")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: digest.mail_from must be a plain ASCII address")
    assert list(tmp_path.iterdir()) == []


def test_init_twice_keeps_the_config(tmp_path: Path) -> None:
    ok("init", "--title", "First", "--base-url", "https://policy.example.org/")
    again = run("init", "--title", "Second")
    assert again.exit_code == 0
    assert again.stdout == "Kept policyfeed.toml (already there)\nDatabase ready: posts.db\n"
    # The title given is not written, and init says so (it used to drop it silently).
    assert again.stderr == (
        "Warning: --title Second not written: policyfeed.toml exists; change site.title in it\n"
    )
    assert 'title = "First"' in (tmp_path / "policyfeed.toml").read_text()


def test_init_with_a_bad_base_url_writes_nothing(tmp_path: Path) -> None:
    result = run("init", "--base-url", "ftp://policy.example.org/")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: site.base_url must be an absolute http(s) URL, not 'ftp://policy.example.org/'\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_init_refuses_a_broken_existing_config(tmp_path: Path) -> None:
    (tmp_path / "policyfeed.toml").write_text('[site]\ntitel = "x"\n')
    result = run("init")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: policyfeed.toml: unknown key 'titel' in [site]")
    assert not (tmp_path / "posts.db").exists()


def test_init_puts_the_files_where_the_flags_say(tmp_path: Path) -> None:
    out = ok("--db", "data/site.db", "--config", "conf/site.toml", "init", "--base-url", BASE)
    assert out == "Wrote conf/site.toml\nDatabase ready: data/site.db\n"
    assert (tmp_path / "data" / "site.db").is_file()
    assert (tmp_path / "conf" / "site.toml").is_file()
    assert not (tmp_path / "posts.db").exists()


def test_init_puts_the_files_where_the_environment_says(tmp_path: Path) -> None:
    env = {"POLICYFEED_DB": "env.db", "POLICYFEED_CONFIG": "env.toml"}
    assert ok("init", "--base-url", BASE, env=env) == "Wrote env.toml\nDatabase ready: env.db\n"
    names = {p.name for p in tmp_path.iterdir()} - {"env.db-wal", "env.db-shm"}
    assert names == {"env.db", "env.toml"}


# --- --db / POLICYFEED_DB and --config / POLICYFEED_CONFIG ----------------------------------


def test_db_flag_beats_the_environment(site: Path) -> None:
    ok("--db", "other.db", "init")
    ok("--db", "other.db", "posts", "add", "--title", "Only in other")
    env = {"POLICYFEED_DB": "posts.db"}
    assert "only-in-other" not in ok("posts", "list", env=env)
    assert "only-in-other" in ok("--db", "other.db", "posts", "list", env=env)
    assert "only-in-other" in ok("posts", "list", env={"POLICYFEED_DB": "other.db"})


def test_config_flag_and_environment_choose_the_site(site: Path) -> None:
    (site / "tokyo.toml").write_text('[site]\ntimezone = "Asia/Tokyo"\n')
    # 2012-07-25 09:00 in Zurich is 16:00 in Tokyo.
    assert "2012-07-25 09:00" in ok("posts", "show", "ietf-84-in-vancouver")
    assert "2012-07-25 16:00" in ok("--config", "tokyo.toml", "posts", "show",
                                    "ietf-84-in-vancouver")  # fmt: skip
    env = {"POLICYFEED_CONFIG": "tokyo.toml"}
    assert "2012-07-25 16:00" in ok("posts", "show", "ietf-84-in-vancouver", env=env)


def test_a_missing_config_named_in_the_environment_is_an_error(site: Path) -> None:
    result = run("posts", "list", env={"POLICYFEED_CONFIG": "missing.toml"})
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: missing.toml: config file not found\n",
    )


def test_settings_from_the_environment_reach_the_commands(site: Path) -> None:
    out = ok("posts", "show", "ietf-84-in-vancouver", env={"POLICYFEED_TIMEZONE": "UTC"})
    assert "published: 2012-07-25 07:00" in out


def test_a_database_file_that_is_not_sqlite_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database\n" * 100)
    result = run("--db", "notes.db", "posts", "list")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: notes.db: cannot open as a SQLite database (file is not a database)\n"
    )


# --- posts add / list / show -----------------------------------------------------------------


def test_add_reports_the_slug_and_status(site: Path) -> None:
    assert ok("posts", "add", "--title", "Beijing Treaty") == "Added beijing-treaty (draft)\n"
    assert ok("posts", "add", "--title", "ACTA", "--publish") == "Added acta (published)\n"


def test_add_reads_a_markdown_body_file(site: Path) -> None:
    (site / "acta.md").write_text("ACTA *and* [TPPA](/tppa/)\n", encoding="utf-8")
    ok("posts", "add", "--title", "ACTA", "--body-file", "acta.md")
    post = store.get_post(open_db(site / "posts.db"), "acta")
    # A link to the site itself is stored relative to it; `posts show` gives it absolute.
    expected = '<p>ACTA <em>and</em> <a href="./tppa/" rel="noopener">'
    assert post.body_html.startswith(expected)
    shown = json.loads(ok("posts", "show", "acta", "--json"))
    assert '<a href="https://policy.example.org/tppa/" rel="noopener">' in shown["body_html"]


def test_list_shows_a_table_newest_first_with_drafts_on_top(site: Path) -> None:
    assert ok("posts", "list") == (
        "DATE        STATUS     SLUG                  TITLE\n"
        "-           draft      wcit                  WCIT preparation\n"
        "2012-07-25  published  ietf-84-in-vancouver  IETF 84 in Vancouver\n"
    )
    assert ok("posts", "list", "--status", "published", "--limit", "1") == (
        "DATE        STATUS     SLUG                  TITLE\n"
        "2012-07-25  published  ietf-84-in-vancouver  IETF 84 in Vancouver\n"
    )


def test_list_on_an_empty_database(tmp_path: Path) -> None:
    ok("init", "--base-url", BASE)
    assert ok("posts", "list") == "No posts.\n"
    assert json.loads(ok("posts", "list", "--json")) == []


def test_list_json(site: Path) -> None:
    listed = json.loads(ok("posts", "list", "--json"))
    assert listed == [
        {
            "slug": "wcit",
            "title": "WCIT preparation",
            "status": "draft",
            "published_at": None,
            "updated_at": "2012-07-30T12:00:00+00:00",
            "guid": None,
            "url": "https://policy.example.org/posts/wcit/",
            "author": "",
            "topics": ["Internet governance", "ITU / WCIT"],
            "summary": "",
        },
        {
            "slug": "ietf-84-in-vancouver",
            "title": "IETF 84 in Vancouver",
            "status": "published",
            "published_at": "2012-07-25T07:00:00+00:00",
            "updated_at": "2012-07-25T07:00:00+00:00",
            "guid": f"{TAG},2012-07-25:posts/ietf-84-in-vancouver",
            "url": "https://policy.example.org/posts/ietf-84-in-vancouver/",
            "author": "",
            "topics": ["IETF"],
            "summary": "Five guests.",
        },
    ]


def test_show_prints_the_fields_summary_and_text(site: Path) -> None:
    assert ok("posts", "show", "ietf-84-in-vancouver") == (
        "title:     IETF 84 in Vancouver\n"
        "slug:      ietf-84-in-vancouver\n"
        "status:    published\n"
        f"guid:      {TAG},2012-07-25:posts/ietf-84-in-vancouver\n"
        "url:       https://policy.example.org/posts/ietf-84-in-vancouver/\n"
        "author:    -\n"
        "published: 2012-07-25 09:00\n"
        "updated:   2012-07-25 09:00\n"
        "topics:    IETF\n"
        "\n"
        "Five guests.\n"
        "\n"
        "We meet in Vancouver.\n"
    )


def test_show_a_bare_draft(site: Path) -> None:
    out = ok("posts", "show", "wcit")
    assert out.endswith("published: -\nupdated:   2012-07-30 14:00\n"
                        "topics:    Internet governance, ITU / WCIT\n")  # fmt: skip


def test_show_json_includes_the_html_body(site: Path) -> None:
    shown = json.loads(ok("posts", "show", "ietf-84-in-vancouver", "--json"))
    assert shown["body_html"] == "<p>We meet in <b>Vancouver</b>.</p>"
    assert shown["topics"] == ["IETF"]


def test_show_an_unknown_post_is_exit_1(site: Path) -> None:
    result = run("posts", "show", "nope")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "Error: no post with slug 'nope'\n",
    )


# --- edit / publish / unpublish / remove -----------------------------------------------------


def test_edit_changes_the_title_and_keeps_the_guid(site: Path) -> None:
    before = json.loads(ok("posts", "show", "ietf-84-in-vancouver", "--json"))
    assert ok("posts", "edit", "ietf-84-in-vancouver", "--title", "IETF 84") == (
        "Updated ietf-84-in-vancouver\n"
    )
    after = json.loads(ok("posts", "show", "ietf-84-in-vancouver", "--json"))
    assert after["title"] == "IETF 84"
    assert after["guid"] == before["guid"]
    assert after["summary"] == "Five guests."
    assert after["topics"] == ["IETF"]
    assert after["updated_at"] == "2012-07-30T12:00:00+00:00"


def test_edit_with_slug_renames_and_keeps_the_guid(site: Path) -> None:
    before = json.loads(ok("posts", "show", "ietf-84-in-vancouver", "--json"))
    assert ok("posts", "edit", "ietf-84-in-vancouver", "--slug", "ietf-84") == (
        "Updated ietf-84 (was ietf-84-in-vancouver)\n"
    )
    after = json.loads(ok("posts", "show", "ietf-84", "--json"))
    assert after["guid"] == before["guid"]
    assert run("posts", "show", "ietf-84-in-vancouver").exit_code == 1


def test_edit_to_a_slug_in_use_is_exit_1(site: Path) -> None:
    result = run("posts", "edit", "wcit", "--slug", "ietf-84-in-vancouver")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: slug 'ietf-84-in-vancouver' is already used by another post\n",
    )


def test_edit_format_without_a_body_is_a_usage_error(site: Path) -> None:
    result = run("posts", "edit", "wcit", "--format", "markdown")
    assert result.exit_code == 2
    assert result.stderr.endswith("Error: --format needs --body or --body-file\n")


def test_publish_a_draft_at_a_local_date(site: Path) -> None:
    assert ok("posts", "publish", "wcit", "--date", "2012-07-11 09:00") == (
        f"Published wcit (2012-07-11 09:00, {TAG},2012-07-11:posts/wcit)\n"
    )
    listed = json.loads(ok("posts", "list", "--json", "--status", "published"))
    assert [p["slug"] for p in listed] == ["ietf-84-in-vancouver", "wcit"]
    assert listed[1]["published_at"] == "2012-07-11T07:00:00+00:00"


def test_publish_without_a_date_is_now(site: Path) -> None:
    assert ok("posts", "publish", "wcit") == (
        f"Published wcit (2012-07-30 14:00, {TAG},2012-07-30:posts/wcit)\n"
    )


def test_publish_with_a_bad_date_is_exit_1_and_changes_nothing(site: Path) -> None:
    result = run("posts", "publish", "wcit", "--date", "someday")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --date: unparsable date 'someday' "
        "(use ISO 8601, e.g. 2012-07-25 or 2012-07-25T09:00:00+02:00)\n"
    )
    assert json.loads(ok("posts", "show", "wcit", "--json"))["status"] == "draft"


def test_unpublish_then_publish_keeps_guid_and_date(site: Path) -> None:
    before = json.loads(ok("posts", "show", "ietf-84-in-vancouver", "--json"))
    assert ok("posts", "unpublish", "ietf-84-in-vancouver") == "Unpublished ietf-84-in-vancouver\n"
    assert "2012-07-25  draft      ietf-84-in-vancouver" in ok("posts", "list")
    assert ok("posts", "publish", "ietf-84-in-vancouver") == (
        f"Published ietf-84-in-vancouver (2012-07-25 09:00, {before['guid']})\n"
    )


def test_remove_asks_first(site: Path) -> None:
    refused = run("posts", "remove", "wcit", input="n\n")
    assert refused.exit_code == 1
    assert refused.stdout == "Delete wcit for good? [y/N]: n\n"
    assert refused.stderr == "Aborted!\n"
    assert ok("posts", "show", "wcit")
    agreed = run("posts", "remove", "wcit", input="y\n")
    assert (agreed.exit_code, agreed.stdout) == (
        0,
        "Delete wcit for good? [y/N]: y\nRemoved wcit\n",
    )
    assert run("posts", "show", "wcit").exit_code == 1


def test_remove_with_yes_does_not_ask(site: Path) -> None:
    assert ok("posts", "remove", "wcit", "--yes") == "Removed wcit\n"
    result = run("posts", "remove", "wcit", "--yes")
    assert (result.exit_code, result.stderr) == (1, "Error: no post with slug 'wcit'\n")


# --- search / import -------------------------------------------------------------------------


def test_search_lists_matches(site: Path) -> None:
    assert ok("posts", "search", "vancouver") == (
        "2012-07-25  ietf-84-in-vancouver  IETF 84 in Vancouver\n"
    )
    assert ok("posts", "search", "WCIT: (preparation)") == "-           wcit  WCIT preparation\n"
    assert ok("posts", "search", "geneva") == "No matches.\n"
    found = json.loads(ok("posts", "search", "five guests", "--json"))
    assert [p["slug"] for p in found] == ["ietf-84-in-vancouver"]


def test_import_then_reimport_of_the_same_file_is_unchanged(site: Path) -> None:
    (site / "more.json").write_text(json.dumps([{"title": "ACTA", "date": "2012-07-09"}]))
    assert ok("posts", "import", "more.json") == (
        "Imported 1 post from more.json (1 new, 0 updated, 0 unchanged)\n"
    )
    assert ok("posts", "import", "more.json", "--format", "json") == (
        "Imported 1 post from more.json (0 new, 0 updated, 1 unchanged)\n"
    )


# --- errors and usage ------------------------------------------------------------------------


def test_add_with_a_slug_in_use_is_exit_1(site: Path) -> None:
    result = run("posts", "add", "--title", "Again", "--slug", "wcit")
    assert (result.exit_code, result.stderr) == (
        1,
        "Error: slug 'wcit' is already used by another post\n",
    )


def test_add_with_a_bad_date_is_exit_1(site: Path) -> None:
    result = run("posts", "add", "--title", "When", "--date", "2012-02-30")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: unparsable date '2012-02-30' "
        "(use ISO 8601, e.g. 2012-07-25 or 2012-07-25T09:00:00+02:00)\n"
    )


def test_add_with_an_empty_title_is_exit_1(site: Path) -> None:
    result = run("posts", "add", "--title", "  ")
    assert (result.exit_code, result.stderr) == (1, "Error: missing title\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["posts", "add"], "Error: Missing option '--title'."),
        (["posts", "list", "--status", "old"], "Error: Invalid value for '--status'"),
        (["posts", "list", "--limit", "0"], "Error: Invalid value for '--limit'"),
        (["posts", "show"], "Error: Missing argument 'SLUG'."),
        (["posts", "frobnicate"], "Error: No such command 'frobnicate'."),
        (["posts", "import", "missing.json"], "Error: Invalid value for 'SOURCE'"),
        (["posts", "import", "x.json", "--format", "yaml"], "Error: Invalid value for '--format'"),
        (["posts", "add", "--title", "x", "--body", "b", "--body-file", "policyfeed.toml"],
         "Error: use --body or --body-file, not both"),
    ],
)  # fmt: skip
def test_usage_errors_are_exit_2(site: Path, args: list[str], message: str) -> None:
    (site / "x.json").write_text("[]")
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_every_command_has_help_that_ends_with_an_example() -> None:
    group = cli.commands["posts"]
    assert isinstance(group, click.Group)
    commands = [("init", cli.commands["init"])] + [
        (f"posts {name}", command) for name, command in group.commands.items()
    ]
    assert {name for name, _ in commands} >= {
        "init", "posts add", "posts list", "posts show", "posts edit", "posts publish",
        "posts unpublish", "posts remove", "posts search", "posts import",
    }  # fmt: skip
    for name, command in commands:
        assert command.help and "Example:" in command.help, name
        example = command.help.rsplit("Example:", 1)[1].replace("\b", "").split()
        assert example and example[0] == "policyfeed", name


def test_python_dash_m_policyfeed_help_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "policyfeed", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: policyfeed [OPTIONS] COMMAND [ARGS]...")
    assert "  posts " in done.stdout
    assert "  init " in done.stdout


def test_python_dash_m_policyfeed_exit_codes(tmp_path: Path) -> None:
    ok("init", "--base-url", BASE)
    usage = subprocess.run(
        [sys.executable, "-m", "policyfeed", "posts", "list", "--limit", "x"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert usage.returncode == 2
    missing = subprocess.run(
        [sys.executable, "-m", "policyfeed", "posts", "show", "nope"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert (missing.returncode, missing.stderr) == (1, "Error: no post with slug 'nope'\n")
