"""SmtpTransport against a real relay (aiosmtpd on 127.0.0.1), checking what actually arrives."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policyfeed.config import Settings
from policyfeed.delivery.smtp import RateLimiter, SmtpTransport, backoff_delay
from policyfeed.delivery.transport import (
    RecipientDeferred,
    SendBlocked,
    SendDeferred,
    SendRefused,
    SendUncertain,
)
from policyfeed.errors import ConfigError
from smtp_server import SmtpSink, TlsFiles, make_tls

SENDER = "newsletter@policy.example.org"


def message(n: int, to: str = "reader@example.org") -> bytes:
    return (
        f"From: Policy <{SENDER}>\r\nTo: {to}\r\nSubject: Issue {n}\r\n"
        f"Message-ID: <issue-1.sub-{n}@policy.example.org>\r\n\r\n"
        "Hello.\r\n.A line that starts with a dot\r\n.\r\nThe end.\r\n"
    ).encode()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


class Sleeps(list[float]):
    """Records the waits the transport asks for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(round(seconds, 6))


def transport_for(
    sink: SmtpSink, tls: TlsFiles | None = None, sleep: Any = None, **overrides: Any
) -> SmtpTransport:
    values: dict[str, Any] = {
        "secret": "s3cret-of-the-smtp-tests",
        "smtp_timeout": 5.0,
        **sink.settings_overrides(),
    }
    if sink.auth is not None:
        values["smtp_password"] = sink.auth[1]
    values.update(overrides)
    settings = dataclasses.replace(Settings(), **values)
    return SmtpTransport(
        settings,
        ssl_context=tls.client_context if tls else None,
        sleep=Sleeps() if sleep is None else sleep,
        backoff=0.5,
    )


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as relay:
        yield relay


def send(transport: SmtpTransport, n: int, to: str | None = None) -> None:
    to = to or f"reader{n}@example.org"
    transport.send(message(n, to), sender=SENDER, recipient=to, message_id=f"<{n}@x>")


# --- delivery ---------------------------------------------------------------------------------


def test_messages_arrive_intact_over_one_reused_connection(sink: SmtpSink) -> None:
    transport = transport_for(sink)
    for n in range(5):
        send(transport, n)
    transport.close()
    assert [m.rcpt_tos for m in sink.messages] == [(f"reader{n}@example.org",) for n in range(5)]
    assert [m.data for m in sink.messages] == [
        message(n, f"reader{n}@example.org") for n in range(5)
    ]
    assert {m.mail_from for m in sink.messages} == {SENDER}
    assert {m.connection for m in sink.messages} == {1}
    assert transport.connections == 1


def test_a_non_ascii_address_goes_through_a_relay_that_speaks_smtputf8(sink: SmtpSink) -> None:
    transport = transport_for(sink)
    send(transport, 1, to="zoë@exämple.org")
    transport.close()
    assert sink.recipients() == {"zoë@exämple.org": 1}


def test_starttls_and_auth_deliver(tls: TlsFiles) -> None:
    with SmtpSink(security="starttls", tls=tls, auth=("newsletter", "pa55word")) as relay:
        transport = transport_for(relay, tls)
        send(transport, 1)
        send(transport, 2)
        transport.close()
    assert len(relay.messages) == 2
    assert all(m.tls and m.login == "newsletter" for m in relay.messages)


def test_implicit_tls_delivers(tls: TlsFiles) -> None:
    with SmtpSink(security="tls", tls=tls, auth=("newsletter", "pa55word")) as relay:
        transport = transport_for(relay, tls)
        send(transport, 1)
        transport.close()
    assert [(m.tls, m.login) for m in relay.messages] == [(True, "newsletter")]


