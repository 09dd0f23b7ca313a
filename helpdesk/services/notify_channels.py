"""Notification channels: settings, what a notification says, and how it leaves (SMTP, webhook).

Settings are read once from the environment (``notify_settings()``; ``reset_notify_settings()`` for
tests), never at import time. A bad value raises ``NotifyConfigError`` with the variable's name:
the dispatcher fails loudly (worker log and /health) rather than sending half-configured.

- E-mail: stdlib smtplib to ATENDE_SMTP_HOST:PORT, STARTTLS by default (ATENDE_SMTP_STARTTLS=false
  only for a relay on loopback; ATENDE_SMTP_CA_FILE to trust a private CA), login when
  ATENDE_SMTP_USER is set. Plain-text body plus an HTML alternative in which every value is escaped; header values are stripped of CR/LF and control
  characters (customer names are untrusted).
- Webhook: JSON POST to ATENDE_NOTIFY_WEBHOOK_URL (http or https only), signed with
  ``X-Atende-Signature: sha256=<hex HMAC-SHA256 of the body>`` under ATENDE_NOTIFY_WEBHOOK_SECRET
  (at least 32 bytes); a timeout; redirects are not followed (a 3xx is a failure).
"""
from __future__ import annotations

import hashlib
import hmac
import html
import json
import os
import smtplib
import ssl
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from urllib.parse import quote, urlsplit

import httpx

from ..envparse import flag as env_flag
from ..envparse import positive_number

TARGET_LABELS = {"first_response": "primeira resposta", "resolution": "resolução"}
TICKET_PATH = "/chamado?id={id}"  # the console's ticket page (st.navigation url_path "chamado")
MAX_NAME = 80
MIN_SECRET = 32


class NotifyConfigError(ValueError):
    """A notification setting is invalid; the message names the variable."""


class DeliveryError(Exception):
    """A channel could not deliver; the message is stored as the row's last_error."""


@dataclass(frozen=True)
class NotifySettings:
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    smtp_ca_file: str = ""  # a CA bundle to trust for a relay with a private CA (else the system's)
    smtp_timeout_s: float = 10.0
    webhook_url: str = ""
    webhook_secret: bytes = b""
    webhook_timeout_s: float = 5.0
    console_url: str = "http://localhost:8501"
    max_attempts: int = 6
    backoff_base_s: float = 30.0

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host)

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.webhook_url)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "NotifySettings":
        env = dict(os.environ if env is None else env)

        def number(key: str, default: float, kind: type = float) -> float:
            return positive_number(env, key, default, kind, NotifyConfigError)

        def flag(key: str, default: bool) -> bool:
            return env_flag(env, key, default, NotifyConfigError)

        host = (env.get("ATENDE_SMTP_HOST") or "").strip()
        sender = (env.get("ATENDE_SMTP_FROM") or "").strip()
        if host and not sender:
            raise NotifyConfigError("ATENDE_SMTP_FROM is required when ATENDE_SMTP_HOST is set")
        if any(c in sender for c in "\r\n"):
            raise NotifyConfigError("ATENDE_SMTP_FROM must be one line")
        ca_file = (env.get("ATENDE_SMTP_CA_FILE") or "").strip()
        if ca_file and not os.path.isfile(ca_file):
            raise NotifyConfigError(f"ATENDE_SMTP_CA_FILE is not a readable file: {ca_file!r}")
        port = int(number("ATENDE_SMTP_PORT", 587, int))
        if port > 65535:
            raise NotifyConfigError(f"ATENDE_SMTP_PORT out of range: {port}")
        url = (env.get("ATENDE_NOTIFY_WEBHOOK_URL") or "").strip()
        secret = (env.get("ATENDE_NOTIFY_WEBHOOK_SECRET") or "").encode()
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise NotifyConfigError(
                    f"ATENDE_NOTIFY_WEBHOOK_URL must be an http(s) URL with a host, got scheme {parts.scheme!r}")
            if len(secret) < MIN_SECRET:
                raise NotifyConfigError(
                    f"ATENDE_NOTIFY_WEBHOOK_SECRET must be at least {MIN_SECRET} bytes when a webhook is set")
        console = (env.get("ATENDE_CONSOLE_URL") or "http://localhost:8501").strip().rstrip("/")
        if urlsplit(console).scheme not in ("http", "https"):
            raise NotifyConfigError("ATENDE_CONSOLE_URL must be an http(s) URL")
        return cls(
            smtp_host=host, smtp_port=port, smtp_user=(env.get("ATENDE_SMTP_USER") or "").strip(),
            smtp_password=env.get("ATENDE_SMTP_PASSWORD") or "", smtp_from=sender,
            smtp_starttls=flag("ATENDE_SMTP_STARTTLS", True), smtp_ca_file=ca_file,
            smtp_timeout_s=number("ATENDE_SMTP_TIMEOUT_S", 10.0),
            webhook_url=url, webhook_secret=secret,
            webhook_timeout_s=number("ATENDE_NOTIFY_WEBHOOK_TIMEOUT_S", 5.0),
            console_url=console,
            max_attempts=int(number("ATENDE_NOTIFY_MAX_ATTEMPTS", 6, int)),
            backoff_base_s=number("ATENDE_NOTIFY_BACKOFF_S", 30.0),
        )


