"""The Amazon SES webhook over real HTTP: the site's app under waitress on 127.0.0.1, SNS messages
signed with a key of the test's own whose certificate a local HTTPS server (127.0.0.1, trusted
through bounces.sns_cert_hosts and bounces.sns_ca_file) serves, never the internet."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

import policyfeed.audience.ses as ses
from bounce_support import Sent, publish_week, sent_messages, subscriber_status, with_secret
from policyfeed.config import Settings

ARN = "arn:aws:sns:eu-west-1:123456789012:policyfeed-ses"
WATCH, SAM, ANA = "policy-watch@example.org", "sam.taylor@example.org", "ana.silva@example.org"


def signing_certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.eu-west-1.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class CertHost:
    """A local HTTPS server standing in for SNS: the certificate, the subscribe URL."""

    port: int
    ca_file: Path
    key: rsa.RSAPrivateKey
    hits: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"https://{self.host}{path}"


@pytest.fixture
def cert_host(tmp_path: Path) -> Iterator[CertHost]:
    ses._CERTS.clear()  # each test its own key: no certificate kept from another
    key, pem = signing_certificate()
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path == "/SimpleNotificationService-test.pem":
                body, status = pem, 200
            elif self.path.startswith("/confirm?"):
                body, status = b"<ConfirmSubscriptionResponse/>", 200
            elif self.path == "/moved.pem":
                self.send_response(302)
                self.send_header("Location", "https://elsewhere.example/cert.pem")
                self.end_headers()
                return
            else:
                body, status = b"not found", 404
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield CertHost(server.server_address[1], ca_file, key, hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        ses._CERTS.clear()


@dataclass
class Webhook:
    url: str
    cert_host: CertHost

    def post(
        self, body: bytes, content_type: str = "text/plain; charset=UTF-8"
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.url + "/webhooks/ses", data=body, method="POST",
            headers={"Content-Type": content_type, "x-amz-sns-message-type": "Notification"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def sign(self, message: dict[str, Any], version: str = "2") -> dict[str, Any]:
        message = {
            "SignatureVersion": version,
            "SigningCertURL": self.cert_host.url("/SimpleNotificationService-test.pem"),
            **message,
        }
        algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
        signature = self.cert_host.key.sign(
            ses.string_to_sign(message), padding.PKCS1v15(), algorithm
        )
        return {**message, "Signature": base64.b64encode(signature).decode()}

    def send(self, message: dict[str, Any], **kw: Any) -> tuple[int, bytes]:
        return self.post(json.dumps(self.sign(message, **kw)).encode())


def webhook_settings(settings: Settings, cert_host: CertHost, **extra: Any) -> Settings:
    return with_secret(
        settings,
        bounces_webhook="ses",
        bounces_sns_topic_arns=ARN,
        bounces_sns_cert_hosts=cert_host.host,
        bounces_sns_ca_file=cert_host.ca_file,
        **extra,
    )


def serve(settings: Settings, db_path: Path, out_dir: Path) -> Iterator[str]:
    from policyfeed.web.app import make_app
    from policyfeed.web.server import create_server

    out_dir.mkdir(exist_ok=True)
    server = create_server(make_app(settings, db_path, out_dir), settings, "127.0.0.1", 0)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()
        server.task_dispatcher.shutdown()


@pytest.fixture
def sent(demo_db: sqlite_utils.Database, settings: Settings, now: Any) -> dict[str, Sent]:
    live = with_secret(settings)
    publish_week(demo_db, live, now)
    return sent_messages(live)


@pytest.fixture
def webhook(
    settings: Settings, cert_host: CertHost, demo_db_path: Path, tmp_path: Path,
    sent: dict[str, Sent],
) -> Iterator[Webhook]:  # fmt: skip
    for url in serve(webhook_settings(settings, cert_host), demo_db_path, tmp_path / "public"):
        yield Webhook(url, cert_host)


def stamp(moment: dt.datetime | None = None) -> str:
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def notification(event: dict[str, Any], message_id: str = "b1d2c3e4-0001") -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": ARN,
        "Message": json.dumps(event),
        "Timestamp": stamp(),
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }


def bounce_event(sent: Sent, bounce_type: str = "Permanent", *, source: str | None = None,
                 address: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [{
                "emailAddress": address or sent.email, "action": "failed",
                "status": "5.1.1" if bounce_type == "Permanent" else "4.4.7",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }],
            "timestamp": stamp(),
            "feedbackId": "0100018f-feedback",
        },
        "mail": {
            "timestamp": stamp(),
            "source": source if source is not None else sent.return_path,
            "messageId": "0100018f-ses-message-id",
            "destination": [sent.email],
            "commonHeaders": {"messageId": f"<{sent.message_id}>", "to": [sent.email]},
        },
    }  # fmt: skip


def rows(db_path: Path, table: str) -> list[tuple[Any, ...]]:
    db = sqlite_utils.Database(db_path)
    try:
        return [tuple(r) for r in db.execute(f"SELECT source, source_key FROM {table}").fetchall()]
    finally:
        db.conn.close()


def status(db_path: Path, address: str) -> str:
    db = sqlite_utils.Database(db_path)
    try:
        return subscriber_status(db, address)
    finally:
        db.conn.close()


def test_the_subscription_is_confirmed_by_fetching_its_subscribe_url(webhook: Webhook) -> None:
    answer = webhook.send({
        "Type": "SubscriptionConfirmation", "MessageId": "c0nf1rm", "Token": "2336412f37fb",
        "TopicArn": ARN, "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": webhook.cert_host.url("/confirm?Action=ConfirmSubscription&Token=2336"),
        "Timestamp": stamp(),
    })  # fmt: skip
    assert answer == (200, b"ok\n")
    assert "/confirm?Action=ConfirmSubscription&Token=2336" in webhook.cert_host.hits


def test_a_permanent_bounce_suspends_the_member_once_however_often_sns_sends_it(
    webhook: Webhook, sent: dict[str, Sent], demo_db_path: Path
) -> None:
    message = notification(bounce_event(sent[WATCH]))
    assert webhook.send(message) == (200, b"ok\n")
    assert status(demo_db_path, WATCH) == "bounced"
    assert webhook.send(message, version="1") == (200, b"ok\n")  # SNS retries; SHA1 signing too
    assert rows(demo_db_path, "bounces") == [("webhook", "sns:b1d2c3e4-0001")]
    # The certificate was fetched once and kept.
    assert webhook.cert_host.hits.count("/SimpleNotificationService-test.pem") == 1


def test_a_complaint_found_by_its_message_id_unsubscribes_and_a_transient_bounce_only_counts(
    webhook: Webhook, sent: dict[str, Sent], demo_db_path: Path
) -> None:
    complaint = {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": SAM}],
                      "complaintFeedbackType": "abuse", "userAgent": "Yahoo!-Mail-Feedback/2.0"},
        "mail": {**bounce_event(sent[SAM], source="policy-digest@example.org")["mail"]},
    }  # fmt: skip
    assert webhook.send(notification(complaint, "c-1")) == (200, b"ok\n")
    assert status(demo_db_path, SAM) == "unsubscribed"
    assert rows(demo_db_path, "complaints") == [("webhook", "sns:c-1")]
    assert webhook.send(notification(bounce_event(sent[ANA], "Transient"), "t-1")) == (200, b"ok\n")
    assert status(demo_db_path, ANA) == "active"
    assert rows(demo_db_path, "bounces") == [("webhook", "sns:t-1")]


def test_the_answer_is_the_same_whether_or_not_the_address_is_ours(
    webhook: Webhook, sent: dict[str, Sent], demo_db_path: Path
) -> None:
    stranger = bounce_event(sent[WATCH], address="stranger@example.net")
    assert webhook.send(notification(stranger, "s-1")) == (200, b"ok\n")
    nobody = bounce_event(sent[WATCH], source="policy-digest@example.org")
    nobody["mail"]["commonHeaders"]["messageId"] = "<not-ours@example.net>"
    assert webhook.send(notification(nobody, "s-2")) == (200, b"ok\n")
    assert status(demo_db_path, WATCH) == "active"
    assert rows(demo_db_path, "bounces") == []


@pytest.mark.parametrize(
    "spoil",
    [
        "tampered", "other topic", "old", "other cert host", "http cert", "redirected cert",
        "missing cert", "no signature", "bad version",
    ],
)  # fmt: skip
def test_a_message_that_is_not_genuine_is_refused_and_changes_nothing(
    webhook: Webhook, sent: dict[str, Sent], demo_db_path: Path, spoil: str
) -> None:
    message = webhook.sign(notification(bounce_event(sent[WATCH])))
    if spoil == "tampered":
        message["Message"] = json.dumps(bounce_event(sent[ANA]))
    elif spoil == "other topic":
        theirs = "arn:aws:sns:eu-west-1:210987654321:theirs"
        message = webhook.sign({**notification(bounce_event(sent[WATCH])), "TopicArn": theirs})
    elif spoil == "old":
        old = stamp(dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        message = webhook.sign({**notification(bounce_event(sent[WATCH])), "Timestamp": old})
    elif spoil == "other cert host":
        message["SigningCertURL"] = "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem"
    elif spoil == "http cert":
        message["SigningCertURL"] = message["SigningCertURL"].replace("https://", "http://")
    elif spoil == "redirected cert":
        message = {**message, "SigningCertURL": webhook.cert_host.url("/moved.pem")}
    elif spoil == "missing cert":
        message = {**message, "SigningCertURL": webhook.cert_host.url("/gone.pem")}
    elif spoil == "no signature":
        del message["Signature"]
    elif spoil == "bad version":
        message["SignatureVersion"] = "3"
    assert webhook.post(json.dumps(message).encode()) == (403, b"refused\n")
    assert status(demo_db_path, WATCH) == "active" and status(demo_db_path, ANA) == "active"
    assert rows(demo_db_path, "bounces") == []
    assert "/elsewhere" not in " ".join(webhook.cert_host.hits)


def test_a_body_that_is_not_json_or_too_large_is_refused(
    settings: Settings, cert_host: CertHost, demo_db_path: Path, tmp_path: Path
) -> None:
    small = webhook_settings(settings, cert_host, bounces_webhook_max_body=2048)
    for url in serve(small, demo_db_path, tmp_path / "public"):
        hook = Webhook(url, cert_host)
        assert hook.post(b"{not json") == (400, b"not an SNS message\n")
        status_code, _ = hook.post(b"{" + b" " * 4096 + b"}")
        assert status_code == 413


def test_the_webhook_is_off_unless_configured(
    settings: Settings, demo_db_path: Path, tmp_path: Path, cert_host: CertHost
) -> None:
    for url in serve(with_secret(settings), demo_db_path, tmp_path / "public"):
        status_code, _ = Webhook(url, cert_host).post(b"{}")
        assert status_code in (404, 405)
    assert replace(settings).bounces_webhook == ""


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
        ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem", True),
        ("http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", False),
        ("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", False),
        ("https://evil.example/sns.us-east-1.amazonaws.com/x.pem", False),
        ("https://sns.us-east-1.amazonaws.com:8443/x.pem", False),
        ("https://user@sns.us-east-1.amazonaws.com/x.pem", False),
        ("https://s3.amazonaws.com/x.pem", False),
    ],
)
def test_only_amazon_sns_hosts_may_serve_the_certificate_by_default(
    settings: Settings, url: str, ok: bool
) -> None:
    if ok:
        assert ses.check_sns_url(url, settings, what="SigningCertURL") == url
    else:
        with pytest.raises(ses.Refused, match="is not an https:// URL of Amazon SNS"):
            ses.check_sns_url(url, settings, what="SigningCertURL")
