"""The web app's framework, in process: the seam for endpoints (caps, methods, token pages and
headers for free), client addresses behind proxies, /healthz, errors without tracebacks, and the
factory a WSGI server calls."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from policyfeed.cli import cli
from policyfeed.config import Settings
from policyfeed.errors import ConfigError
from policyfeed.store import open_db
from policyfeed.web.app import Endpoint, SiteApp, WebContext, create_app, make_app

ROOT = Path(__file__).resolve().parent.parent
SECRET = "framework-test-key"


@pytest.fixture
def configured(settings: Settings) -> Settings:
    return dataclasses.replace(settings, secret=SECRET)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "site.db"
    open_db(path).conn.close()
    return path


def app_with(settings: Settings, db_path: Path, *endpoints: Endpoint, **kw: Any) -> SiteApp:
    folder = db_path.parent / "public"
    folder.mkdir(exist_ok=True)
    (folder / "index.html").write_text("<!DOCTYPE html><title>Home</title>")
    return make_app(settings, db_path, folder, endpoints=endpoints, **kw)


def echo(request: Request, site: WebContext, **values: Any) -> Response:
    form = dict(request.form) if request.method == "POST" else {}
    return Response(
        f"{request.remote_addr} {request.scheme} {values} {form}", mimetype="text/plain"
    )


def test_an_endpoint_added_through_the_seam_answers_with_its_rule_values(
    configured: Settings, db_path: Path
) -> None:
    app = app_with(configured, db_path, Endpoint("/preview/<int:number>", echo))
    response = Client(app).get("/preview/7")
    assert response.status_code == 200
    assert "{'number': 7}" in response.get_data(as_text=True)
    assert Client(app).get("/preview/x").status_code == 404  # the rule does not match: a file


def test_an_added_endpoint_gets_405_with_allow_for_other_methods(
    configured: Settings, db_path: Path
) -> None:
    app = app_with(configured, db_path, Endpoint("/thing", echo, methods=("GET", "POST")))
    response = Client(app).put("/thing")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}
    assert Client(app).head("/thing").status_code == 200


def test_an_added_endpoint_has_its_own_body_cap(configured: Settings, db_path: Path) -> None:
    small = Endpoint("/small", echo, methods=("POST",), max_body=100)
    large = Endpoint("/large", echo, methods=("POST",), max_body=1024 * 1024)
    app = app_with(configured, db_path, small, large)
    client = Client(app)
    body = {"data": "x=" + "a" * 500, "content_type": "application/x-www-form-urlencoded"}
    assert client.post("/small", **body).status_code == 413
    assert client.post("/large", **body).status_code == 200
    assert app.max_body == 1024 * 1024  # what the server in front caps bodies at


def test_a_chunked_body_without_a_length_is_capped_too(configured: Settings, db_path: Path) -> None:
    import io

    app = app_with(configured, db_path, Endpoint("/small", echo, methods=("POST",), max_body=100))
    response = Client(app).post(
        "/small",
        input_stream=io.BytesIO(b"x=" + b"a" * 5000),
        content_type="application/x-www-form-urlencoded",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_an_added_token_page_gets_the_token_limit_and_the_token_headers(
    configured: Settings, db_path: Path
) -> None:
    def confirm(request: Request, site: WebContext) -> Response:
        return site.page("web/error.html", code=200, title="Confirmed", message=site.token(request))

    # (/confirm itself is the sign-up's: a path of its own for this made-up token page)
    app = app_with(configured, db_path, Endpoint("/token-page", confirm, token_page=True))
    client = Client(app)
    ok = client.get("/token-page?t=abc")
    assert ok.status_code == 200
    assert ok.headers["Cache-Control"] == "no-store"
    assert ok.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in ok.headers["Content-Security-Policy"]
    assert client.get("/token-page?t=" + "a" * 401).status_code == 400
    assert client.get("/token-page?t=a&t=" + "a" * 401).status_code == 400  # every value counts


def test_pages_of_endpoints_have_the_sites_look(configured: Settings, db_path: Path) -> None:
    def hello(request: Request, site: WebContext) -> Response:
        return site.page("web/error.html", code=200, title="Hello", message="there")

    page = Client(app_with(configured, db_path, Endpoint("/hello", hello))).get("/hello")
    html = page.get_data(as_text=True)
    assert f'<a class="site-title" href="/">{configured.title}</a>' in html
    assert '<link rel="alternate" type="application/atom+xml"' in html
    assert '<meta name="robots" content="noindex, nofollow">' in html


def test_error_pages_have_the_sites_look_and_no_details(
    configured: Settings, db_path: Path
) -> None:
    response = Client(app_with(configured, db_path)).get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<h1>Not Found</h1>" in html
    assert configured.title in html


@pytest.mark.parametrize(
    ("language", "title", "sentence"),
    [
        ("fr", "Page introuvable", "Aucune page ne se trouve à cette adresse."),
        ("es", "Página no encontrada", "No hay ninguna página en esta dirección."),
        ("ar", "الصفحة غير موجودة", "لا توجد صفحة في هذا العنوان."),
    ],
)
def test_error_pages_speak_the_sites_language(
    configured: Settings, db_path: Path, language: str, title: str, sentence: str
) -> None:
    french = dataclasses.replace(configured, language=language)
    response = Client(app_with(french, db_path)).get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert f"<h1>{title}</h1>" in html
    assert sentence in html
    assert "was not found on the server" not in html
    bad = Client(app_with(french, db_path)).get("/%01")
    assert bad.status_code == 400
    assert "The path holds a control character." not in bad.get_data(as_text=True)


def test_a_view_that_fails_is_a_500_without_a_traceback_in_the_answer(
    configured: Settings, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: Request, site: WebContext) -> Response:
        raise RuntimeError("a bug with a secret detail")

    caplog.set_level(logging.ERROR)
    response = Client(app_with(configured, db_path, Endpoint("/broken", broken))).get("/broken")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "secret detail" not in body
    assert "Content-Security-Policy" in response.headers
    assert any(r.exc_info for r in caplog.records)  # the log keeps what a person needs


# --- client addresses behind proxies -----------------------------------------------------


def test_without_trusted_proxies_x_forwarded_for_is_ignored(
    configured: Settings, db_path: Path
) -> None:
    app = app_with(configured, db_path, Endpoint("/ip", echo))
    answer = Client(app).get(
        "/ip",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert answer.get_data(as_text=True).startswith("198.51.100.7 http ")


def test_behind_one_trusted_proxy_the_last_forwarded_address_is_the_client(
    configured: Settings, db_path: Path
) -> None:
    settings = dataclasses.replace(configured, trusted_proxies=1)
    app = app_with(settings, db_path, Endpoint("/ip", echo))
    # The client sent its own X-Forwarded-For; the proxy appended the address it saw.
    answer = Client(app).get(
        "/ip",
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert answer.get_data(as_text=True).startswith("203.0.113.9 https ")


def test_behind_two_trusted_proxies_the_second_to_last_address_is_the_client(
    configured: Settings, db_path: Path
) -> None:
    settings = dataclasses.replace(configured, trusted_proxies=2)
    app = app_with(settings, db_path, Endpoint("/ip", echo))
    answer = Client(app).get(
        "/ip",
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.0.0.2"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert answer.get_data(as_text=True).startswith("203.0.113.9 ")


@pytest.mark.parametrize("value", ["-1", "11", "two"])
def test_a_wrong_trusted_proxies_setting_is_refused(value: str) -> None:
    from policyfeed.config import load_settings

    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_settings(None, environ={"POLICYFEED_TRUSTED_PROXIES": value})


# --- /healthz -------------------------------------------------------------------------------


def test_healthz_is_200_when_the_database_opens(configured: Settings, db_path: Path) -> None:
    response = Client(app_with(configured, db_path)).get("/healthz")
    assert (response.status_code, response.get_data()) == (200, b"ok\n")
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("kind", ["missing", "not sqlite", "empty sqlite", "folder"])
def test_healthz_is_503_when_the_database_does_not_open(
    configured: Settings, tmp_path: Path, kind: str
) -> None:
    db_path = tmp_path / "broken.db"
    if kind == "not sqlite":
        db_path.write_bytes(b"garbage" * 200)
    elif kind == "empty sqlite":
        sqlite3.connect(db_path).close()
    elif kind == "folder":
        db_path.mkdir()
    response = Client(app_with(configured, db_path)).get("/healthz")
    assert response.status_code == 503
    assert response.get_data() == b"database unavailable\n"
    if kind == "missing":
        assert not db_path.exists()  # the check never creates a database


def test_healthz_answers_while_another_process_writes(configured: Settings, db_path: Path) -> None:
    writer = sqlite3.connect(db_path)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE subscribers SET name = name")
    try:
        assert Client(app_with(configured, db_path)).get("/healthz").status_code == 200
    finally:
        writer.rollback()
        writer.close()


# --- starting: the secret, the factory, the serve command ------------------------------------


def test_make_app_refuses_to_start_without_the_secret(settings: Settings, db_path: Path) -> None:
    with pytest.raises(ConfigError, match="POLICYFEED_SECRET is not set"):
        app_with(settings, db_path)
    assert app_with(settings, db_path, demo=True) is not None


def demo_environment(tmp_path: Path, demo_db: Path) -> dict[str, str]:
    shutil.copyfile(demo_db, tmp_path / "posts.db")
    return {
        "POLICYFEED_CONFIG": str(ROOT / "policyfeed.toml"),
        "POLICYFEED_DB": str(tmp_path / "posts.db"),
        "POLICYFEED_SECRET": SECRET,
        "POLICYFEED_OUTPUT_DIR": str(tmp_path / "public"),
    }


def test_create_app_reads_the_environment_as_the_cli_does(
    tmp_path: Path, pristine_demo_db: Path
) -> None:
    env = demo_environment(tmp_path, pristine_demo_db)
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "feed.xml").write_text("<rss/>")
    app = create_app(env)
    assert app.settings.title == "Public Policy"  # from POLICYFEED_CONFIG
    assert app.db_path == tmp_path / "posts.db"
    client = Client(app)
    assert client.get("/feed.xml").get_data() == b"<rss/>"
    assert client.get("/healthz").status_code == 200


def test_create_app_refuses_to_start_without_the_secret(
    tmp_path: Path, pristine_demo_db: Path
) -> None:
    env = demo_environment(tmp_path, pristine_demo_db)
    del env["POLICYFEED_SECRET"]
    with pytest.raises(ConfigError, match="POLICYFEED_SECRET is not set"):
        create_app(env)


def test_create_app_refuses_a_database_that_is_not_there(
    tmp_path: Path, pristine_demo_db: Path
) -> None:
    env = demo_environment(tmp_path, pristine_demo_db)
    env["POLICYFEED_DB"] = str(tmp_path / "mistyped.db")
    with pytest.raises(ConfigError, match=r"mistyped\.db: no such database"):
        create_app(env)
    assert not (tmp_path / "mistyped.db").exists()


def test_create_app_refuses_a_config_file_that_is_not_there(
    tmp_path: Path, pristine_demo_db: Path
) -> None:
    env = demo_environment(tmp_path, pristine_demo_db)
    env["POLICYFEED_CONFIG"] = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        create_app(env)


def test_serve_refuses_to_start_without_the_secret(demo_db_path: Path) -> None:
    config = str(ROOT / "policyfeed.toml")
    result = CliRunner().invoke(cli, ["--db", str(demo_db_path), "--config", config, "serve"])
    assert result.exit_code == 1
    assert "Error: POLICYFEED_SECRET is not set" in result.output
    assert "--demo" in result.output


def test_serve_demo_is_for_loopback_only(demo_db_path: Path) -> None:
    config = str(ROOT / "policyfeed.toml")
    args = ["--db", str(demo_db_path), "--config", config, "serve", "--demo", "--host", "0.0.0.0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "--demo serves only on a loopback address, not 0.0.0.0" in result.output


def test_serve_refuses_a_database_that_is_not_there(tmp_path: Path) -> None:
    config = str(ROOT / "policyfeed.toml")
    result = CliRunner().invoke(
        cli,
        ["--db", str(tmp_path / "mistyped.db"), "--config", config, "serve"],
        env={"POLICYFEED_SECRET": SECRET},
    )
    assert result.exit_code == 1
    assert "mistyped.db: no such database" in result.output
    assert not (tmp_path / "mistyped.db").exists()
