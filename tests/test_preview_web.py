"""The editors' browser preview at ``/preview/…``, in process through the WSGI app: the list (the
next issue as it would be made now, and every draft and approved issue), each issue's chapter
variants with subject, recipients and size, the variants' HTML and text parts with the sample
member's links; who may open it (this machine under ``serve`` on a loopback address, or the
password); hostile paths; and that it never writes the database."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any

import lxml.html
import pytest
import sqlite_utils
from werkzeug.test import Client, TestResponse

from digest_support import NOW, add_post
from policyfeed.config import Settings
from policyfeed.digest.editing import approve_issue, discard_issue
from policyfeed.digest.issues import (
    create_issue,
    get_issue,
    issue_posts,
    plan_issue,
    posts_for_chapter,
    variant_shares,
)
from policyfeed.digest.render import CLIP_BYTES, render_issue
from policyfeed.digest.review import review_context
from policyfeed.digest.sample import with_sample_links
from policyfeed.web.app import SiteApp, load_endpoints, make_app

SECRET = "preview-test-key"
PASSWORD = "correct horse battery staple"
PERIOD_1 = "2012-07-30T08:00"
PERIOD_2 = "2012-08-06T08:00"
PERIOD_3 = "2012-08-13T08:00"
LATER = NOW.replace(day=31)
PUBLIC = "203.0.113.5"  # a documentation address: a client elsewhere on the internet


@pytest.fixture
def configured(settings: Settings) -> Settings:
    return dataclasses.replace(settings, secret=SECRET)


@pytest.fixture
def issues(demo_db: sqlite_utils.Database, configured: Settings) -> sqlite_utils.Database:
    """Issue 1 a draft (the demo posts), issue 2 approved, issue 3 discarded, and one post
    waiting for the next issue (4)."""
    assert create_issue(demo_db, configured, period=PERIOD_1, now=NOW) is not None
    add_post(demo_db, configured, "second-week", title="The second week", topics=["IETF"])
    assert create_issue(demo_db, configured, period=PERIOD_2, now=NOW) is not None
    approve_issue(demo_db, configured, 2, now=NOW)
    add_post(demo_db, configured, "thrown-away", title="Thrown away")
    assert create_issue(demo_db, configured, period=PERIOD_3, now=NOW) is not None
    discard_issue(demo_db, 3, now=NOW)
    add_post(demo_db, configured, "waiting-post", title="A post still waiting")
    return demo_db


def preview_app(
    settings: Settings, db_path: Path, *, loopback: bool = True, **changes: Any
) -> SiteApp:
    """The app as ``policyfeed serve`` makes it: on a loopback address (``loopback``) or not."""
    from policyfeed.web.preview import serve_endpoints

    settings = dataclasses.replace(settings, **changes)
    folder = db_path.parent / "public"
    folder.mkdir(exist_ok=True)
    (folder / "index.html").write_text("<!DOCTYPE html><title>Home</title>")
    host = "127.0.0.1" if loopback else "0.0.0.0"
    extra = serve_endpoints(settings, host)
    return make_app(settings, db_path, folder, endpoints=extra, now=lambda: LATER)


def get(app: SiteApp, path: str, *, remote: str = "127.0.0.1", **kw: Any) -> TestResponse:
    kw.setdefault("headers", {})
    kw["headers"].setdefault("Host", "127.0.0.1:8000")
    return Client(app).get(path, environ_base={"REMOTE_ADDR": remote}, **kw)


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def page_text(response: TestResponse) -> str:
    return " ".join(
        lxml.html.document_fromstring(response.get_data(as_text=True)).text_content().split()
    )


def links(response: TestResponse) -> list[str]:
    root = lxml.html.document_fromstring(response.get_data(as_text=True))
    return [a.get("href") for a in root.iter("a") if a.get("href")]


def fingerprint(db_path: Path) -> dict[str, str]:
    """The bytes of the database and what its write-ahead log holds: a read changes neither
    (SQLite may leave an empty log behind a read-only reader)."""
    found = {}
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        if path.exists() and path.stat().st_size:
            found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# --- the pages ----------------------------------------------------------------------------


def test_the_list_shows_the_next_issue_and_every_draft_and_approved_issue(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    app = preview_app(configured, demo_db_path)
    response = get(app, "/preview/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    text = page_text(response)
    for number in (1, 2):
        issue = get_issue(issues, number)
        assert f"/preview/issues/{number}/" in links(response)
        assert issue.subject in text
    assert "/preview/issues/3/" not in links(response)  # discarded
    assert "/preview/next/" in links(response)
    planned = plan_issue(issues, configured, now=LATER)
    assert planned is not None
    assert f"Issue {planned[0].number}" in text and planned[0].subject in text
    assert "draft" in text and "approved" in text


def test_the_next_issue_is_computed_without_writing_anything(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    issues.conn.close()
    before = fingerprint(demo_db_path)
    app = preview_app(configured, demo_db_path)
    for path in ("/preview/", "/preview/next/", "/preview/next/all.html", "/preview/next/all.txt"):
        assert get(app, path).status_code == 200, path
    assert fingerprint(demo_db_path) == before
    db = sqlite_utils.Database(demo_db_path)
    assert db.execute("SELECT max(number) FROM issues").fetchone()[0] == 3


def test_the_next_issue_page_names_its_number_and_posts(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    app = preview_app(configured, demo_db_path)
    response = get(app, "/preview/next/")
    text = page_text(response)
    assert "Issue 4" in text and "not made yet" in text
    assert "A post still waiting" in text
    assert "/preview/next/all.html" in links(response)
    html = get(app, "/preview/next/all.html").get_data(as_text=True)
    assert "A post still waiting" in html


def test_nothing_waiting_says_so(
    demo_db: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    assert create_issue(demo_db, configured, period=PERIOD_1, now=NOW) is not None
    app = preview_app(configured, demo_db_path)
    assert "No published post is waiting" in page_text(get(app, "/preview/"))
    assert get(app, "/preview/next/").status_code == 404
    assert get(app, "/preview/next/all.html").status_code == 404


def test_an_issue_page_lists_each_chapter_variant_with_subject_recipients_size_and_links(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    app = preview_app(configured, demo_db_path)
    response = get(app, "/preview/issues/1/")
    assert response.status_code == 200
    root = lxml.html.document_fromstring(response.get_data(as_text=True))
    issue = get_issue(issues, 1)
    posts = issue_posts(issues, issue)
    shares = [s for s in variant_shares(issues, posts) if s.posts]
    assert len(shares) == 3  # the whole issue and the two demo chapters
    rows = root.cssselect("tr.variant")
    assert [row.get("id") for row in rows] == [f"variant-{s.slug}" for s in shares]
    for row, share in zip(rows, shares, strict=True):
        digest = render_issue(issue, share.posts, configured, chapter=share.chapter)
        cells = " ".join(row.text_content().split())
        assert share.name in cells
        assert digest.subject in cells
        assert f"{share.recipients} " in cells
        assert f"{digest.size_bytes:,} bytes" in cells
        percent = round(100 * digest.size_bytes / CLIP_BYTES)
        assert f"{percent}% of {CLIP_BYTES:,}" in cells
        hrefs = [a.get("href") for a in row.iter("a")]
        assert hrefs == [
            f"/preview/issues/1/{share.slug}.html",
            f"/preview/issues/1/{share.slug}.txt",
        ]
    assert "policyfeed issue approve 1" in page_text(response)


def test_a_variants_html_and_text_are_the_sample_members_message(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    app = preview_app(configured, demo_db_path)
    issue = get_issue(issues, 1)
    posts = issue_posts(issues, issue)
    chapter = next(s.chapter for s in variant_shares(issues, posts) if s.chapter)
    assert chapter is not None
    share = posts_for_chapter(posts, chapter.topics)
    expected = with_sample_links(
        render_issue(issue, share, configured, chapter=chapter), configured
    )

    html = get(app, f"/preview/issues/1/{chapter.slug}.html")
    assert html.status_code == 200
    assert html.headers["Content-Type"] == "text/html; charset=utf-8"
    assert html.get_data(as_text=True) == expected.html
    assert "%%" not in expected.html

    text = get(app, f"/preview/issues/1/{chapter.slug}.txt")
    assert text.status_code == 200
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert text.get_data(as_text=True) == expected.text

    whole = get(app, "/preview/issues/1/all.txt").get_data(as_text=True)
    assert whole == with_sample_links(render_issue(issue, posts, configured), configured).text


def test_the_editors_copy_links_to_pages_the_preview_answers(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    from datetime import timedelta

    with_url = dataclasses.replace(configured, preview_url="http://127.0.0.1:8000/preview/")
    issue = get_issue(issues, 1)
    review = review_context(
        issues, with_url, issue, issue_posts(issues, issue), lateness=timedelta(days=2)
    )
    urls = [review["preview_url"], *(v["url"] for v in review["variants"])]
    assert len(urls) >= 2
    app = preview_app(with_url, demo_db_path)
    for url in urls:
        path = url.removeprefix("http://127.0.0.1:8000")
        assert path.startswith("/preview/issues/1/"), url
        assert get(app, path).status_code == 200, url


def test_every_preview_answer_is_private_and_runs_no_script(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    app = preview_app(configured, demo_db_path)
    for path in (
        "/preview/",
        "/preview/issues/1/",
        "/preview/issues/1/all.html",
        "/preview/issues/1/all.txt",
        "/preview/issues/99/",
    ):
        response = get(app, path)
        assert response.headers["Cache-Control"] == "no-store", path
        assert "noindex" in response.headers["X-Robots-Tag"], path
        assert response.headers["Referrer-Policy"] == "no-referrer", path
        if response.mimetype == "text/html":
            assert "script-src 'none'" in response.headers["Content-Security-Policy"], path


def test_a_variant_too_large_to_send_is_shown_as_such(
    issues: sqlite_utils.Database,
    configured: Settings,
    demo_db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import policyfeed.digest.render as render

    monkeypatch.setattr(render, "CLIP_BYTES", 2_000)
    app = preview_app(configured, demo_db_path)
    page = get(app, "/preview/issues/1/")
    assert page.status_code == 200
    assert "even with summaries only" in page_text(page)
    refused = get(app, "/preview/issues/1/all.html")
    assert refused.status_code == 409
    assert "even with summaries only" in page_text(refused)


def test_an_unreadable_database_is_a_503_not_a_traceback(
    configured: Settings, tmp_path: Path
) -> None:
    app = preview_app(configured, tmp_path / "missing.db")
    response = get(app, "/preview/")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert not (tmp_path / "missing.db").exists()  # never created


# --- who may open it ------------------------------------------------------------------------


@pytest.mark.parametrize("remote", ["127.0.0.1", "::1", "127.0.0.2"])
@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"])
def test_this_machine_opens_it_when_serve_listens_on_loopback(
    issues: sqlite_utils.Database,
    configured: Settings,
    demo_db_path: Path,
    remote: str,
    host: str,
) -> None:
    app = preview_app(configured, demo_db_path)
    assert get(app, "/preview/", remote=remote, headers={"Host": host}).status_code == 200


def hidden_like_a_missing_page(app: SiteApp, path: str, **kw: Any) -> None:
    """``path`` is answered exactly as a path of no file at all: nothing says it exists."""
    answer, missing = get(app, path, **kw), get(app, "/no-such-page/", **kw)
    assert answer.status_code == missing.status_code == 404, path
    assert answer.get_data() == missing.get_data(), path
    assert sorted(answer.headers.items()) == sorted(missing.headers.items()), path


PREVIEW_PATHS = (
    "/preview/",
    "/preview",
    "/preview/issues/1/",
    "/preview/issues/1/all.html",
    "/preview/next/",
    "/preview/anything",
)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": PUBLIC},
        {"Forwarded": f"for={PUBLIC}"},
        {"X-Real-IP": PUBLIC},
        {"Via": "1.1 proxy"},
        {"X-Forwarded-Host": "policy.example.org"},
        {"Host": "policy.example.org"},  # a proxy passing the public name on
        {"Host": "attacker.example:8000"},  # a rebinding name that resolves to 127.0.0.1
    ],
    ids=[
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "via",
        "x-forwarded-host",
        "public-host",
        "rebinding",
    ],
)
def test_a_request_through_a_proxy_or_by_another_name_is_not_this_machine(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path, headers: dict[str, str]
) -> None:
    app = preview_app(configured, demo_db_path)
    for path in PREVIEW_PATHS:
        hidden_like_a_missing_page(app, path, headers=dict(headers))


def test_with_a_proxy_configured_loopback_is_not_enough(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    app = preview_app(configured, demo_db_path, trusted_proxies=1)
    for path in PREVIEW_PATHS:
        hidden_like_a_missing_page(app, path)


def test_a_public_address_without_a_password_has_no_preview_at_all(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    app = preview_app(configured, demo_db_path, loopback=False)
    assert not [e for e in app.endpoints if e.rule.startswith("/preview")]
    assert not [e for e in load_endpoints(configured) if e.rule.startswith("/preview")]
    for remote in ("127.0.0.1", PUBLIC):
        for path in PREVIEW_PATHS:
            hidden_like_a_missing_page(app, path, remote=remote)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "policy.example.org"])
def test_serve_on_anything_but_loopback_adds_no_preview_without_a_password(
    configured: Settings, host: str
) -> None:
    from policyfeed.web.preview import serve_endpoints

    assert serve_endpoints(configured, host) == []
    assert serve_endpoints(configured, "localhost") != []
    assert serve_endpoints(configured, "::1") != []


def test_the_right_password_opens_it_from_anywhere(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    for loopback in (True, False):
        app = preview_app(configured, demo_db_path, loopback=loopback, preview_password=PASSWORD)
        for user in ("editor", ""):
            response = get(app, "/preview/", remote=PUBLIC, headers=basic(user, PASSWORD))
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == "no-store"
        through_proxy = {
            **basic("editor", PASSWORD),
            "X-Forwarded-For": PUBLIC,
            "Host": "policy.example.org",
        }
        assert get(app, "/preview/issues/1/all.txt", headers=through_proxy).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(b"editor:wrong password here").decode(),
        "Basic " + base64.b64encode(PASSWORD.upper().encode()).decode(),  # no colon
        "Basic " + base64.b64encode(f"editor:{PASSWORD} ".encode()).decode(),
        "Basic " + base64.b64encode(f"editor:{PASSWORD[:-1]}".encode()).decode(),
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"editor:\xff\xfe").decode(),
        f"Bearer {PASSWORD}",
        "Basic",
    ],
    ids=[
        "missing",
        "wrong",
        "no-colon",
        "trailing-space",
        "one-short",
        "not-base64",
        "not-utf8",
        "bearer",
        "empty",
    ],
)
def test_without_the_right_password_the_answer_is_401_and_shows_nothing(
    issues: sqlite_utils.Database,
    configured: Settings,
    demo_db_path: Path,
    authorization: str | None,
) -> None:
    app = preview_app(configured, demo_db_path, loopback=False, preview_password=PASSWORD)
    headers = {"Authorization": authorization} if authorization else {}
    for path in PREVIEW_PATHS:
        response = get(app, path, remote=PUBLIC, headers=dict(headers))
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="')
        assert response.headers["Cache-Control"] == "no-store"
        body = response.get_data(as_text=True)
        assert "Issue 1" not in body and get_issue(issues, 1).subject not in body


def test_guessing_the_password_is_stopped_per_address_and_then_allowed_again(
    issues: sqlite_utils.Database,
    configured: Settings,
    demo_db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten wrong passwords from one address within 15 minutes, and that address is answered
    429 (even with the right password, or the guessing would go on) until the window passes;
    another address, and this machine under loopback serve, are not held up by it."""
    import policyfeed.web.preview_access as preview_access

    clock = [1000.0]
    monkeypatch.setattr(preview_access, "monotonic", lambda: clock[0])
    app = preview_app(configured, demo_db_path, preview_password=PASSWORD)
    wrong = basic("editor", "a guess")
    for _ in range(10):
        assert get(app, "/preview/", remote=PUBLIC, headers=dict(wrong)).status_code == 401
        clock[0] += 30
    for headers in (wrong, basic("editor", PASSWORD), {}):
        held = get(app, "/preview/", remote=PUBLIC, headers=dict(headers))
        assert held.status_code == 429
        assert 0 < int(held.headers["Retry-After"]) <= 15 * 60
        assert held.headers["Cache-Control"] == "no-store"
        assert "Issue 1" not in held.get_data(as_text=True)
    other = "198.51.100.7"
    assert get(app, "/preview/", remote=other, headers=basic("", PASSWORD)).status_code == 200
    assert get(app, "/preview/").status_code == 200  # this machine
    clock[0] += 15 * 60
    assert get(app, "/preview/", remote=PUBLIC, headers=basic("", PASSWORD)).status_code == 200


