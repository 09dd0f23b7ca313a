"""Notification channels against real servers on loopback: an SMTP server (aiosmtpd) and an HTTP
receiver (http.server in a thread) that checks the HMAC signature. Settings are refused when bad.

The servers (``SmtpSink``, ``Receiver``) and their fixtures are reused by test_notifications.py.
"""
from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from aiosmtpd.controller import Controller

from helpdesk.services import notify_channels as ch
from helpdesk.services.notify_channels import DeliveryError, Notice, NotifyConfigError, NotifySettings

SECRET = "s" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """A real SMTP server on loopback; ``refuse`` makes the next N messages get a 451."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.refuse = 0
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                return "451 4.3.0 try again later"
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"

    def ids(self) -> list[str]:
        return [m["X-Atende-Notification"] for _f, _r, m in self.messages]


class Receiver:
    """A webhook receiver on loopback: checks the signature of every POST; ``status`` answers with
    that code, ``delay_s`` sleeps first, ``redirect`` answers 302 to /elsewhere."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret.encode()
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.bad_signatures = 0
        self.paths: list[str] = []
        self.status = 200
        self.delay_s = 0.0
        self.redirect = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                receiver.paths.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Atende-Signature", "")):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                if receiver.redirect:
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
                    self.end_headers()
                    return
                if receiver.status == 200:
                    receiver.bodies.append(json.loads(body))
                    receiver.headers.append(dict(self.headers))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/atende"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.controller.start()
    try:
        yield sink
    finally:
        sink.controller.stop()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def settings_for(smtp: SmtpSink | None = None, receiver: Receiver | None = None, **extra: str) -> dict[str, str]:
    env = {"ATENDE_CONSOLE_URL": "https://console.example.com.br"}
    if smtp is not None:
        env.update(ATENDE_SMTP_HOST="127.0.0.1", ATENDE_SMTP_PORT=str(smtp.port),
                   ATENDE_SMTP_FROM="Atende <avisos@atende.example>", ATENDE_SMTP_STARTTLS="false")
    if receiver is not None:
        env.update(ATENDE_NOTIFY_WEBHOOK_URL=receiver.url, ATENDE_NOTIFY_WEBHOOK_SECRET=SECRET,
                   ATENDE_NOTIFY_WEBHOOK_TIMEOUT_S="0.5")
    env.update(extra)
    return env


def notice(customer: str = "Padaria Pão Quente", subject: str = "PDV não abre") -> Notice:
    return Notice(notification_id=7, event_id=3, kind="created", ticket_id=42,
                  title="Novo chamado #42 transferido pelo assistente", body=subject,
                  customer=ch.one_line(customer), subject=ch.one_line(subject, 200), priority="alta", level=1,
                  url="https://console.example.com.br/chamado?id=42")


# ---- settings --------------------------------------------------------------------------------------

@pytest.mark.parametrize("env, variable", [
    ({"ATENDE_NOTIFY_WEBHOOK_URL": "file:///etc/passwd", "ATENDE_NOTIFY_WEBHOOK_SECRET": SECRET},
     "ATENDE_NOTIFY_WEBHOOK_URL"),
    ({"ATENDE_NOTIFY_WEBHOOK_URL": "ftp://hooks.example/x", "ATENDE_NOTIFY_WEBHOOK_SECRET": SECRET},
     "ATENDE_NOTIFY_WEBHOOK_URL"),
    ({"ATENDE_NOTIFY_WEBHOOK_URL": "javascript:alert(1)", "ATENDE_NOTIFY_WEBHOOK_SECRET": SECRET},
     "ATENDE_NOTIFY_WEBHOOK_URL"),
    ({"ATENDE_NOTIFY_WEBHOOK_URL": "https:///no-host", "ATENDE_NOTIFY_WEBHOOK_SECRET": SECRET},
     "ATENDE_NOTIFY_WEBHOOK_URL"),
    ({"ATENDE_NOTIFY_WEBHOOK_URL": "https://hooks.example/x", "ATENDE_NOTIFY_WEBHOOK_SECRET": "short"},
     "ATENDE_NOTIFY_WEBHOOK_SECRET"),
    ({"ATENDE_NOTIFY_WEBHOOK_URL": "https://hooks.example/x"}, "ATENDE_NOTIFY_WEBHOOK_SECRET"),
    ({"ATENDE_SMTP_HOST": "mail.example"}, "ATENDE_SMTP_FROM"),
    ({"ATENDE_SMTP_HOST": "mail.example", "ATENDE_SMTP_FROM": "a@b\r\nBcc: x@y"}, "ATENDE_SMTP_FROM"),
    ({"ATENDE_SMTP_PORT": "smtp"}, "ATENDE_SMTP_PORT"),
    ({"ATENDE_SMTP_PORT": "70000"}, "ATENDE_SMTP_PORT"),
    ({"ATENDE_SMTP_STARTTLS": "talvez"}, "ATENDE_SMTP_STARTTLS"),
    ({"ATENDE_NOTIFY_MAX_ATTEMPTS": "0"}, "ATENDE_NOTIFY_MAX_ATTEMPTS"),
    ({"ATENDE_CONSOLE_URL": "javascript:alert(1)"}, "ATENDE_CONSOLE_URL"),
])
def test_bad_settings_are_refused_naming_the_variable(env: dict, variable: str) -> None:
    with pytest.raises(NotifyConfigError, match=variable):
        NotifySettings.from_env(env)