def test_an_untrusted_certificate_is_blocked_without_sending_or_retrying(tls: TlsFiles) -> None:
    with SmtpSink(security="starttls", tls=tls) as relay:
        sleeps = Sleeps()
        transport = transport_for(relay, sleep=sleeps)  # the system's trust store: no test CA
        transport._ssl_context = ssl.create_default_context()
        with pytest.raises(SendBlocked, match=r"TLS certificate not accepted .*unable to get"):
            send(transport, 1)
    assert relay.messages == [] and sleeps == []


def test_a_certificate_for_another_host_is_blocked(tmp_path: Path) -> None:
    other = make_tls(tmp_path, names=("relay.example.org",))
    with SmtpSink(security="starttls", tls=other) as relay:
        transport = transport_for(relay, other)  # trusted, but not for 127.0.0.1
        with pytest.raises(SendBlocked, match=r"TLS certificate not accepted .*mismatch"):
            send(transport, 1)
    assert relay.messages == []


def test_implicit_tls_against_a_plain_text_port_is_blocked(sink: SmtpSink, tls: TlsFiles) -> None:
    transport = transport_for(sink, tls, smtp_security="tls")
    with pytest.raises(SendBlocked, match="TLS handshake failed"):
        send(transport, 1)
    assert sink.messages == []


def test_starttls_is_required_when_configured(sink: SmtpSink) -> None:
    sleeps = Sleeps()
    transport = transport_for(sink, smtp_security="starttls", sleep=sleeps)
    with pytest.raises(SendBlocked, match="does not offer STARTTLS"):
        send(transport, 1)
    assert sink.messages == [] and sleeps == []


def test_a_refused_login_stops_at_once_and_names_the_user_not_the_password(tls: TlsFiles) -> None:
    with SmtpSink(security="starttls", tls=tls, auth=("newsletter", "pa55word")) as relay:
        sleeps = Sleeps()
        transport = transport_for(relay, tls, sleep=sleeps, smtp_password="wrong-password")
        with pytest.raises(SendBlocked) as caught:
            send(transport, 1)
    assert "refused the login for 'newsletter': 535" in str(caught.value)
    assert "wrong-password" not in str(caught.value)
    assert "\n" not in str(caught.value)
    assert sleeps == []  # no retries: they would only lock the account
    assert relay.messages == []


def test_a_relay_that_wants_a_login_refuses_the_sender_and_that_is_blocked(
    tls: TlsFiles,
) -> None:
    with SmtpSink(security="starttls", tls=tls, auth=("newsletter", "pa55word")) as relay:
        transport = transport_for(relay, tls, smtp_username="")
        with pytest.raises(SendBlocked, match=r"refused the sender .*530"):
            send(transport, 1)
    assert relay.messages == []


# --- answers from the relay -------------------------------------------------------------------


def test_a_550_for_one_recipient_is_refused_with_the_relays_answer_and_the_rest_go_on() -> None:
    answer = "550 5.1.1 <gone@example.org>: Recipient address rejected"
    with SmtpSink(refuse={"gone@example.org": answer}) as relay:
        transport = transport_for(relay)
        send(transport, 1)
        with pytest.raises(SendRefused) as caught:
            send(transport, 2, to="gone@example.org")
        send(transport, 3)
        transport.close()
    assert str(caught.value) == answer
    assert relay.recipients() == {"reader1@example.org": 1, "reader3@example.org": 1}
    assert transport.connections == 1


def test_a_relay_that_closes_each_session_is_reconnected_without_spending_retries() -> None:
    with SmtpSink(close_every=2) as relay:
        sleeps = Sleeps()
        transport = transport_for(relay, sleep=sleeps, smtp_retries=0)
        for n in range(5):
            send(transport, n)
        transport.close()
    assert sorted(relay.recipients()) == [f"reader{n}@example.org" for n in range(5)]
    assert [m.connection for m in relay.messages] == [1, 1, 2, 2, 3]
    assert sleeps == []