@lru_cache(maxsize=1)
def notify_settings() -> NotifySettings:
    return NotifySettings.from_env()


def reset_notify_settings() -> None:
    notify_settings.cache_clear()


# ---- what a notification says ----------------------------------------------------------------------

def one_line(value: str, limit: int = MAX_NAME) -> str:
    """Untrusted text made safe for a header or a title: no control, format or line/paragraph
    separator characters, whitespace collapsed, at most ``limit`` characters."""
    cleaned = "".join(" " if unicodedata.category(c)[0] in ("C", "Z") else c for c in value or "")
    cleaned = " ".join(cleaned.split())
    return cleaned[:limit].strip() or "—"


@dataclass(frozen=True)
class Notice:
    """One notification, rendered (pt-BR)."""
    notification_id: int
    event_id: int
    kind: str
    ticket_id: int
    title: str
    body: str
    customer: str
    subject: str
    priority: str
    level: int
    url: str
    target: str | None = None

    def payload(self) -> dict:
        return {"notification_id": self.notification_id, "event_id": self.event_id, "kind": self.kind,
                "title": self.title, "text": self.body, "url": self.url, "target": self.target,
                "ticket": {"id": self.ticket_id, "number": f"#{self.ticket_id}", "customer": self.customer,
                           "subject": self.subject, "priority": self.priority, "level": self.level}}


def ticket_url(settings: NotifySettings, ticket_id: int) -> str:
    return settings.console_url + TICKET_PATH.format(id=quote(str(int(ticket_id))))


def title_for(kind: str, ticket_id: int, data: dict, actor: str, *, for_recipient: bool) -> str:
    number = f"#{ticket_id}"
    if kind == "created":
        return (f"Novo chamado {number} transferido pelo assistente" if actor == "bot"
                else f"Novo chamado {number}")
    if kind == "escalated":
        if for_recipient and data.get("to_technician_id"):
            return f"Chamado {number} escalado para você"
        return f"Chamado {number} escalado para o nível {data.get('to_level', '?')}"
    target = TARGET_LABELS.get(str(data.get("target")), "atendimento")
    if kind == "sla_warning":
        return f"Chamado {number}: prazo de {target} perto do fim"
    if kind == "sla_breach":
        return f"Chamado {number}: prazo de {target} estourado"
    return f"Chamado {number} atualizado"


def email_message(settings: NotifySettings, notice: Notice, to_addr: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = one_line(f"[Atende] {notice.title} · {notice.customer}", 180)
    msg["From"] = settings.smtp_from
    msg["To"] = one_line(to_addr, 200)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(idstring=f"atende.{notice.notification_id}")
    msg["X-Atende-Notification"] = str(notice.notification_id)
    text = (f"{notice.title}\n\nCliente: {notice.customer}\nAssunto: {notice.subject}\n"
            f"Prioridade: {notice.priority} · Nível: {notice.level}\n\n{notice.body}\n\n"
            f"Abrir no console: {notice.url}\n\n-- \nAtende · aviso automático, não responda.")
    msg.set_content(text)
    e = html.escape
    msg.add_alternative(
        f"<p><strong>{e(notice.title)}</strong></p><p>Cliente: {e(notice.customer)}<br>"
        f"Assunto: {e(notice.subject)}<br>Prioridade: {e(notice.priority)} · Nível: {notice.level}</p>"
        f"<p>{e(notice.body)}</p><p><a href=\"{e(notice.url, quote=True)}\">Abrir no console</a></p>",
        subtype="html")
    return msg


def send_email(settings: NotifySettings, notice: Notice, to_addr: str) -> None:
    msg = email_message(settings, notice, to_addr)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                if not smtp.has_extn("starttls"):
                    raise DeliveryError("o servidor SMTP não oferece STARTTLS (ATENDE_SMTP_STARTTLS=true)")
                smtp.starttls(context=ssl.create_default_context(cafile=settings.smtp_ca_file or None))
                smtp.ehlo()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            refused = smtp.send_message(msg, from_addr=settings.smtp_from, to_addrs=[to_addr])
            if refused:
                raise DeliveryError(f"SMTP recusou o destinatário: {refused}")
    except DeliveryError:
        raise
    except (smtplib.SMTPException, OSError) as err:
        raise DeliveryError(f"SMTP: {type(err).__name__}: {err}") from err


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def webhook_body(notice: Notice, sent_at: str) -> bytes:
    return json.dumps({**notice.payload(), "sent_at": sent_at}, ensure_ascii=False,
                      separators=(",", ":"), sort_keys=True).encode()


def send_webhook(settings: NotifySettings, notice: Notice, sent_at: str) -> None:
    body = webhook_body(notice, sent_at)
    headers = {"Content-Type": "application/json; charset=utf-8",
               "X-Atende-Signature": sign(settings.webhook_secret, body),
               "X-Atende-Event": notice.kind, "X-Atende-Delivery": str(notice.notification_id),
               "User-Agent": "atende-notify/1"}
    try:
        with httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False, trust_env=False) as client:
            response = client.post(settings.webhook_url, content=body, headers=headers)
    except httpx.HTTPError as err:
        raise DeliveryError(f"webhook: {type(err).__name__}: {err}") from err
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"webhook: HTTP {response.status_code} (redirecionamentos não são seguidos)"
                            if 300 <= response.status_code < 400 else f"webhook: HTTP {response.status_code}")
