"""Whatever a form receives, the app answers with a page (never a 500), shows it escaped, and
puts nothing of it into a mail header unencoded."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from markupsafe import escape

from policyfeed.audience.tokens import make_form_token
from signup_support import SECRET, make_web

ROOT = Path(__file__).resolve().parent.parent
SPECIAL = set("<>\"'&")
KNOWN_HEADERS = {
    "from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe",
    "list-unsubscribe-post", "mime-version", "content-type", "reply-to",
}  # fmt: skip

text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=120
) | st.sampled_from(
    [
        '"><script>alert(1)</script>',
        "a@example.org\r\nBcc: everyone@example.org",
        "=?utf-8?b?QWRtaW4=?=",
        "Ana\nSubject: hi",
        "x" * 300,
        "{{ 7*7 }}",
        "ana@example.org\x00",
        "000&",
        "R&D &",
    ]
)
address = st.one_of(
    text,
    st.builds(lambda local, name: f"{local}@{name}.example.org",
              st.from_regex(r"[A-Za-z0-9.+_-]{1,20}", fullmatch=True),
              st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True)),
)  # fmt: skip


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, pristine_demo_db: Path) -> object:
    from policyfeed.config import load_settings

    folder = tmp_path_factory.mktemp("hostile")
    shutil.copyfile(pristine_demo_db, folder / "posts.db")
    configured = load_settings(
        ROOT / "policyfeed.toml",
        environ={},
        cwd=folder,
        overrides={"output_dir": folder / "public", "outbox_dir": folder / "outbox"},
    )
    return make_web(
        configured, folder / "posts.db", datetime(2012, 7, 30, 12, 0).astimezone(), folder
    )


def check_page(html: str, values: list[str]) -> None:
    """No value with a character HTML gives a meaning to is in the page as it came: only its
    escaped form may be ("000&" shown as "000&amp;" holds "000&", and is escaped)."""
    for value in values:
        if SPECIAL & set(value) and len(value) > 3:
            raw = html.replace(str(escape(value)), "")
            assert value not in raw, f"{value!r} shown unescaped"
    assert "Traceback" not in html


def test_a_value_shown_escaped_passes_the_page_check_and_shown_raw_fails_it() -> None:
    for value in ("000&", "R&D &", "a<b>c", 'say "hi"'):
        check_page(f"<p>{escape(value)}</p>", [value])
        with pytest.raises(AssertionError, match="shown unescaped"):
            check_page(f"<p>{value}</p>", [value])


def check_messages(web: object) -> None:
    for (raw,) in web.sql("SELECT message FROM notices WHERE message IS NOT NULL"):  # type: ignore[attr-defined]
        data = bytes(raw)
        head = data.split(b"\r\n\r\n", 1)[0]
        assert head.isascii()
        for line in head.split(b"\r\n"):
            assert len(line) <= 998
            if line[:1] in (b" ", b"\t"):
                continue
            name = line.split(b":", 1)[0].decode().lower()
            assert name in KNOWN_HEADERS, f"an injected header: {line!r}"
        assert b"\n" not in data.replace(b"\r\n", b"")


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    email=address,
    name=text,
    chapter=st.one_of(text, st.sampled_from(["", "vancouver", "switzerland"])),
    website=st.sampled_from(["", ""]) | text,
    ip=st.integers(1, 2**24),
)
def test_any_text_in_any_field_of_the_sign_up_form(
    web: object, email: str, name: str, chapter: str, website: str, ip: int
) -> None:
    site = web  # type: ignore[assignment]
    token = make_form_token(
        SECRET, "subscribe", site.settings.list_identifier, issued=int(site.clock.now.timestamp())
    )
    remote = f"198.{18 + (ip >> 16 & 1)}.{ip >> 8 & 255}.{ip & 255}"
    answer = site.post(
        "/subscribe",
        {"email": email, "name": name, "chapter": chapter, "website": website, "csrf": token},
        ip=remote,
        headers={"User-Agent": name[:50].replace("\r", "").replace("\n", "")},
    )
    assert answer.status_code in (200, 400, 429), answer.status_code
    check_page(answer.get_data(as_text=True), [email, name, chapter])
    check_messages(site)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=text, field=st.sampled_from(["t", "csrf", "email"]), path=st.sampled_from(
    ["/confirm", "/preferences/link", "/subscribe"]))  # fmt: skip
def test_any_text_in_links_and_hidden_fields(
    web: object, value: str, field: str, path: str
) -> None:
    site = web  # type: ignore[assignment]
    for answer in (
        site.client.get(path, query_string={field: value}),
        site.post(path, {field: value}),
    ):
        assert answer.status_code in (200, 400, 403, 410, 413, 429), answer.status_code
        html = answer.get_data(as_text=True)
        check_page(html, [value])
        assert not re.search(r"<script", html, re.I)
