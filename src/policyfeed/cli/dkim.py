"""``policyfeed dkim …``: the DKIM key that signs every message."""

from __future__ import annotations

import os
from pathlib import Path

import click

from policyfeed.cli import App, cli, pass_app_unchecked


@cli.group()
def dkim() -> None:
    """DKIM signing: make a key pair, show the DNS record to publish.

    Example:

    \b
        policyfeed dkim keygen --domain example.org --selector policy2026
        policyfeed dkim show
    """


@dkim.command("keygen")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the private key (default dkim.key_file, else dkim-SELECTOR.pem).",
)
@click.option("--selector", help="The DKIM selector (default dkim.selector, else 'policyfeed').")
@click.option("--domain", help="The signing domain (default dkim.domain, else the From domain).")
@click.option(
    "--bits", type=click.IntRange(1024, 8192), default=2048, show_default=True, help="RSA size."
)
@click.option("--force", is_flag=True, help="Replace an existing key file.")
@pass_app_unchecked  # makes a key file: needs no database
def dkim_keygen(
    app: App, out: Path | None, selector: str | None, domain: str | None, bits: int, force: bool
) -> None:
    """Write a new RSA key pair and print the DNS TXT record to publish.

    The private key goes to --out (readable by you only; never into policyfeed.toml), the
    public key beside it (.pub). Publish the record, wait for it to be visible (see the
    README, Deployment), then set [dkim] domain, selector and key_file: every message is
    signed from then on.

    Example:

    \b
        policyfeed dkim keygen --selector pf2026 --out /etc/policyfeed/dkim.pem
        dig +short TXT pf2026._domainkey.example.org
    """
    from policyfeed.delivery.dkim import generate_key, read_key, zone_record

    settings = app.settings
    selector = selector or settings.dkim_selector or "policyfeed"
    domain = domain or settings.dkim_domain or settings.sender.rpartition("@")[2]
    target = out or settings.dkim_key_file or Path(f"dkim-{selector}.pem")
    public = target.with_name(target.name + ".pub")
    if target.exists() and not force:
        raise click.ClickException(
            f"{target} exists; keep it, or replace it with --force (mail signed with the old "
            "key fails once its DNS record is gone)"
        )
    if not target.parent.is_dir():
        raise click.ClickException(f"{target.parent}: no such folder")
    pem = generate_key(bits)
    _, public_b64, _ = read_key(pem)
    staged = target.with_name(f".{target.name}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staged, target)
    public.write_text(
        "-----BEGIN PUBLIC KEY-----\n"
        + "\n".join(public_b64[i : i + 64] for i in range(0, len(public_b64), 64))
        + "\n-----END PUBLIC KEY-----\n",
        encoding="ascii",
    )
    click.echo(f"Wrote the private key to {target} (mode 600) and the public key to {public}.")
    click.echo("Publish this TXT record in the DNS zone of " + domain + ":\n")
    click.echo(zone_record(selector, domain, public_b64))
    click.echo(
        f'\nThen in policyfeed.toml:\n\n[dkim]\ndomain = "{domain}"\nselector = "{selector}"\n'
        f'key_file = "{target}"'
    )


@dkim.command("show")
@pass_app_unchecked  # reads the key and the config only
def dkim_show(app: App) -> None:
    """Check the configured key (it signs a test message that must verify against it) and
    print the DNS record it needs.

    Compare the record with what the DNS serves (`dig +short TXT SELECTOR._domainkey.DOMAIN`):
    receivers verify against the DNS, so a record that differs fails every message.

    Example:

    \b
        policyfeed dkim show
    """
    from policyfeed.delivery.dkim import make_signer, txt_value, zone_record

    signer = make_signer(app.settings)
    if signer is None:
        raise click.ClickException(
            "DKIM is off: set [dkim] domain, selector and key_file (`policyfeed dkim keygen` "
            "makes a key)"
        )
    click.echo(
        f"DKIM: d={signer.domain} s={signer.selector}, RSA {signer.bits} bits; a test signature "
        "verifies against the key."
    )
    click.echo(f"DNS name: {signer.dns_name}")
    click.echo(f"TXT text: {txt_value(signer.public_b64)}\n")
    click.echo(zone_record(signer.selector, signer.domain, signer.public_b64))
