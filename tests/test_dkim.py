"""DKIM: `dkim keygen` makes a key pair and the DNS record; every message of a run is signed
after personalisation; dkimpy's verifier accepts each against the published record, and refuses
a message altered after signing."""

from __future__ import annotations

import os
import random
import re
import shutil
import stat
from datetime import datetime
from pathlib import Path

import dkim
import pytest
import sqlite_utils
from click.testing import CliRunner

from bounce_support import publish_week, sent_messages, with_secret
from policyfeed.cli import cli
from policyfeed.config import Settings
from policyfeed.delivery.dkim import generate_key, read_key, txt_value
from policyfeed.digest.issues import get_issue_by_period
from policyfeed.errors import ConfigError
from smtp_server import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = {
    b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
    b"list-unsubscribe-post",
}  # fmt: skip


def record_from(output: str) -> tuple[str, bytes]:
    """(DNS name, TXT text) from the zone-file record `dkim keygen` prints."""
    match = re.search(r"^(\S+)\. 3600 IN TXT \((.*?)\)", output, re.M | re.S)
    assert match, output
    text = "".join(re.findall(r'"([^"]*)"', match.group(2)))
    assert all(len(s) <= 255 for s in re.findall(r'"([^"]*)"', match.group(2)))
    return match.group(1), text.encode("ascii")


def dns_serving(name: str, text: bytes):
    def lookup(query: bytes, timeout: int = 5) -> bytes | None:
        return text if query.decode().rstrip(".") == name else None

    return lookup


def _prime(bits: int, rng: random.Random) -> int:
    """A random prime of ``bits`` bits (Miller-Rabin, 40 rounds)."""
    while True:
        n = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
        d, r = n - 1, 0
        while d % 2 == 0:
            d, r = d // 2, r + 1
        for _ in range(40):
            x = pow(rng.randrange(2, n - 1), d, n)
            if x in (1, n - 1):
                continue
            for _ in range(r - 1):
                x = pow(x, 2, n)
                if x == n - 1:
                    break
            else:
                break
        else:
            return n