@pytest.mark.parametrize("mode", ["drop", "421"])
def test_a_relay_that_stays_down_is_retried_with_backoff_then_deferred(mode: str) -> None:
    with SmtpSink(down_after=1, down_mode=mode) as relay:
        sleeps = Sleeps()
        transport = transport_for(relay, sleep=sleeps, smtp_retries=3)
        send(transport, 1)
        with pytest.raises(SendDeferred, match="gave up after 3 retries") as caught:
            send(transport, 2)
        assert not isinstance(caught.value, RecipientDeferred)  # the relay's problem: stop
        transport.close()
    assert sleeps == [0.5, 1.0, 2.0]
    assert relay.recipients() == {"reader1@example.org": 1}


def test_a_421_for_a_while_is_ridden_out_within_the_retries() -> None:
    with SmtpSink(down_after=1, down_mode="421", down_for=2) as relay:
        sleeps = Sleeps()
        transport = transport_for(relay, sleep=sleeps, smtp_retries=3)
        send(transport, 1)
        send(transport, 2)
        transport.close()
    assert relay.down_answers == 2
    assert sleeps == [0.5, 1.0]
    assert relay.recipients() == {"reader1@example.org": 1, "reader2@example.org": 1}


def test_the_relay_can_be_used_again_after_a_deferral_once_it_recovers() -> None:
    with SmtpSink(down_after=0, down_mode="421") as relay:
        transport = transport_for(relay, smtp_retries=1)
        with pytest.raises(SendDeferred, match="421"):
            send(transport, 1)
        relay.recover()
        send(transport, 1)
        transport.close()
    assert relay.recipients() == {"reader1@example.org": 1}


def test_a_lost_answer_after_the_data_is_uncertain_and_never_retried() -> None:
    with SmtpSink(lose_answers=1) as relay:
        sleeps = Sleeps()
        transport = transport_for(relay, sleep=sleeps, smtp_retries=3)
        with pytest.raises(SendUncertain, match="may or may not have been accepted"):
            send(transport, 1)
        send(transport, 2)  # the next message goes on a new connection
        transport.close()
    # The relay had accepted the first message: handing it over again would duplicate it.
    assert relay.recipients() == {"reader1@example.org": 1, "reader2@example.org": 1}
    assert sleeps == []
    assert transport.connections == 2


def test_a_4xx_for_one_recipient_is_deferred_at_once_without_sleeping() -> None:
    with SmtpSink(refuse={"slow@example.org": "451 4.7.1 Greylisted, try again"}) as relay:
        sleeps = Sleeps()
        transport = transport_for(relay, sleep=sleeps, smtp_retries=2)
        with pytest.raises(RecipientDeferred, match=r"451 4\.7\.1 Greylisted"):
            send(transport, 1, to="slow@example.org")
        send(transport, 2)
        transport.close()
    assert sleeps == []  # the ledger retries it at the end of the run, not the transport now
    assert relay.recipients() == {"reader2@example.org": 1}
    assert transport.connections == 1


@pytest.mark.parametrize(
    ("phase", "handed_off"), [("refuse_data", False), ("refuse_message", True)]
)
def test_a_4xx_to_one_messages_data_is_that_recipients_deferral_without_sleeping(
    phase: str, handed_off: bool
) -> None:
    """One recipient per transaction: a 4xx to its DATA or to its final dot (a full mailbox, a
    content filter) is about that message, like a 4xx to its RCPT, not a relay that is down."""
    with SmtpSink(**{phase: {"full@example.org": "452 4.2.2 Mailbox full"}}) as relay:
        sleeps = Sleeps()
        transport = transport_for(relay, sleep=sleeps, smtp_retries=3)
        handoffs: list[int] = []
        with pytest.raises(RecipientDeferred, match=r"452 4\.2\.2 Mailbox full"):
            transport.send(
                message(1, "full@example.org"),
                sender=SENDER,
                recipient="full@example.org",
                message_id="<1@x>",
                handoff=lambda: handoffs.append(1),
            )
        send(transport, 2)  # the same connection serves the next member
        transport.close()
    assert sleeps == []
    assert handoffs == ([1] if handed_off else [])
    assert relay.recipients() == {"reader2@example.org": 1}
    assert transport.connections == 1