def test_guessing_from_many_addresses_is_stopped_too(
    issues: sqlite_utils.Database,
    configured: Settings,
    demo_db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hundred wrong passwords in 15 minutes from anywhere (one guess per address) close
    the preview to passwords for the rest of the window; this machine still opens it."""
    import policyfeed.web.preview_access as preview_access

    clock = [1000.0]
    monkeypatch.setattr(preview_access, "monotonic", lambda: clock[0])
    app = preview_app(configured, demo_db_path, preview_password=PASSWORD)
    for n in range(100):
        guess = get(app, "/preview/", remote=f"10.1.{n // 250}.{n % 250 + 1}",
                    headers=basic("", f"guess {n}"))  # fmt: skip
        assert guess.status_code == 401
    held = get(app, "/preview/", remote="192.0.2.200", headers=basic("", PASSWORD))
    assert held.status_code == 429
    assert get(app, "/preview/").status_code == 200
    clock[0] += 15 * 60 + 1
    assert (
        get(app, "/preview/", remote="192.0.2.200", headers=basic("", PASSWORD)).status_code == 200
    )


def test_with_a_password_this_machine_still_opens_it_under_loopback_serve(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    app = preview_app(configured, demo_db_path, preview_password=PASSWORD)
    assert get(app, "/preview/").status_code == 200
    assert get(app, "/preview/", headers={"X-Forwarded-For": PUBLIC}).status_code == 401


# --- hostile paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/preview/issues/0/",
        "/preview/issues/-1/",
        "/preview/issues/01/",
        "/preview/issues/1.0/",
        "/preview/issues/abc/",
        "/preview/issues/99/",
        "/preview/issues/3/",  # discarded
        "/preview/issues/3/all.html",
        "/preview/issues/9223372036854775807/",
        "/preview/issues/9223372036854775808/",
        "/preview/issues/" + "9" * 400 + "/",
        "/preview/issues/%D9%A1/",  # an Arabic-Indic one
        "/preview/issues/%EF%BC%91/",  # a full-width one
        "/preview/issues/1/nope.html",
        "/preview/issues/1/all.exe",
        "/preview/issues/1/all",
        "/preview/issues/1/.html",
        "/preview/issues/1/all.html.txt",
        "/preview/issues/1/ALL.HTML",
        "/preview/issues/1/all.html/",
        "/preview/issues/1/..%2F..%2Fposts.db",
        "/preview/issues/1/x/y/z",
        "/preview/next/nope.txt",
        "/preview/issues/",
        "/preview/" + "a" * 5000,
    ],
)
def test_hostile_issue_paths_are_404_pages(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path, path: str
) -> None:
    app = preview_app(configured, demo_db_path)
    response = get(app, path)
    assert response.status_code == 404, path
    assert response.mimetype == "text/html"
    assert "Traceback" not in response.get_data(as_text=True)


def test_only_get_and_head(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    app = preview_app(configured, demo_db_path)
    client, local = Client(app), {"REMOTE_ADDR": "127.0.0.1"}
    head = client.head(
        "/preview/issues/1/all.html", headers={"Host": "localhost"}, environ_base=local
    )
    assert head.status_code == 200 and head.get_data() == b""
    post = client.post("/preview/issues/1/", headers={"Host": "localhost"}, environ_base=local)
    assert post.status_code == 405
    assert re.fullmatch(r"GET, HEAD|HEAD, GET", post.headers["Allow"])


def test_the_preview_is_in_english_with_its_language_said_whatever_the_sites(
    issues: sqlite_utils.Database, configured: Settings, demo_db_path: Path
) -> None:
    """A tool for editors, like the command line: its words are English, and the page says so
    (no English words under ``lang="ar" dir="rtl"``)."""
    app = preview_app(configured, demo_db_path, language="ar")
    for path in ("/preview/", "/preview/issues/1/", "/preview/issues/99/"):
        root = lxml.html.document_fromstring(get(app, path).get_data(as_text=True))
        assert root.get("lang") == "en" and root.get("dir") is None, path
