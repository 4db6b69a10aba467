"""The web side's deployment files in docs/ (the systemd unit, nginx and Caddy examples,
deploy.md) agree with the code and with each other, and the README names them."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from policyfeed.config import Settings
from policyfeed.web.server import CLEANUP_INTERVAL, MAX_HEADER_BYTES, SPARE_FILES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DEPLOY = (DOCS / "deploy.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
UNIT = DOCS / "systemd" / "policyfeed-web.service"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser["Service"]


def test_the_web_unit_runs_serve_on_localhost_with_the_secret_and_room_for_its_connections() -> (
    None
):
    unit = service()
    command = shlex.split(unit["ExecStart"])
    assert command[0].endswith("/policyfeed")
    assert command[command.index("serve") :] == ["serve", "--host", "127.0.0.1", "--port", "8000"]
    assert unit["EnvironmentFile"] == "/etc/policyfeed/secrets.env"  # as the publish unit's
    assert set(unit["RestartPreventExitStatus"].split()) == {"1", "2"}
    assert int(unit["LimitNOFILE"]) >= Settings().connection_limit + SPARE_FILES
    check = shlex.split(unit["ExecStartPost"])
    assert check[-1] == "http://127.0.0.1:8000/healthz" and "--fail" in check


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_web_unit(tmp_path: Path) -> None:
    # The unit's programs as this machine has them (the venv's policyfeed, this curl).
    bin_dir = Path(sys.executable).parent
    text = UNIT.read_text().replace("/srv/policyfeed/.venv/bin/", f"{bin_dir}/")
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("no curl")
    text = text.replace("/usr/bin/curl", curl)
    copy = tmp_path / "policyfeed-web.service"
    copy.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    complaints = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if copy.name in line and "User" not in line and "Group" not in line
    ]
    assert complaints == [], done.stderr


def test_the_proxies_pass_to_the_port_the_unit_listens_on() -> None:
    nginx = (DOCS / "nginx" / "policyfeed.conf").read_text()
    caddy = (DOCS / "caddy" / "Caddyfile").read_text()
    assert "server 127.0.0.1:8000;" in nginx
    assert "reverse_proxy 127.0.0.1:8000" in caddy
    for path in ("/unsubscribe", "/healthz"):
        assert f"location = {path} {{" in nginx
    assert "@endpoints path /unsubscribe /healthz" in caddy


def app_paths(settings: Settings) -> set[str]:
    from policyfeed.web.app import load_endpoints

    return {e.rule for e in load_endpoints(settings)}


def test_the_proxies_pass_every_endpoint_of_the_app_on_by_default() -> None:
    """A path the app answers but the proxy does not pass is a page or a form that breaks only
    in production (the sign-up box posts to /subscribe from every page)."""
    nginx = (DOCS / "nginx" / "policyfeed.conf").read_text()
    caddy = (DOCS / "caddy" / "Caddyfile").read_text()
    paths = app_paths(Settings(secret="x" * 32))
    assert {"/unsubscribe", "/healthz", "/subscribe", "/confirm"} <= paths
    passed = set(re.findall(r"^    location = (/\S*) \{", nginx, flags=re.M))
    assert passed == paths
    [matcher] = re.findall(r"^\t@endpoints path (.*)$", caddy, flags=re.M)
    assert set(matcher.split()) == paths
    for path in sorted(paths):
        assert f"`{path}`" in DEPLOY, path


def test_the_proxies_show_how_to_pass_the_endpoints_that_are_off_by_default() -> None:
    on = app_paths(Settings(secret="x" * 32))
    webhook = Settings(
        secret="x" * 32, bounces_webhook="ses", bounces_sns_topic_arns="arn:aws:sns:eu-west-1:1:t"
    )
    extra = app_paths(webhook) - on
    assert extra == {"/webhooks/ses"}
    assert "# location = /webhooks/ses {" in (DOCS / "nginx" / "policyfeed.conf").read_text()
    assert "# handle /webhooks/ses {" in (DOCS / "caddy" / "Caddyfile").read_text()


def test_the_proxies_cap_bodies_at_the_apps_largest_cap() -> None:
    from policyfeed.web.app import make_app

    cap = make_app(Settings(secret="x" * 32), Path("posts.db"), Path("public")).max_body
    assert cap == 16 * 1024
    assert "client_max_body_size 16k;" in (DOCS / "nginx" / "policyfeed.conf").read_text()
    caddy = (DOCS / "caddy" / "Caddyfile").read_text()
    assert "max_size 16KiB" in caddy and f"> {cap}`" in caddy


def test_the_proxies_set_the_apps_content_security_policy() -> None:
    from policyfeed.web.app import CONTENT_SECURITY_POLICY

    assert CONTENT_SECURITY_POLICY in (DOCS / "nginx" / "policyfeed-headers.conf").read_text()
    assert CONTENT_SECURITY_POLICY in (DOCS / "caddy" / "Caddyfile").read_text()


def test_deploy_md_states_the_waitress_limits_as_they_are() -> None:
    defaults = Settings()
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[2]
        for line in DEPLOY.splitlines()
        if line.startswith("| `")
    }
    assert f"({defaults.connection_limit})" in rows["connection_limit"]
    assert f"({defaults.channel_timeout} s)" in rows["channel_timeout"]
    assert f"{CLEANUP_INTERVAL} s" in rows["cleanup_interval"]
    assert "on" in rows["asyncore_use_poll"]
    assert f"{MAX_HEADER_BYTES // 1024} KiB" in rows["max_request_header_size"]
    assert f"+ {SPARE_FILES}" in DEPLOY


@pytest.mark.parametrize(
    "name",
    [
        "trusted_proxies", "connection_limit", "channel_timeout", "cleanup_interval",
        "asyncore_use_poll", "policyfeed.web:create_app", "waitress-serve", "gunicorn",
        "/healthz", "policyfeed-web.service", "nginx/policyfeed.conf", "caddy/Caddyfile",
        "POLICYFEED_SECRET", "--demo", "X-Forwarded-For", "frame-ancestors 'none'",
        "no-referrer", "no-store", "nosniff", "413", "symlink",
    ],
)  # fmt: skip
def test_deploy_md_names_everything_of_the_web_side(name: str) -> None:
    assert name in DEPLOY


def test_the_readme_deployment_section_points_to_the_web_files() -> None:
    section = README.split("## Deployment", 1)[1].split("\n## ", 1)[0]
    for name in (
        "docs/deploy.md",
        "policyfeed-web.service",
        "docs/nginx/policyfeed.conf",
        "docs/caddy/Caddyfile",
        "policyfeed.web:create_app",
        "/healthz",
        "trusted_proxies",
    ):
        assert name in section, name
    assert re.search(r"refuses to start without", section)


def test_the_proxies_show_how_to_pass_the_preview_which_only_the_password_opens() -> None:
    on = app_paths(Settings(secret="x" * 32))
    extra = app_paths(Settings(secret="x" * 32, preview_password="correct horse battery")) - on
    assert extra and all(path.startswith("/preview/") for path in extra)
    assert "# location /preview/ {" in (DOCS / "nginx" / "policyfeed.conf").read_text()
    assert "# handle /preview/* {" in (DOCS / "caddy" / "Caddyfile").read_text()
    assert "## The editors' preview" in DEPLOY and "POLICYFEED_PREVIEW_PASSWORD" in DEPLOY
    assert "`/preview/`" in README and "POLICYFEED_PREVIEW_PASSWORD" in README
