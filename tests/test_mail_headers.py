"""Headers that display what they say: text shaped like an RFC 2047 encoded word is itself
encoded, so a mail client shows it literally instead of decoding it into something else."""

from __future__ import annotations

import base64
import dataclasses
import email
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from policyfeed.config import Settings, load_settings
from policyfeed.digest.mail import Personaliser, Recipient, build_template, format_address
from policyfeed.errors import ConfigError

SECRET = "test-secret-of-the-mail-headers"
NOW = datetime(2012, 7, 30, 6, 0, tzinfo=UTC)


def encoded_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


# What an author would put in a title to make the Subject read something else.
FORGED = encoded_word("Your account is closed\r\nBcc: everyone@bank.example")
FAKE_ADMIN = encoded_word("Admin")


@dataclasses.dataclass(frozen=True)
class Digest:
    subject: str
    html: str = "<p>Hello</p>"
    text: str = "Hello\n"


def message_for(settings: Settings, subject: str, name: str = "") -> bytes:
    template = build_template(Digest(subject), settings, issue_number=1, variant="", now=NOW)
    return Personaliser(settings, SECRET).message(
        template, Recipient(7, "member7@example.org", name, "issue-1.sub-7.x@policy.example.org")
    )


def header_lines(data: bytes, name: str) -> str:
    """The raw header as it is on the wire, unfolded."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = head.replace("\r\n ", " ").split("\r\n")
    return next(line for line in unfolded if line.startswith(f"{name}: "))[len(name) + 2 :]


def displayed(raw: str) -> str:
    """What a mail client shows for an unstructured header: every encoded word decoded once."""
    return str(make_header(decode_header(raw)))


@pytest.mark.parametrize(
    "subject",
    [
        FORGED,
        f"Issue 3: {FORGED}",
        f"{FAKE_ADMIN} says hello",
        "=?iso-8859-1?q?Caf=E9?=",
        "An odd =?title",
    ],
)
def test_a_subject_that_looks_like_an_encoded_word_is_shown_literally(
    settings: Settings, subject: str
) -> None:
    data = message_for(settings, subject)
    raw = header_lines(data, "Subject")
    assert displayed(raw) == subject
    assert email.message_from_bytes(data, policy=policy.default)["Subject"] == subject
    assert "Bcc" not in raw and "\n" not in displayed(raw).replace(subject, "")


def test_a_plain_ascii_subject_is_still_written_as_it_is(settings: Settings) -> None:
    data = message_for(settings, "Public Policy #3: WCIT in Dubai, and 2 more")
    assert header_lines(data, "Subject") == "Public Policy #3: WCIT in Dubai, and 2 more"


@pytest.mark.parametrize(
    "name",
    [
        FAKE_ADMIN,
        f'"{FAKE_ADMIN}"',
        f"{FAKE_ADMIN} <admin@bank.example>",
        "Zoë Müller",
        "O'Neil, Pat",
    ],
)
def test_a_display_name_in_to_is_shown_as_it_was_given(settings: Settings, name: str) -> None:
    data = message_for(settings, "Hello", name=name)
    message = email.message_from_bytes(data, policy=policy.default)
    [address] = message["To"].addresses
    assert (address.display_name, address.addr_spec) == (name, "member7@example.org")
    assert data.split(b"\r\n\r\n", 1)[0].isascii()
    # Not even inside quotes: many clients decode an encoded word wherever they find one.
    assert FAKE_ADMIN not in header_lines(data, "To")


def test_the_list_name_and_the_sender_name_are_encoded_the_same_way(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "POLICYFEED_MAIL_FROM_NAME": FAKE_ADMIN,
            "POLICYFEED_MAIL_FROM": "digest@policy.example.org",
            "POLICYFEED_BASE_URL": "https://policy.example.org/",
        },
        cwd=tmp_path,
    )
    message = email.message_from_bytes(message_for(settings, "Hi"), policy=policy.default)
    assert message["From"].addresses[0].display_name == FAKE_ADMIN
    assert FAKE_ADMIN in str(message["List-Id"])


def test_format_address_quotes_what_needs_quoting_and_leaves_plain_names_alone() -> None:
    assert format_address("", "a@example.org") == b"a@example.org"
    assert format_address("Pat Smith", "a@example.org") == b"Pat Smith <a@example.org>"
    assert format_address("Smith, Pat", "a@example.org") == b'"Smith, Pat" <a@example.org>'
    long = format_address("É" * 120, "a@example.org")
    assert max(len(line) for line in long.split(b"\r\n")) <= 78


# --- reply_to -----------------------------------------------------------------------------------


def test_reply_to_with_a_non_ascii_display_name_is_encoded_not_refused(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"POLICYFEED_REPLY_TO": "Équipe politique <equipe@policy.example.org>"},
        cwd=tmp_path,
    )
    data = message_for(settings, "Hi")
    assert data.split(b"\r\n\r\n", 1)[0].isascii()
    message = email.message_from_bytes(data, policy=policy.default)
    [address] = message["Reply-To"].addresses
    assert (address.display_name, address.addr_spec) == (
        "Équipe politique",
        "equipe@policy.example.org",
    )


def test_reply_to_may_name_several_addresses(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"POLICYFEED_REPLY_TO": "Ed <ed@example.org>, desk@example.org"}, cwd=tmp_path
    )
    message = email.message_from_bytes(message_for(settings, "Hi"), policy=policy.default)
    assert [a.addr_spec for a in message["Reply-To"].addresses] == [
        "ed@example.org",
        "desk@example.org",
    ]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("not an address", "digest.reply_to"),
        ("Équipe <équipe@example.org>", "plain ASCII address"),
        ("Team <team@example.org>\r\nBcc: x@evil.example", "digest.reply_to"),
        ("Team: a@example.org, b@example.org;", "digest.reply_to"),
    ],
)
def test_a_reply_to_that_is_no_plain_address_list_is_refused(
    tmp_path: Path, value: str, why: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"POLICYFEED_REPLY_TO": value}, cwd=tmp_path)
    assert why in str(caught.value) and "\n" not in str(caught.value)


# --- the preview .eml (issue render --format eml) ----------------------------------------------


def test_the_preview_message_shows_such_a_subject_and_sender_literally(settings: Settings) -> None:
    from digest_support import make_issue, make_post
    from policyfeed.digest.render import render_issue
    from policyfeed.digest.sample import sample_message

    sender = dataclasses.replace(settings, mail_from_name=FAKE_ADMIN)
    digest = render_issue(make_issue(), [make_post(title=FORGED)], sender)
    raw = sample_message(digest, make_issue(), sender)
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == digest.subject and FORGED in digest.subject
    assert "Bcc" not in header_lines(raw, "Subject")
    assert message["From"].addresses[0].display_name == FAKE_ADMIN