def test_defaults_enable_nothing_but_the_console() -> None:
    s = NotifySettings.from_env({})
    assert not s.email_enabled and not s.webhook_enabled
    assert s.smtp_starttls is True and s.max_attempts == 6
    assert ch.ticket_url(s, 5) == "http://localhost:8501/chamado?id=5"


# ---- e-mail ----------------------------------------------------------------------------------------

def test_email_reaches_a_real_smtp_server_in_ptbr(smtp: SmtpSink) -> None:
    s = NotifySettings.from_env(settings_for(smtp))
    ch.send_email(s, notice(), "ana@atende.example")
    (mail_from, rcpts, msg), = smtp.messages
    assert mail_from == "Atende <avisos@atende.example>" or mail_from == "avisos@atende.example"
    assert rcpts == ["ana@atende.example"]
    assert msg["Subject"] == "[Atende] Novo chamado #42 transferido pelo assistente · Padaria Pão Quente"
    text = msg.get_body(("plain",)).get_content()
    assert "Cliente: Padaria Pão Quente" in text and "Prioridade: alta" in text
    assert "Abrir no console: https://console.example.com.br/chamado?id=42" in text
    assert msg["X-Atende-Notification"] == "7"


def test_customer_text_injects_no_header_and_no_markup(smtp: SmtpSink) -> None:
    s = NotifySettings.from_env(settings_for(smtp))
    evil = "ACME\r\nBcc: intruso@evil.example\r\n\r\n<script>alert(1)</script>\u2028X-Evil: 1"
    ch.send_email(s, notice(customer=evil, subject="<img src=x onerror=alert(1)>\nBcc: b@evil.example"),
                  "ana@atende.example")
    (_from, rcpts, msg), = smtp.messages
    assert rcpts == ["ana@atende.example"]
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert "Bcc: intruso@evil.example" in msg["Subject"]  # kept as inert text on one line
    markup = msg.get_body(("html",)).get_content()
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert "<img" not in markup and "&lt;img src=x onerror=alert(1)&gt;" in markup


def test_smtp_down_or_refusing_is_a_delivery_error() -> None:
    s = NotifySettings.from_env({"ATENDE_SMTP_HOST": "127.0.0.1", "ATENDE_SMTP_PORT": str(free_port()),
                                 "ATENDE_SMTP_FROM": "a@b.example", "ATENDE_SMTP_STARTTLS": "false"})
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="SMTP"):
        ch.send_email(s, notice(), "ana@atende.example")
    assert time.monotonic() - started < 5


def test_starttls_required_by_default_never_sends_in_clear(smtp: SmtpSink) -> None:
    env = settings_for(smtp)
    env.pop("ATENDE_SMTP_STARTTLS")
    with pytest.raises(DeliveryError, match="STARTTLS"):
        ch.send_email(NotifySettings.from_env(env), notice(), "ana@atende.example")
    assert smtp.messages == []


def test_smtp_temporary_refusal_is_a_delivery_error(smtp: SmtpSink) -> None:
    smtp.refuse = 1
    with pytest.raises(DeliveryError, match="451"):
        ch.send_email(NotifySettings.from_env(settings_for(smtp)), notice(), "ana@atende.example")


