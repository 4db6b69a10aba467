"""Settings: defaults < policyfeed.toml < POLICYFEED_* environment < flags; clear errors."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from policyfeed.config import (
    DEFAULT_CONFIG_TEXT,
    Settings,
    check_config_text,
    load_settings,
    parse_duration,
    read_config_file,
    toml_string,
)
from policyfeed.errors import ConfigError


def write_config(folder: Path, text: str, name: str = "policyfeed.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.title == "Policy blog"
    assert settings.base_url == "http://127.0.0.1:8000/"
    assert settings.timezone == "UTC"
    assert settings.feed_limit == 50
    assert settings.output_dir == tmp_path / "public"
    assert settings.outbox_dir == tmp_path / "outbox"
    assert settings.templates_dir is None


def test_precedence_is_defaults_then_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, '[site]\ntitle = "From file"\nauthor = "File author"\n[build]\nfeed_limit = 20\n'
    )
    env = {"POLICYFEED_TITLE": "From env", "POLICYFEED_FEED_LIMIT": "30"}
    settings = load_settings(path, environ=env, cwd=tmp_path, overrides={"title": "From flag"})
    assert settings.title == "From flag"  # flag beats env and file
    assert settings.feed_limit == 30  # env beats file
    assert settings.author == "File author"  # file beats default
    assert settings.language == "en"  # default
    assert load_settings(path, environ=env, cwd=tmp_path).title == "From env"
    assert load_settings(path, environ={}, cwd=tmp_path).title == "From file"


def test_a_flag_left_out_does_not_hide_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"POLICYFEED_TITLE": "From env"}, cwd=tmp_path, overrides={"title": None}
    )
    assert settings.title == "From env"


def test_policyfeed_toml_in_the_current_folder_is_read_by_default(tmp_path: Path) -> None:
    write_config(tmp_path, '[site]\ntitle = "Found"\n')
    assert load_settings(environ={}, cwd=tmp_path).title == "Found"


def test_smtp_keys_drop_their_prefix_in_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[smtp]\nhost = "relay.example.org"\nport = 465\n')
    settings = load_settings(path, environ={}, cwd=tmp_path)
    assert (settings.smtp_host, settings.smtp_port) == ("relay.example.org", 465)


def test_paths_in_the_file_are_relative_to_the_file_and_in_env_to_the_folder(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    path = write_config(site, '[build]\noutput_dir = "www"\ntemplates_dir = "mine"\n')
    settings = load_settings(path, environ={"POLICYFEED_OUTBOX_DIR": "mail"}, cwd=tmp_path)
    assert settings.output_dir == site / "www"
    assert settings.templates_dir == site / "mine"
    assert settings.outbox_dir == tmp_path / "mail"


def test_environment_values_are_converted_to_numbers(tmp_path: Path) -> None:
    env = {"POLICYFEED_SMTP_PORT": "2525", "POLICYFEED_SMTP_RATE_LIMIT": "2.5"}
    settings = load_settings(environ=env, cwd=tmp_path)
    assert (settings.smtp_port, settings.smtp_rate_limit) == (2525, 2.5)


def test_base_url_gets_a_trailing_slash_and_gives_the_domain(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"POLICYFEED_BASE_URL": "https://Policy.Example.org/blog"}, cwd=tmp_path
    )
    assert settings.base_url == "https://Policy.Example.org/blog/"
    assert settings.domain == "policy.example.org"
    assert settings.absolute("/posts/acta/") == "https://Policy.Example.org/blog/posts/acta/"


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_come_from_the_environment_and_never_show_in_repr(tmp_path: Path) -> None:
    env = {
        "POLICYFEED_SMTP_PASSWORD": "hunter2-smtp",
        "POLICYFEED_SECRET": "s3cr3t-key-of-the-config-tests",
    }
    settings = load_settings(environ=env, cwd=tmp_path)
    assert (settings.smtp_password, settings.secret) == (
        "hunter2-smtp",
        "s3cr3t-key-of-the-config-tests",
    )
    assert "hunter2-smtp" not in repr(settings)
    assert "s3cr3t-key-of-the-config-tests" not in repr(settings)
    assert "hunter2-smtp" not in str(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[smtp]\npassword = "x"\n', "[smtp] password: secrets are read only from the environment"),
        ('[site]\nsecret = "x"\n', "[site] secret: secrets are read only from the environment"),
        ('[digest]\nsmtp_password = "x"\n', "[digest] smtp_password: secrets are read only"),
        ('[web]\npreview_password = "x"\n', "[web] preview_password: secrets are read only"),
    ],
)
def test_secrets_in_the_file_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={}, cwd=tmp_path)
    assert message in str(caught.value)
    assert "POLICYFEED_" in str(caught.value)
    assert '"x"' not in str(caught.value) and "'x'" not in str(caught.value)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[site]\ntitel = "x"\n', "policyfeed.toml: unknown key 'titel' in [site] (known: title,"),
        (
            '[smtp]\nhots = "x"\n',
            "policyfeed.toml: unknown key 'hots' in [smtp] (known: host, port",
        ),
        (
            "[sight]\n",
            "policyfeed.toml: unknown section [sight] "
            "(known: site, build, digest, smtp, web, bounces, dkim, signup)",
        ),
        (
            'title = "x"\n',
            "policyfeed.toml: title must be inside its section: [site] title = …",
        ),
        ('site = "x"\n', "policyfeed.toml: site must be a table ([site])"),
        (
            'secret = "0123456789abcdef"\n[site]\ntitle = "x"\n',
            "policyfeed.toml: secret: secrets are read only from the environment "
            "(POLICYFEED_SECRET); remove it from the file",
        ),
        (
            'password = "hunter2"\n',
            "policyfeed.toml: password: secrets are read only from the environment "
            "(POLICYFEED_SMTP_PASSWORD); remove it from the file",
        ),
        (
            'colour = "red"\n',
            "policyfeed.toml: colour = … is outside any section, and no section has a key "
            "'colour' (sections: site, build, digest, smtp, web, bounces, dkim, signup)",
        ),
        ("[build]\nfeed_limit = 1.5\n", "[build] feed_limit: feed_limit must be a whole number"),
        ('[build]\nfeed_limit = "ten"\n', "feed_limit must be a whole number, not 'ten'"),
        ("[build]\nfeed_limit = true\n", "feed_limit must be a whole number, not True"),
        ("[site]\ntitle = 3\n", "[site] title: title must be text, not 3"),
        ("[site\n", "policyfeed.toml: not valid TOML: "),
    ],
)
def test_a_wrong_file_is_an_error_naming_the_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={}, cwd=tmp_path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"POLICYFEED_BASE_URL": "policy.example.org"}, "site.base_url must be an absolute http"),
        ({"POLICYFEED_BASE_URL": "ftp://policy.example.org/"}, "site.base_url must be an absolute"),
        ({"POLICYFEED_TIMEZONE": "Mars/Olympus_Mons"}, "site.timezone: unknown time zone"),
        ({"POLICYFEED_TIMEZONE": "../../etc/passwd"}, "site.timezone: unknown time zone"),
        ({"POLICYFEED_LANGUAGE": "english!"}, "site.language must be a language tag"),
        ({"POLICYFEED_FEED_LIMIT": "0"}, "build.feed_limit must be at least 1, not 0"),
        (
            {"POLICYFEED_FEED_LIMIT": "many"},
            "POLICYFEED_FEED_LIMIT: build.feed_limit must be a whole",
        ),
        (
            {"POLICYFEED_SMTP_TIMEOUT": "30s"},
            "POLICYFEED_SMTP_TIMEOUT: smtp.timeout must be a number",
        ),
        ({"POLICYFEED_SMTP_PORT": "99999"}, "smtp.port must be a port number from 1 to 65535"),
        ({"POLICYFEED_SMTP_PORT": "0"}, "smtp.port must be a port number from 1 to 65535"),
        ({"POLICYFEED_SMTP_SECURITY": "ssl"}, "smtp.security must be one of starttls, tls, none"),
        ({"POLICYFEED_SMTP_RATE_LIMIT": "-1"}, "smtp.rate_limit must be 0 (no limit)"),
        ({"POLICYFEED_MAX_LATENESS": "two days"}, "max_lateness: not a duration: 'two days'"),
        ({"POLICYFEED_SIGNUP_CONFIRM_WITHIN": "7 days"}, "signup.confirm_within: not a duration"),
        ({"POLICYFEED_MAIL_FROM_NAME": "Digest\r\nBcc: x@evil.example"}, "digest.mail_from_name"),
        ({"POLICYFEED_TITLE": "Policy\nBcc: x@evil.example"}, "site.title must be one line"),
        ({"POLICYFEED_MAIL_FROM": "a@example.org\r\nBcc: x@evil.example"}, "digest.mail_from"),
        ({"POLICYFEED_MAIL_FROM": "digest@exämple.org"}, "digest.mail_from must be a plain"),
        ({"POLICYFEED_EDITOR_EMAIL": "Ed <ed@example.org>"}, "site.editor_email must be a plain"),
        ({"POLICYFEED_REPLY_TO": "r@example.org\nBcc: x@evil.example"}, "digest.reply_to"),
        ({"POLICYFEED_LIST_ID": "digest example>\nX: y"}, "digest.list_id must be a dotted"),
        ({"POLICYFEED_APPROVAL": "yes"}, "digest.approval must be one of none, required, not"),
        (
            {"POLICYFEED_APPROVAL": "required"},
            'digest.approval = "required" needs site.editor_email',
        ),
        ({"POLICYFEED_PREVIEW_URL": "127.0.0.1:8000"}, "digest.preview_url must be the absolute"),
        (
            {"POLICYFEED_PREVIEW_URL": "https://policy.example.org/"},
            "digest.preview_url must lead to the preview, whose address ends in /preview/ "
            "(e.g. https://policy.example.org/preview/), not 'https://policy.example.org/': "
            "the approval copy's links would open the public site instead",
        ),
        (
            {"POLICYFEED_PREVIEW_URL": "https://policy.example.org/editors"},
            "digest.preview_url must lead to the preview, whose address ends in /preview/ "
            "(e.g. https://policy.example.org/editors/preview/)",
        ),
        ({"POLICYFEED_PREVIEW_PASSWORD": "short"}, "POLICYFEED_PREVIEW_PASSWORD must be at least"),
    ],
)
def test_bad_values_are_errors_naming_the_setting(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env, cwd=tmp_path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_value_in_the_file_names_the_setting(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[site]\nbase_url = "www.example.org"\n')
    with pytest.raises(ConfigError, match=r"site\.base_url .*'www\.example\.org'"):
        load_settings(path, environ={}, cwd=tmp_path)


def test_an_unknown_flag_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(environ={}, cwd=tmp_path, overrides={"colour": "blue"})


def test_a_missing_named_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: config file not found"):
        load_settings(tmp_path / "nowhere.toml", environ={}, cwd=tmp_path)


def test_a_config_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "policyfeed.toml"
    path.write_bytes(b'[site]\ntitle = "Caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"policyfeed\.toml: not UTF-8 text"):
        read_config_file(path)


# --- the rest --------------------------------------------------------------------------------


def test_settings_cannot_be_changed_after_loading(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.title = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90m", timedelta(minutes=90)), ("2d", timedelta(days=2)), (" 1.5 h ", timedelta(hours=1.5))],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_the_config_written_by_init_is_valid_and_complete(tmp_path: Path) -> None:
    title = 'Public "Policy" \\ Genève\tnotes'
    text = DEFAULT_CONFIG_TEXT.format(
        title=toml_string(title), base_url=toml_string("https://p.example.org/")
    )
    check_config_text(text, tmp_path / "policyfeed.toml")
    settings = load_settings(write_config(tmp_path, text), environ={}, cwd=tmp_path)
    assert (settings.title, settings.base_url) == (title, "https://p.example.org/")


@pytest.mark.parametrize("value", ['say "hi"', "back\\slash", "new\nline", "del\x7f", "ctl\x01"])
def test_toml_string_round_trips(value: str) -> None:
    assert tomllib.loads(f"key = {toml_string(value)}")["key"] == value


def test_check_config_text_names_a_bad_value(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG_TEXT.format(title=toml_string("x"), base_url=toml_string("ftp://x/"))
    with pytest.raises(ConfigError, match=r"site\.base_url must be an absolute http"):
        check_config_text(text, tmp_path / "policyfeed.toml")
    assert list(tmp_path.iterdir()) == []


def test_the_demo_config_loads(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parent.parent / "policyfeed.toml"
    settings = load_settings(demo, environ={}, cwd=tmp_path)
    assert settings.title == "Public Policy"
    assert settings.timezone == "Europe/Zurich"
    assert settings.description.startswith("Our work is based upon our fundamental belief")
    assert isinstance(settings, Settings)


def test_approval_and_the_preview_settings(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[site]\neditor_email = "ed@example.org"\n'
        '[digest]\napproval = "required"\npreview_url = "https://policy.example.org/preview"\n',
    )
    env = {"POLICYFEED_PREVIEW_PASSWORD": "correct horse battery"}

    settings = load_settings(path, environ=env, cwd=tmp_path)

    assert settings.approval == "required"
    assert settings.preview_url == "https://policy.example.org/preview/"
    assert settings.preview_password == "correct horse battery"
    assert "correct horse" not in repr(settings)
    assert load_settings(environ={}, cwd=tmp_path / "none").approval == "none"
