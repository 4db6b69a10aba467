"""The digest as MIME: built once per variant, personalised per recipient by bytes alone."""

from __future__ import annotations

import email
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from policyfeed.audience.tokens import read_token
from policyfeed.config import Settings
from policyfeed.digest.mail import (
    MessageTemplate,
    Personaliser,
    Recipient,
    build_template,
    make_message_id,
    qp_value,
)

GOLDEN = Path(__file__).resolve().parent / "golden" / "mail"
PH = "%%UNSUBSCRIBE_URL%%"
SECRET = "test-secret"
NOW = datetime(2012, 7, 30, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Digest:
    """Stands in for render.RenderedDigest: mail only needs these three."""

    subject: str
    html: str
    text: str


DIGEST = Digest(
    subject="Public Policy #1: WCIT — ask your government, and 4 more",
    html=(
        '<html><body><p style="font-family:Georgia,serif">Caf\u00e9 society: the ITU Council '
        "sends OTT, domain names and ICANN questions to WTSA. "
        + "Long line of text. "
        * 12
        + "</p>"
        f'<p><a href="{PH}" style="color:#555">Unsubscribe</a></p></body></html>\n'
    ),
    text="Public Policy \u2014 issue 1\n\nRead it online.\n\nUnsubscribe: " + PH + "\n",
)


def template_for(settings: Settings, digest: Digest = DIGEST) -> MessageTemplate:
    return build_template(
        digest, settings, issue_number=1, variant="", now=NOW, placeholders={"unsubscribe_url": PH}
    )


def recipient(settings: Settings, subscriber_id: int = 7, name: str = "Zoë Müller") -> Recipient:
    return Recipient(
        subscriber_id,
        f"member{subscriber_id}@example.org",
        name,
        make_message_id(
            settings,
            period="2012-07-30T08:00",
            issue_number=1,
            subscriber_id=subscriber_id,
            made=NOW,
        ),
    )


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    plain, html = list(message.iter_parts())
    return plain.get_content(), html.get_content()


def test_a_message_parses_and_carries_every_required_header(settings: Settings) -> None:
    data = Personaliser(settings, SECRET).message(template_for(settings), recipient(settings))
    message = parse(data)
    assert message.defects == []
    assert message["From"] == "Public Policy digest <policy-digest@example.org>"
    assert message["To"] == "Zoë Müller <member7@example.org>"
    assert len(message["To"].addresses) == 1
    assert message["Subject"] == DIGEST.subject
    assert message["Date"].datetime == NOW
    assert re.fullmatch(
        r"<issue-1\.sub-7\.[0-9a-f]{12}@policy\.example\.org>", message["Message-ID"]
    )
    assert message["List-Id"] == "Public Policy digest <digest.policy.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_list_unsubscribe_has_an_https_url_with_the_subscribers_token_and_a_mailto(
    settings: Settings,
) -> None:
    message = parse(
        Personaliser(settings, SECRET).message(template_for(settings), recipient(settings))
    )
    https, mailto = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    url = urlsplit(https)
    assert (url.scheme, url.netloc, url.path) == ("https", "policy.example.org", "/unsubscribe")
    token = parse_qs(url.query)["t"][0]
    assert read_token(SECRET, token, settings.list_identifier) == 7
    assert mailto == f"mailto:policy-editor@example.org?subject=unsubscribe%20{token}"


def test_both_parts_carry_the_recipients_unsubscribe_url(settings: Settings) -> None:
    message = parse(
        Personaliser(settings, SECRET).message(template_for(settings), recipient(settings))
    )
    https = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])[0]
    plain, html = parts(message)
    assert plain == DIGEST.text.replace(PH, https).replace("\n", "\r\n")
    assert f'<a href="{https}" style="color:#555">Unsubscribe</a>' in html
    assert PH not in plain + html


def test_the_url_in_the_html_part_is_html_escaped(settings: Settings) -> None:
    custom = Settings(
        **{**settings.__dict__, "unsubscribe_url": "https://lists.example.org/u?list=policy"}
    )
    message = parse(Personaliser(custom, SECRET).message(template_for(custom), recipient(custom)))
    plain, html = parts(message)
    assert "https://lists.example.org/u?list=policy&t=7." in plain
    assert 'href="https://lists.example.org/u?list=policy&amp;t=7.' in html


def test_a_non_ascii_subject_and_names_are_rfc2047_encoded_and_the_headers_are_ascii(
    settings: Settings,
) -> None:
    data = Personaliser(settings, SECRET).message(template_for(settings), recipient(settings))
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"Subject: =?utf-8?b?" in head
    assert b"To: =?utf-8?b?" in head