def test_a_refusal_carries_its_code_enhanced_status_and_phase_for_bounce_rules() -> None:
    answer = "550 5.1.1 <gone@example.org>: Recipient address rejected"
    with SmtpSink(refuse={"gone@example.org": answer}) as relay:
        transport = transport_for(relay)
        with pytest.raises(SendRefused) as caught:
            send(transport, 1, to="gone@example.org")
        transport.close()
    refusal = caught.value
    assert (refusal.code, refusal.enhanced, refusal.phase) == (550, "5.1.1", "RCPT")


# --- the hand-off: the ledger's `sending` covers only its point of no return -------------------


def test_the_hand_off_comes_after_the_data_and_before_its_final_dot(sink: SmtpSink) -> None:
    transport = transport_for(sink)
    at_handoff: list[int] = []
    transport.send(
        message(1),
        sender=SENDER,
        recipient="reader1@example.org",
        message_id="<1@x>",
        handoff=lambda: at_handoff.append(len(sink.messages)),
    )
    transport.close()
    assert at_handoff == [0]  # called once, when the relay had not got the message yet
    assert len(sink.messages) == 1


def test_a_refused_hand_off_leaves_nothing_at_the_relay_and_the_next_one_goes(
    sink: SmtpSink,
) -> None:
    transport = transport_for(sink)

    def refuse() -> None:
        raise RuntimeError("the row was settled meanwhile")

    with pytest.raises(RuntimeError):
        transport.send(
            message(1), sender=SENDER, recipient="a@example.org", message_id="<1>", handoff=refuse
        )
    send(transport, 2)
    transport.close()
    assert sink.recipients() == {"reader2@example.org": 1}  # the first transaction was dropped


def test_a_recipient_refusal_never_reaches_the_hand_off() -> None:
    answers = {"gone@example.org": "550 5.1.1 unknown", "slow@example.org": "451 4.7.1 later"}
    with SmtpSink(refuse=answers) as relay:
        transport = transport_for(relay)
        for to, error in (("gone@example.org", SendRefused), ("slow@example.org", SendDeferred)):
            with pytest.raises(error):
                transport.send(
                    message(1, to),
                    sender=SENDER,
                    recipient=to,
                    message_id="<1>",
                    handoff=lambda: pytest.fail("handed off a refused recipient"),
                )
        transport.close()


def test_the_rate_limiter_and_the_backoff_wait_before_the_hand_off() -> None:
    with SmtpSink(down_after=1, down_mode="421", down_for=1) as relay:
        events: list[str] = []
        transport = transport_for(
            relay,
            sleep=lambda seconds: events.append("sleep"),
            smtp_rate_limit=10.0,
            smtp_retries=2,
        )
        transport._limiter._clock = lambda: 0.0  # time stands still: every wait sleeps
        transport._limiter._sleep = lambda seconds: events.append("wait")
        for n in (1, 2):
            transport.send(
                message(n),
                sender=SENDER,
                recipient=f"r{n}@example.org",
                message_id=f"<{n}>",
                handoff=lambda: events.append("handoff"),
            )
        transport.close()
    # 1: at once; 2: the limiter, a 421, the backoff, the limiter again, then the hand-off.
    assert events == ["handoff", "wait", "sleep", "wait", "handoff"]


def test_a_relay_that_does_not_answer_times_out_as_a_temporary_failure() -> None:
    with SmtpSink(down_after=0, down_mode="stall", stall_seconds=3) as relay:
        transport = transport_for(relay, smtp_retries=0, smtp_timeout=0.3)
        with pytest.raises(SendDeferred, match="did not answer in time"):
            send(transport, 1)
        transport.close()
    assert relay.messages == []


