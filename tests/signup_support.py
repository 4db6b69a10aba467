"""Helpers for the sign-up tests: the web app over the demo database (werkzeug's test client),
its forms' tokens, and the messages it queued and sent."""

from __future__ import annotations

import dataclasses
import email
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from werkzeug.test import Client, TestResponse

from policyfeed.config import Settings
from policyfeed.web.app import SiteApp, make_app

SECRET = "sign-up-test-key"
SITE_ORIGIN = "https://policy.example.org"  # the demo's base_url


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Web:
    app: SiteApp
    client: Client
    settings: Settings
    db_path: Path
    clock: Clock

    @property
    def sender(self) -> Any:
        for endpoint in self.app.endpoints:
            owner = getattr(endpoint.view, "__self__", None)
            if owner is not None and hasattr(owner, "sender"):
                return owner.sender
        raise AssertionError("no sign-up views")

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.client.get(path, environ_base={"REMOTE_ADDR": kw.pop("ip", "192.0.2.1")}, **kw)

    def post(self, path: str, data: dict[str, str], *, ip: str = "192.0.2.1", **kw: Any) -> Any:
        headers = {"User-Agent": "TestBrowser/1.0", **kw.pop("headers", {})}
        response = self.client.post(
            path, data=data, headers=headers, environ_base={"REMOTE_ADDR": ip}, **kw
        )
        assert self.sender.wait(30), "the notices were not sent within 30 s"
        return response

    def csrf(self, path: str) -> str:
        return csrf_of(self.get(path).get_data(as_text=True))

    def subscribe(self, address: str, *, ip: str = "192.0.2.1", **fields: str) -> Any:
        data = {"email": address, "csrf": self.csrf("/subscribe"), **fields}
        return self.post("/subscribe", data, ip=ip)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(query, params).fetchall()

    def status_of(self, address: str) -> str | None:
        rows = self.sql("SELECT status FROM subscribers WHERE email = ?", (address,))
        return rows[0][0] if rows else None

    def outbox(self) -> list[EmailMessage]:
        """Every message in the outbox, oldest first."""
        folder = self.settings.outbox_dir / "new"
        paths = (
            sorted(folder.glob("*"), key=lambda p: p.stat().st_mtime_ns) if folder.is_dir() else []
        )
        return [parse(p.read_bytes()) for p in paths]

    def messages_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.outbox() if m["To"].addresses[0].addr_spec == address]


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def link_in(message: EmailMessage, path: str) -> str:
    """The path and query of the first link to ``path`` in the text part."""
    found = re.search(
        re.escape(SITE_ORIGIN) + re.escape(path) + r"\?t=[A-Za-z0-9._~-]+", text_of(message)
    )
    assert found, f"no {path} link in:\n{text_of(message)}"
    return found.group(0)[len(SITE_ORIGIN) :]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def make_web(
    settings: Settings,
    db_path: Path,
    now: datetime,
    tmp_path: Path,
    *,
    change: Callable[[Settings], Settings] | None = None,
) -> Web:
    configured = dataclasses.replace(settings, secret=SECRET)
    if change is not None:
        configured = change(configured)
    out_dir = tmp_path / "public"
    out_dir.mkdir(exist_ok=True)
    clock = Clock(now)
    app = make_app(configured, db_path, out_dir, now=clock)
    return Web(app, Client(app), configured, db_path, clock)