# ---- webhook ---------------------------------------------------------------------------------------

def test_webhook_posts_signed_json(receiver: Receiver) -> None:
    s = NotifySettings.from_env(settings_for(receiver=receiver))
    ch.send_webhook(s, notice(customer="Loja <b>X</b>"), "2026-12-02T03:00:00Z")
    assert receiver.bad_signatures == 0
    body, = receiver.bodies
    assert body["kind"] == "created" and body["ticket"]["number"] == "#42"
    assert body["ticket"]["customer"] == "Loja <b>X</b>"  # JSON data, the receiver escapes for its medium
    assert body["url"] == "https://console.example.com.br/chamado?id=42"
    assert receiver.headers[0]["X-Atende-Delivery"] == "7"


def test_webhook_with_a_wrong_secret_is_rejected_by_the_receiver(receiver: Receiver) -> None:
    s = NotifySettings.from_env(settings_for(receiver=receiver, ATENDE_NOTIFY_WEBHOOK_SECRET="t" * 40))
    with pytest.raises(DeliveryError, match="401"):
        ch.send_webhook(s, notice(), "2026-12-02T03:00:00Z")
    assert receiver.bad_signatures == 1 and receiver.bodies == []


def test_webhook_500_timeout_and_redirect_are_delivery_errors(receiver: Receiver) -> None:
    s = NotifySettings.from_env(settings_for(receiver=receiver))
    receiver.status = 500
    with pytest.raises(DeliveryError, match="HTTP 500"):
        ch.send_webhook(s, notice(), "t")
    receiver.status, receiver.delay_s = 200, 2.0
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="Timeout"):
        ch.send_webhook(s, notice(), "t")
    assert time.monotonic() - started < 1.8
    receiver.delay_s, receiver.redirect = 0.0, True
    with pytest.raises(DeliveryError, match="HTTP 302"):
        ch.send_webhook(s, notice(), "t")
    assert "/elsewhere" not in receiver.paths


# ---- STARTTLS and login, as a production relay does ---------------------------------------------

@pytest.fixture()
def tls_smtp(tmp_path) -> Iterator[tuple[SmtpSink, str]]:  # type: ignore[no-untyped-def]
    """aiosmtpd requiring STARTTLS (a self-signed certificate for 127.0.0.1) and AUTH LOGIN/PLAIN."""
    import ssl
    import subprocess

    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))

    def authenticator(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"avisos", b"s3nha")
        return AuthResult(success=ok, handled=False)  # a refusal answers 535

    sink = SmtpSink()
    sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port, tls_context=context,
                                 require_starttls=True, authenticator=authenticator, auth_required=True)
    sink.controller.start()
    try:
        yield sink, str(cert)
    finally:
        sink.controller.stop()


def _tls_env(sink: SmtpSink, ca: str | None, password: str = "s3nha") -> dict[str, str]:
    env = {"ATENDE_SMTP_HOST": "127.0.0.1", "ATENDE_SMTP_PORT": str(sink.port), "ATENDE_SMTP_FROM": "avisos@atende.example",
           "ATENDE_SMTP_USER": "avisos", "ATENDE_SMTP_PASSWORD": password}
    if ca:
        env["ATENDE_SMTP_CA_FILE"] = ca
    return env


def test_starttls_and_login_deliver(tls_smtp) -> None:  # type: ignore[no-untyped-def]
    sink, ca = tls_smtp
    ch.send_email(NotifySettings.from_env(_tls_env(sink, ca)), notice(), "ana@atende.example")
    assert [r for _f, r, _m in sink.messages] == [["ana@atende.example"]]


def test_untrusted_certificate_or_wrong_password_deliver_nothing(tls_smtp) -> None:  # type: ignore[no-untyped-def]
    sink, ca = tls_smtp
    with pytest.raises(DeliveryError, match="SMTPAuthenticationError"):
        ch.send_email(NotifySettings.from_env(_tls_env(sink, ca, password="errada")), notice(), "ana@atende.example")
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        ch.send_email(NotifySettings.from_env(_tls_env(sink, None)), notice(), "ana@atende.example")
    assert sink.messages == []


def test_a_missing_ca_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotifyConfigError, match="ATENDE_SMTP_CA_FILE"):
        NotifySettings.from_env({"ATENDE_SMTP_CA_FILE": str(tmp_path / "nada.pem")})