def test_no_relay_listening_is_a_temporary_failure(sink: SmtpSink) -> None:
    port = sink.port
    sink.stop()
    settings = dataclasses.replace(
        Settings(), smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", secret="s" * 32
    )
    transport = SmtpTransport(settings, sleep=Sleeps(), backoff=0.5)
    with pytest.raises(SendDeferred, match="cannot connect"):
        send(transport, 1)


# --- rate limit and backoff -------------------------------------------------------------------


def test_the_rate_limit_holds_on_a_short_run(sink: SmtpSink) -> None:
    settings = dataclasses.replace(
        Settings(), **sink.settings_overrides(), secret="s" * 32, smtp_rate_limit=20.0
    )
    transport = SmtpTransport(settings)  # the real clock and the real sleep
    for n in range(8):
        send(transport, n)
    transport.close()
    arrivals = [m.at for m in sink.messages]
    # 20 a second: as the relay sees them, never faster than one per 50 ms. Measured from the
    # second message, so both ends ride the open connection (the first also paid for connecting);
    # 20 ms of slack for the relay's own scheduling.
    assert arrivals[-1] - arrivals[1] >= 6 * 0.05 - 0.02


def test_the_rate_limiter_spaces_hand_offs_evenly() -> None:
    clock = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))
        clock[0] += seconds

    limiter = RateLimiter(4.0, clock=lambda: clock[0], sleep=sleep)
    limiter.wait()  # the first goes at once
    limiter.wait()
    clock[0] += 0.1  # work between sends counts towards the interval
    limiter.wait()
    clock[0] += 1.0  # a long pause does not bank a burst
    limiter.wait()
    limiter.wait()
    assert waits == [0.25, 0.15, 0.25]


def test_no_rate_limit_never_waits() -> None:
    limiter = RateLimiter(0.0, clock=lambda: 0.0, sleep=lambda s: pytest.fail("slept"))
    for _ in range(3):
        limiter.wait()
    assert limiter.interval == 0.0


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, 2.0, 60.0) for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 32, 60]


# --- configuration ----------------------------------------------------------------------------


def test_sending_to_subscribers_over_smtp_refuses_to_start_without_a_secret() -> None:
    settings = dataclasses.replace(Settings(), smtp_host="127.0.0.1", secret="")
    with pytest.raises(ConfigError, match="POLICYFEED_SECRET"):
        SmtpTransport(settings)
    assert SmtpTransport(settings, require_secret=False).delivered("x@y") is None


def test_a_username_without_a_password_is_a_configuration_error() -> None:
    settings = dataclasses.replace(
        Settings(), smtp_host="127.0.0.1", smtp_username="newsletter", secret="s" * 32
    )
    with pytest.raises(ConfigError, match="POLICYFEED_SMTP_PASSWORD"):
        SmtpTransport(settings)


def test_the_password_comes_only_from_the_environment(tmp_path: Path) -> None:
    from policyfeed.config import load_settings

    config = tmp_path / "policyfeed.toml"
    config.write_text('[smtp]\nhost = "relay.example.org"\npassword = "in-the-file"\n')
    with pytest.raises(ConfigError, match="POLICYFEED_SMTP_PASSWORD"):
        load_settings(config, environ={})
    config.write_text('[smtp]\nhost = "relay.example.org"\nusername = "newsletter"\n')
    settings = load_settings(
        config,
        environ={"POLICYFEED_SMTP_PASSWORD": "from-env", "POLICYFEED_SECRET": "k" * 32},
    )
    assert settings.smtp_password == "from-env"
    assert "from-env" not in repr(settings)
    assert SmtpTransport(settings).username == "newsletter"


def test_the_final_dot_is_not_held_back_by_nagles_algorithm(sink: SmtpSink) -> None:
    # It goes out on its own after the hand-off; without NODELAY it would wait for the relay's
    # delayed ACK of the data (~40 ms), and the row would sit `sending` all that time.
    import socket

    transport = transport_for(sink)
    send(transport, 1)
    assert transport._conn is not None
    assert transport._conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    transport.close()
