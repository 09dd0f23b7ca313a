"""The WhatsApp 24-hour window of a ticket's conversation, for the console's "Responder" tab
(app env, read-only over the connector's tables named in atende_contract.tables).

The same rule as the connector (atende_contract.wa_window): open until 24 h after the customer's
last message, or until Meta's latest ``conversation.expiration_timestamp``. Outside it a reply goes
as the template configured for ``ticket_update`` (WHATSAPP_TEMPLATES, atende_contract.wa_templates);
without one, the technician is told so and offered the customer's e-mail.

The provider is the deployment's (``WHATSAPP_PROVIDER``, read by the connector's settings; the
console reads the same variable): Z-API drives a WhatsApp Web session, with no window and no
templates, so a Z-API conversation has state ``no_window`` and the console offers no template.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from atende_contract import channels, tables, wa_templates, wa_window

DISPLAY_TZ = ZoneInfo("America/Sao_Paulo")  # the help desk's clock (sla_calendar.DEFAULT_TIMEZONE)
REPLY_PURPOSE = "ticket_update"
PROVIDERS = ("cloud", "zapi")  # connectors/whatsapp/providers


def provider(env: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """(the WhatsApp provider of this deployment, a problem to show). ``WHATSAPP_PROVIDER`` as the
    connector reads it (unset or empty: ``cloud``); a value the connector would refuse is reported
    and treated as the Cloud API, whose rule is the stricter."""
    env = os.environ if env is None else env
    raw = env.get("WHATSAPP_PROVIDER")
    name = (raw or "cloud").strip().lower() or "cloud"
    if name in PROVIDERS:
        return name, None
    return "cloud", f"WHATSAPP_PROVIDER deve ser 'cloud' ou 'zapi' (está {str(raw)[:40]!r})"


@dataclass(frozen=True)
class ReplyWindow:
    state: str  # open | template | no_template | no_window (Z-API)
    until: float | None  # UNIX time the window closes (open)
    template: str | None = None  # the template a reply would go as (template)
    problem: str | None = None  # WHATSAPP_TEMPLATES could not be read (shown to the technician)

    def until_pt(self) -> str:
        if self.until is None:
            return ""
        return datetime.fromtimestamp(self.until, DISPLAY_TZ).strftime("%H:%M")


def configured_template(purpose: str = REPLY_PURPOSE, env: Mapping[str, str] | None = None) -> str | None:
    """The template name configured for ``purpose``; None without one. Read when called."""
    env = os.environ if env is None else env
    return getattr(wa_templates.parse_config(env.get("WHATSAPP_TEMPLATES")).get(purpose), "name", None)


def _present(s: Session, *names: str) -> bool:
    existing = set(inspect(s.get_bind()).get_table_names())
    return all(n in existing for n in names)


def reply_window(s: Session, conversation_id: str | None, *, now: float | None = None,
                 template: str | None = None, env: Mapping[str, str] | None = None) -> ReplyWindow | None:
    """The window of a WhatsApp conversation (None for another channel or a bad id). ``template``
    overrides the configured one (tests); the connector's tables may be missing (no WhatsApp yet)."""
    cid = conversation_id or ""
    if not (cid.startswith(f"{channels.WHATSAPP}:") or cid.isdigit()):  # a legacy id is a bare number
        return None
    try:
        address = channels.local_id(cid, channels.WHATSAPP)
    except channels.BadConversationId:
        return None
    kind, bad_provider = provider(env)
    if kind == "zapi":
        return ReplyWindow("no_window", None)
    last = expires = None
    if _present(s, tables.WHATSAPP_INBOX):
        senders = {address}
        if _present(s, tables.WHATSAPP_ALIASES):  # the numbers this conversation moved to
            senders |= set(s.execute(text(f"SELECT wa_id FROM {tables.WHATSAPP_ALIASES} WHERE conversation = :c"),
                                     {"c": address}).scalars())
        for sender in senders:
            t = s.execute(text(f"SELECT MAX(received_at) FROM {tables.WHATSAPP_INBOX} "
                               "WHERE sender = :s AND kind = 'message'"), {"s": sender}).scalar()
            last = t if last is None or (t is not None and t > last) else last
            if _present(s, tables.WHATSAPP_WINDOWS):
                e = s.execute(text(f"SELECT expires_at FROM {tables.WHATSAPP_WINDOWS} WHERE recipient = :r"),
                              {"r": sender}).scalar()
                expires = e if expires is None or (e is not None and e > expires) else expires
    now = time.time() if now is None else now
    if wa_window.is_open(last, expires, now):
        return ReplyWindow("open", wa_window.window_until(last, expires), problem=bad_provider)
    try:
        name = template if template is not None else configured_template(env=env)
    except wa_templates.TemplateConfigError as err:
        return ReplyWindow("no_template", None, problem="; ".join(filter(None, (bad_provider, str(err)))))
    return (ReplyWindow("template", None, name, problem=bad_provider) if name
            else ReplyWindow("no_template", None, problem=bad_provider))


def mask_email(address: str) -> str:
    """``ana.souza@empresa.com.br`` -> ``a***@empresa.com.br`` (shown before the technician asks)."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"
