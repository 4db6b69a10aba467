"""policyfeed check, settings: what mail needs besides a well-formed config."""

from __future__ import annotations

import dataclasses

import pytest

from policyfeed.check.report import Report
from policyfeed.check.settings import check_settings
from policyfeed.config import Settings

EXAMPLE_DOMAIN = (
    "WARN settings site.base_url: https://policy.example.org/ is on a domain reserved for "
    "examples (RFC 2606): its links lead nowhere"
)


def lines(settings: Settings, **changes: object) -> list[str]:
    report = Report()
    check_settings(report, dataclasses.replace(settings, **changes))  # type: ignore[arg-type]
    return [finding.line for finding in report.findings]


def test_the_demo_settings_with_a_secret_only_warn_of_the_example_domain(
    settings: Settings,
) -> None:
    assert lines(settings, secret="s3cret-of-the-check-tests") == [EXAMPLE_DOMAIN]


def test_a_real_domain_with_a_secret_passes(settings: Settings) -> None:
    assert (
        lines(settings, secret="s3cret-of-the-check-tests", base_url="https://policy.isoc.ch/")
        == []
    )


def test_a_schedule_publish_cannot_read_is_an_error(settings: Settings) -> None:
    assert lines(settings, secret="s" * 32, schedule="0 8 * * MONDY")[0] == (
        "ERROR settings digest.schedule: '0 8 * * MONDY' is not a cron expression of five "
        "fields (minute hour day month weekday), e.g. '0 8 * * MON': publish refuses to run"
    )


def test_no_sender_address(settings: Settings) -> None:
    assert lines(settings, secret="s" * 32, mail_from="")[0] == (
        "ERROR settings digest.mail_from: no sender address: messages would come from "
        "newsletter@policy.example.org, which nobody chose (set digest.mail_from)"
    )


def test_no_sender_name(settings: Settings) -> None:
    assert lines(settings, secret="s" * 32, mail_from_name="") == [
        "WARN settings digest.mail_from_name: no sender name: inboxes show the bare address "
        "(set digest.mail_from_name)",
        EXAMPLE_DOMAIN,
    ]


def test_no_postal_address(settings: Settings) -> None:
    assert lines(settings, secret="s" * 32, postal_address=" ")[0] == (
        "ERROR settings digest.postal_address: no postal address: CAN-SPAM requires one in every "
        "message and GDPR asks the sender to say who it is (set digest.postal_address)"
    )


def test_no_secret_for_a_relay_is_an_error_and_for_the_outbox_a_warning(
    settings: Settings,
) -> None:
    assert lines(settings, secret="", smtp_host="smtp.example.org")[0] == (
        "ERROR settings POLICYFEED_SECRET: not set: the unsubscribe links cannot be signed, and "
        "mail to a relay does not go out without it"
    )
    assert lines(settings, secret="") == [
        "WARN settings POLICYFEED_SECRET: not set: the outbox's unsubscribe links use the public "
        "development key, so anyone could unsubscribe anyone",
        EXAMPLE_DOMAIN,
    ]


def test_an_unsubscribe_url_that_is_not_https(settings: Settings) -> None:
    assert lines(settings, secret="s" * 32, unsubscribe_url="http://policy.example.org/leave")[
        0
    ] == (
        "ERROR settings digest.unsubscribe_url: the unsubscribe URL "
        "http://policy.example.org/leave is not https: one-click unsubscribe (RFC 8058) and the "
        "large mailbox providers require https"
    )


@pytest.mark.parametrize(
    ("base_url", "line"),
    [
        (
            "https://127.0.0.1:8000/",
            "ERROR settings site.base_url: https://127.0.0.1:8000/ is this machine's own address "
            "(the default): every link in the mail and the feeds would lead readers to their own "
            "computer",
        ),
        (
            "https://localhost/",
            "ERROR settings site.base_url: https://localhost/ is this machine's own address (the "
            "default): every link in the mail and the feeds would lead readers to their own "
            "computer",
        ),
        (
            "https://your-site.org/",
            "ERROR settings site.base_url: https://your-site.org/ is a placeholder: set the "
            "site's public address",
        ),
        (
            "https://192.168.1.20/",
            "WARN settings site.base_url: https://192.168.1.20/ is a private network address "
            "that readers outside cannot reach",
        ),
        (
            "https://news.test/",
            "WARN settings site.base_url: https://news.test/ is on a domain reserved for "
            "examples (RFC 2606): its links lead nowhere",
        ),
    ],
)
def test_a_base_url_readers_cannot_reach(settings: Settings, base_url: str, line: str) -> None:
    assert lines(settings, secret="s" * 32, base_url=base_url) == [line]


def test_the_default_base_url_also_makes_the_unsubscribe_url_plain_http(
    settings: Settings,
) -> None:
    found = lines(Settings(), secret="s" * 32)
    assert (
        "ERROR settings site.base_url: the unsubscribe URL http://127.0.0.1:8000/unsubscribe is "
        "not https: one-click unsubscribe (RFC 8058) and the large mailbox providers require https"
    ) in found
    assert sum(line.startswith("ERROR") for line in found) == 4  # sender, address, https, base
