"""Site-level commands: init (and build, serve in their modules)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from policyfeed.cli import App, cli, pass_app_unchecked

WHY_BASE_URL = "feeds, pages and digests link to it, and posts take their permanent ids from it"


def _interactive() -> bool:
    """Whether init may ask (a person at a terminal, not a script or a pipe)."""
    return sys.stdin.isatty()


def _public_base_url(value: str) -> str:
    """``value`` as site.base_url (with its final "/"), or a ConfigError: not an absolute
    http(s) URL, or a loopback or placeholder address."""
    from pathlib import Path as _Path

    from policyfeed.config import (
        DEFAULT_CONFIG_TEXT,
        check_config_text,
        placeholder_reason,
        toml_string,
    )
    from policyfeed.errors import ConfigError

    value = value.strip()
    if value and not value.endswith("/"):
        value += "/"
    text = DEFAULT_CONFIG_TEXT.format(title='""', base_url=toml_string(value))
    check_config_text(text, _Path("policyfeed.toml"))
    reason = placeholder_reason(value)
    if reason:
        raise ConfigError(
            f"site.base_url: {value} ({reason}) is no public address; give the site's own, "
            f"e.g. https://policy.example.org/ ({WHY_BASE_URL})"
        )
    return value


def _with_sender(text: str, mail_from: str, postal_address: str) -> str:
    """The config text with init's --mail-from and --postal-address in [digest]."""
    from policyfeed.config import toml_string

    lines = []
    if mail_from:
        lines.append(f"mail_from = {toml_string(mail_from.strip())}")
    if postal_address:
        lines.append(f"postal_address = {toml_string(postal_address.strip())}")
    if not lines:
        return text
    return text.replace("[digest]\n", "[digest]\n" + "".join(f"{line}\n" for line in lines), 1)


def _ask_base_url() -> str:
    from policyfeed.errors import ConfigError

    def checked(value: str) -> str:
        try:
            return _public_base_url(value)
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None

    answer = click.prompt(
        "The site's public address (its base URL, e.g. https://policy.example.org/)",
        value_proc=checked,
    )
    return str(answer)


@cli.command()
@click.option("--title", default="Policy blog", show_default=True, help="Site title.")
@click.option(
    "--base-url",
    help="The site's public address, e.g. https://policy.example.org/ (asked for on a "
    "terminal when not given; required otherwise).",
)
@click.option(
    "--mail-from",
    default="",
    help="The digest's sender address (digest.mail_from), e.g. digest@policy.example.org.",
)
@click.option(
    "--postal-address",
    default="",
    help="The organisation's postal address, shown in every digest (digest.postal_address; "
    "CAN-SPAM requires one).",
)
@pass_app_unchecked
def init(app: App, title: str, base_url: str | None, mail_from: str, postal_address: str) -> None:
    """Create the database and a policyfeed.toml (an existing config is kept).

    The config needs the site's public address (site.base_url): feeds, pages and digests
    link to it, and posts take their permanent ids from it, which feed readers keep for good.
    init asks for it on a terminal and requires --base-url otherwise; a loopback or
    placeholder address (127.0.0.1, localhost, *.invalid, your-site…) is refused.

    Example:

    \b
        policyfeed init --title "Public Policy" --base-url https://policy.example.org/ \\
            --mail-from digest@policy.example.org --postal-address "Rue de Lausanne 1, Geneva"

    publish refuses to mail until digest.mail_from and digest.postal_address are set: give
    them here or in the config later.
    """
    from policyfeed.config import (
        DEFAULT_CONFIG_TEXT,
        check_config_text,
        load_settings,
        placeholder_reason,
        toml_string,
    )
    from policyfeed.output import write_text_if_changed

    config_path = app.config_path or Path("policyfeed.toml")
    if config_path.exists():
        settings = load_settings(config_path)  # fail now, not later, if the file is wrong
        click.echo(f"Kept {config_path} (already there)")
        given = click.get_current_context().get_parameter_source
        kept = [  # (option, value given, its key, whether the file says otherwise)
            ("--title", title, "site.title", title != settings.title),
            ("--base-url", base_url, "site.base_url",
             base_url is not None and base_url.rstrip("/") + "/" != settings.base_url),
            ("--mail-from", mail_from, "digest.mail_from", mail_from != settings.mail_from),
            ("--postal-address", postal_address, "digest.postal_address",
             postal_address != settings.postal_address),
        ]  # fmt: skip
        for option, value, key, differs in kept:
            name = option[2:].replace("-", "_")
            if differs and given(name) is not click.core.ParameterSource.DEFAULT:
                click.echo(
                    f"Warning: {option} {value} not written: {config_path} exists; change "
                    f"{key} in it",
                    err=True,
                )
        reason = placeholder_reason(settings.base_url)
        if reason:
            click.echo(
                f"Warning: site.base_url is {settings.base_url} ({reason}): no post can be "
                "published and no issue made until it is the site's public address",
                err=True,
            )
    else:
        if base_url is None:
            if not _interactive():
                raise click.UsageError(
                    "init needs the site's public address: --base-url "
                    f"https://policy.example.org/ ({WHY_BASE_URL})"
                )
            base_url = _ask_base_url()
        else:
            base_url = _public_base_url(base_url)
        text = DEFAULT_CONFIG_TEXT.format(title=toml_string(title), base_url=toml_string(base_url))
        text = _with_sender(text, mail_from, postal_address)
        check_config_text(text, config_path)  # a bad --title leaves nothing behind
        write_text_if_changed(config_path, text)
        click.echo(f"Wrote {config_path}")
    app.db_path.parent.mkdir(parents=True, exist_ok=True)
    app.may_create_db = True
    app.db  # noqa: B018 - opening creates and migrates
    click.echo(f"Database ready: {app.db_path}")