def test_an_ascii_subject_is_folded_at_spaces_and_stays_readable(settings: Settings) -> None:
    subject = "Public Policy #1: ITU Council sends OTT, domain names and ICANN questions to WTSA"
    data = Personaliser(settings, SECRET).message(
        template_for(settings, Digest(subject, "<p>x</p>", "x")), recipient(settings, name="")
    )
    assert (
        b"Subject: Public Policy #1: ITU Council sends OTT, domain names and ICANN\r\n"
        b" questions to WTSA\r\n"
    ) in data
    assert parse(data)["Subject"] == subject
    assert parse(data)["To"] == "member7@example.org"


def test_every_line_is_under_998_octets_and_body_lines_within_76(settings: Settings) -> None:
    long_word = "x" * 3000
    digest = Digest(
        "A " + "very long subject " * 40, f"<p>{long_word}</p><a href='{PH}'>u</a>", long_word + PH
    )
    data = Personaliser(settings, SECRET).message(
        template_for(settings, digest), recipient(settings, name="N" * 200)
    )
    head, body = data.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) < 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert parse(data)["Subject"] == " ".join(digest.subject.split())


def test_message_ids_are_stable_per_issue_and_subscriber_and_differ_otherwise(
    settings: Settings,
) -> None:
    def message_id(period: str, number: int, subscriber: int, made: datetime = NOW) -> str:
        return make_message_id(
            settings, period=period, issue_number=number, subscriber_id=subscriber, made=made
        )

    first = message_id("2012-07-30T08:00", 1, 7)
    assert first == message_id("2012-07-30T08:00", 1, 7)
    others = {
        message_id("2012-07-30T08:00", 1, 8),
        message_id("2012-08-06T08:00", 2, 7),
        message_id("2012-07-30T08:00", 1, 7, NOW + timedelta(seconds=1)),  # made again
    }
    assert first not in others and len(others) == 3


def test_two_recipients_messages_differ_only_in_their_own_values(settings: Settings) -> None:
    template = template_for(settings)
    personaliser = Personaliser(settings, SECRET)
    ana, bob = recipient(settings, 7, "Ana Unique"), recipient(settings, 8, "Bob Unique")
    for_ana, for_bob = personaliser.message(template, ana), personaliser.message(template, bob)
    values_ana = personaliser.values(ana, template.distinct_slots)
    values_bob = personaliser.values(bob, template.distinct_slots)
    converted = for_ana
    for slot in sorted(values_ana, key=lambda s: -len(values_ana[s])):
        converted = converted.replace(values_ana[slot], values_bob[slot])
    assert for_ana != for_bob
    assert converted == for_bob


def test_the_same_input_gives_the_same_bytes(settings: Settings) -> None:
    one = Personaliser(settings, SECRET).message(template_for(settings), recipient(settings))
    two = Personaliser(settings, SECRET).message(template_for(settings), recipient(settings))
    assert one == two


# --- tokens never split by the encoding --------------------------------------------------------

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"),
    max_size=300,
)


@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(_TEXT, min_size=1, max_size=5),
    name=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=80),
    subscriber_id=st.integers(min_value=1, max_value=10**12),
)
def test_substituted_values_decode_exactly_wherever_the_placeholders_fall(
    settings: Settings, pieces: list[str], name: str, subscriber_id: int
) -> None:
    text = PH.join(pieces)
    digest = Digest("s", text, text)
    data = Personaliser(settings, SECRET).message(
        template_for(settings, digest), Recipient(subscriber_id, "a@example.org", name, "m@x.org")
    )
    message = parse(data)
    https = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])[0]
    plain_part, html_part = list(message.iter_parts())
    plain = plain_part.get_payload(decode=True).decode("utf-8")
    html = html_part.get_payload(decode=True).decode("utf-8")
    normalized = text.replace("\r\n", "\n").replace("\n", "\r\n")
    assert plain == normalized.replace(PH, https)
    assert html == normalized.replace(PH, https.replace("&", "&amp;"))
    assert max(len(line) for line in data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")) <= 76


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_qp_values_decode_back_and_keep_lines_short(value: str) -> None:
    import quopri

    encoded = qp_value(value)
    assert all(len(line) <= 75 for line in encoded.split(b"=\r\n"))
    assert quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode("utf-8") == value


# --- golden message ----------------------------------------------------------------------------


def scrub(data: bytes) -> str:
    text = data.decode("ascii")
    text = re.sub(r"=_pf_[0-9a-f]+", "=_pf_BOUNDARY", text)
    text = re.sub(r"issue-(\d+)\.sub-(\d+)\.[0-9a-f]+@", r"issue-\1.sub-\2.HASH@", text)
    return text


def test_the_message_matches_the_golden_eml(settings: Settings) -> None:
    data = Personaliser(settings, SECRET).message(template_for(settings), recipient(settings))
    golden = GOLDEN / "digest.eml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(scrub(data).encode("ascii"))
    assert scrub(data) == golden.read_bytes().decode("ascii")