def small_key(bits: int) -> bytes:
    """An RSA key too small to use (cryptography refuses to make one under 1024 bits)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rng = random.Random(bits)
    e = 65537
    while True:
        p, q = _prime(bits // 2, rng), _prime(bits // 2, rng)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e:
            break
    d = pow(e, -1, phi)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, p * q)
    )
    return numbers.private_key(unsafe_skip_rsa_key_validation=True).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, str, bytes]:
    result = CliRunner().invoke(
        cli,
        ["dkim", "keygen", "--selector", "pf2012", "--domain", "example.org", "--out",
         str(tmp_path / "dkim.pem")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    name, text = record_from(result.output)
    return tmp_path / "dkim.pem", name, text


def test_keygen_writes_a_private_key_only_its_owner_reads_and_prints_the_record(
    keypair: tuple[Path, str, bytes], tmp_path: Path
) -> None:
    key, name, text = keypair
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert (tmp_path / "dkim.pem.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert name == "pf2012._domainkey.example.org"
    assert text.startswith(b"v=DKIM1; k=rsa; p=MII")
    again = CliRunner().invoke(cli, ["dkim", "keygen", "--out", str(key)])
    assert again.exit_code == 1
    assert "exists; keep it, or replace it with --force" in again.output
    assert key.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def signed_settings(settings: Settings, key: Path) -> Settings:
    return with_secret(
        settings, dkim_domain="example.org", dkim_selector="pf2012", dkim_key_file=key
    )


def test_every_message_is_signed_and_verifies_and_an_altered_one_fails(
    demo_db: sqlite_utils.Database,
    settings: Settings,
    now: datetime,
    keypair: tuple[Path, str, bytes],
) -> None:
    key, name, text = keypair
    live = signed_settings(settings, key)
    publish_week(demo_db, live, now)
    messages = sent_messages(live)
    assert len(messages) == 5
    lookup = dns_serving(name, text)
    other_record = txt_value(read_key(generate_key(1024))[1]).encode()  # someone else's key
    signatures = set()
    for sent in messages.values():
        # The outbox copy starts with Return-Path (not signed), then the signature.
        head = sent.raw.split(b"\r\n\r\n", 1)[0]
        assert head.split(b"\r\n")[1].startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
        assert dkim.verify(sent.raw, dnsfunc=lookup), sent.email
        fields = dict(
            part.strip().split(b"=", 1)
            for part in re.search(rb"DKIM-Signature:(.*?)\r\n(?! )", sent.raw, re.S)
            .group(1)
            .replace(b"\r\n", b"")
            .split(b";")
            if part.strip()
        )
        assert (fields[b"d"], fields[b"s"], fields[b"c"]) == (
            b"example.org",
            b"pf2012",
            b"relaxed/relaxed",
        )
        signed = {h.strip() for h in fields[b"h"].split(b":")}
        assert signed >= REQUIRED
        signatures.add(fields[b"b"])
        body = sent.raw.split(b"\r\n\r\n", 1)[1]
        altered_body = sent.raw.replace(body, body.replace(b"</body>", b"</bodY>", 1))
        assert altered_body != sent.raw
        assert not dkim.verify(altered_body, dnsfunc=lookup)
        altered_to = sent.raw.replace(b"\r\nTo: ", b"\r\nTo: x", 1)
        assert not dkim.verify(altered_to, dnsfunc=lookup)
        assert not dkim.verify(sent.raw, dnsfunc=dns_serving(name, other_record))
    assert len(signatures) == 5  # each personalised message signed on its own


def test_messages_through_the_relay_are_signed_too(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime,
    keypair: tuple[Path, str, bytes],
) -> None:  # fmt: skip
    key, name, text = keypair
    with SmtpSink() as relay:
        live = signed_settings(settings, key)
        from dataclasses import replace

        publish_week(demo_db, replace(live, **relay.settings_overrides()), now)
    assert len(relay.messages) == 5
    for received in relay.messages:
        assert received.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(received.data, dnsfunc=dns_serving(name, text))


def test_the_key_may_come_from_the_environment_and_never_from_the_file(
    keypair: tuple[Path, str, bytes], tmp_path: Path, demo_db_path: Path
) -> None:
    key, name, text = keypair
    config = tmp_path / "policyfeed.toml"
    shutil.copyfile(ROOT / "policyfeed.toml", config)
    with config.open("a") as handle:
        handle.write('\n[dkim]\ndomain = "example.org"\nselector = "pf2012"\n')
    env = {"POLICYFEED_DKIM_PRIVATE_KEY": key.read_text()}
    shown = CliRunner().invoke(cli, ["--config", str(config), "dkim", "show"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "d=example.org s=pf2012, RSA 2048 bits; a test signature verifies" in shown.output
    assert record_from(shown.output) == (name, text)
    with config.open("a") as handle:
        handle.write(f'private_key = """{key.read_text()}"""\n')
    refused = CliRunner().invoke(cli, ["--config", str(config), "dkim", "show"], env=env)
    assert refused.exit_code == 1
    assert "[dkim] private_key: secrets are read only from the environment" in refused.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file (`policyfeed dkim keygen` makes one)"),
        (b"", "the file is empty"),
        (b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
         "not an unencrypted PEM private key"),
        ("small", "receivers ignore keys under 1024"),
    ],
)  # fmt: skip
def test_a_missing_or_broken_key_stops_publish_before_anything_is_written(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime, tmp_path: Path,
    content: bytes | str | None, message: str,
) -> None:  # fmt: skip
    from policyfeed.publish import publish

    key = tmp_path / "broken.pem"
    if content == "small":
        key.write_bytes(small_key(512))
    elif isinstance(content, bytes):
        key.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        publish(demo_db, signed_settings(settings, key), now=now)
    assert get_issue_by_period(demo_db, "2012-07-30T08:00") is None
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox").rglob("*.org"))


def test_keygen_refuses_a_missing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["dkim", "keygen", "--out", str(tmp_path / "no" / "k.pem")])
    assert result.exit_code == 1
    assert "no such folder" in result.output
    assert not os.path.exists(tmp_path / "no")


def test_a_test_copy_is_signed_as_the_members_copies_are(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime,
    keypair: tuple[Path, str, bytes],
) -> None:  # fmt: skip
    from policyfeed.delivery.sendtest import send_test_copies

    key, name, text = keypair
    live = signed_settings(settings, key)
    publish_week(demo_db, live, now)
    report = send_test_copies(demo_db, live, 1, ["editor@example.org"], now=now)
    (outcome,) = report.outcomes
    copy = next(p.read_bytes() for p in (live.outbox_dir / "new").iterdir() if "test-" in p.name)
    assert copy.startswith(b"Return-Path: <policy-digest@example.org>\r\nDKIM-Signature:")
    assert dkim.verify(copy, dnsfunc=dns_serving(name, text)), outcome


def test_test_copies_and_the_copy_for_approval_are_signed_and_verify(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime,
    keypair: tuple[Path, str, bytes],
) -> None:  # fmt: skip
    from dataclasses import replace

    from policyfeed.delivery.sendtest import send_test_copies
    from policyfeed.digest.issues import get_issue
    from policyfeed.publish import publish

    key, name, text = keypair
    live = replace(signed_settings(settings, key), approval="required")
    with SmtpSink() as relay:
        relayed = replace(live, **relay.settings_overrides())
        assert publish(demo_db, relayed, now=now).status == "awaiting_approval"
        send_test_copies(
            demo_db, relayed, get_issue(demo_db, 1).number, ["ed@example.org"], now=now
        )
    assert [m.rcpt_tos for m in relay.messages] == [
        ("policy-editor@example.org",),
        ("ed@example.org",),
    ]
    for received in relay.messages:
        assert received.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(received.data, dnsfunc=dns_serving(name, text))
