"""The rules: what a failure means for an address, who a token names, and a relay's permanent
refusal at SMTP time recorded as the bounce it is (a real aiosmtpd relay on 127.0.0.1)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlite_utils

from bounce_support import SECRET, publish_week, sent_messages, subscriber_status, with_secret
from policyfeed.audience.bounces import HARD, SOFT, classify
from policyfeed.audience.tokens import make_return_token, read_return_token
from policyfeed.config import Settings, load_settings
from policyfeed.errors import ConfigError
from smtp_server import SmtpSink

LIST = "digest.policy.example.org"


@pytest.mark.parametrize(
    ("status", "diagnostic", "phase", "kind"),
    [
        ("5.1.1", "smtp; 550 5.1.1 user unknown", "", HARD),
        ("5.1.10", "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound", "", HARD),
        ("5.2.1", "smtp; 550 5.2.1 The email account you tried to reach is disabled", "", HARD),
        ("5.4.4", "X-Postfix; Host or domain name not found", "", HARD),
        ("5.0.0", "smtp; 550 5.0.0 Requested action not taken", "", HARD),
        ("5.2.2", "smtp; 552 5.2.2 Mailbox full", "", SOFT),
        ("5.0.0", "smtp; 552 5.2.2 <a@b.example>: user is over quota", "", SOFT),
        ("5.3.4", "smtp; 552 5.3.4 Message size exceeds fixed maximum", "", SOFT),
        ("5.4.7", "X-Postfix; delivery time expired", "", SOFT),
        ("5.7.1", "smtp; 554 5.7.1 Service unavailable; client host blocked using zen", "", SOFT),
        ("5.7.26", "smtp; 550 5.7.26 Unauthenticated email is not accepted (DMARC)", "", SOFT),
        ("5.7.1", "smtp; 554 5.7.1 <a@aol.example>: Recipient address rejected: This account "
         "has been disabled or discontinued", "", HARD),
        ("5.2.122", "smtp; 554 5.2.122 The recipient has exceeded their limit", "", SOFT),
        ("4.4.1", "smtp; 451 4.4.1 no answer from host", "", SOFT),
        ("4.1.1", "smtp; 450 4.1.1 user unknown, try again later", "", SOFT),
        ("", "554 delivery error: dd This user doesn't have a yahoo.com account", "", HARD),
        ("", "550 Requested action not taken: mailbox unavailable", "RCPT", HARD),
        ("", "550 No such user here", "RCPT", HARD),
        ("", "554 Transaction failed: spam content", "end of data", SOFT),
        ("", "552 Requested mail action aborted: exceeded storage allocation", "RCPT", SOFT),
        ("", "421 Service not available", "", SOFT),
    ],
)  # fmt: skip
def test_classification_of_failures(status: str, diagnostic: str, phase: str, kind: str) -> None:
    verdict = classify(status, diagnostic, phase=phase)
    assert verdict is not None and verdict.kind == kind, verdict


def test_success_and_silence_are_no_failure() -> None:
    assert classify("2.0.0", "smtp; 250 2.0.0 OK") is None
    assert classify("", "the message could not be read") is None


def test_return_tokens_are_signed_canonical_and_bound_to_the_list() -> None:
    token = make_return_token(SECRET, 42, 7, LIST)
    assert read_return_token(SECRET, token, LIST) == (42, 7)
    _, subscriber, mac = token.split(".")
    assert mac.isalnum() and mac == mac.lower() and len(token) <= 36
    assert read_return_token(SECRET, token, "digest.other.example.org") is None
    assert read_return_token(SECRET, f"43.{subscriber}.{mac}", LIST) is None  # another delivery
    assert read_return_token(SECRET, f"042.{subscriber}.{mac}", LIST) is None
    assert read_return_token(SECRET, token + "x", LIST) is None
    assert read_return_token("", token, LIST) is None
    assert read_return_token(SECRET, "x" * 500, LIST) is None


# --- configuration --------------------------------------------------------------------------


def config(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "policyfeed.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={}, cwd=tmp_path)


def test_bounce_and_dkim_keys_drop_their_prefix_and_verp_is_a_switch(tmp_path: Path) -> None:
    settings = config(
        tmp_path,
        '[digest]\nmail_from = "news@example.org"\nbounce_address = "bounces@example.org"\n'
        'verp = false\n[bounces]\nsoft_limit = 5\nmailbox = "Maildir"\n',
    )
    assert (settings.bounce_mailbox_address, settings.verp) == ("bounces@example.org", False)
    assert (settings.bounces_soft_limit, settings.bounces_mailbox) == (5, "Maildir")
    env = load_settings(None, environ={"POLICYFEED_VERP": "no"}, cwd=tmp_path / "nowhere")
    assert env.verp is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[dkim]\nprivate_key = "-----BEGIN"\n', "POLICYFEED_DKIM_PRIVATE_KEY"),
        ('[bounces]\nimap_password = "x"\n', "POLICYFEED_IMAP_PASSWORD"),
        ('[digest]\nverp = "maybe"\n', "verp must be true or false"),
        ('[digest]\nbounce_address = "bounces at example.org"\n', "digest.bounce_address must be"),
        ('[digest]\nbounce_address = "a-very-long-name-for-the-bounces@example.org"\n',
         "leaves no room for the bounce token"),
        ("[bounces]\nsoft_limit = 0\n", "bounces.soft_limit must be at least 1"),
        ('[bounces]\nprocessed_folder = "../x"\n', "bounces.processed_folder must be a folder"),
        ('[dkim]\ndomain = "example.org"\n', "dkim.selector is not set"),
        ('[dkim]\ndomain = "example.org"\nselector = "s1"\n', "needs its private key"),
        ('[digest]\nmail_from = "news@example.org"\n[dkim]\ndomain = "example.net"\n'
         'selector = "s1"\nkey_file = "k.pem"\n', "is not aligned with the From address"),
        ('[dkim]\ndomain = "example.org"\nselector = "bad selector"\nkey_file = "k.pem"\n',
         "dkim.selector must be a DNS name"),
    ],
)  # fmt: skip
def test_wrong_bounce_and_dkim_settings_are_errors_that_name_them(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config(tmp_path, text)


# --- a permanent refusal at SMTP time -------------------------------------------------------


def test_a_5xx_from_the_relay_is_a_hard_bounce_and_the_member_is_not_mailed_again(
    demo_db: sqlite_utils.Database, settings: Settings, now: datetime
) -> None:
    refuse = {
        "policy-watch@example.org": "550 5.1.1 <policy-watch@example.org>: User unknown",
        "ana.silva@example.org": "552 5.2.2 Mailbox full",
    }
    with SmtpSink(refuse=refuse) as relay:
        live = with_secret(settings, **relay.settings_overrides())
        result = publish_week(demo_db, live, now)
        assert (result.sent, result.failed, result.bounced) == (3, 2, 1)
        assert "1 member suspended (hard bounce)" in result.summary()
        assert {m.mail_from.split("+")[0] for m in relay.messages} == {"policy-digest"}
    assert subscriber_status(demo_db, "policy-watch@example.org") == "bounced"
    assert subscriber_status(demo_db, "ana.silva@example.org") == "active"  # full: soft
    rows = demo_db.execute(
        "SELECT s.email, b.kind, b.status, b.source, b.diagnostic FROM bounces b "
        "JOIN subscribers s ON s.id = b.subscriber_id ORDER BY s.email"
    ).fetchall()
    assert rows == [
        ("ana.silva@example.org", "soft", "5.2.2", "smtp", "552 5.2.2 Mailbox full"),
        ("policy-watch@example.org", "hard", "5.1.1", "smtp",
         "550 5.1.1 <policy-watch@example.org>: User unknown"),
    ]  # fmt: skip
    outbox = with_secret(settings)
    publish_week(demo_db, outbox, now, week=1)
    assert "policy-watch@example.org" not in sent_messages(outbox)
