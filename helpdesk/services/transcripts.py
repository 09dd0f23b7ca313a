"""A ticket's conversation transcript: Rasa's tracker store merged with the ticket's events.

Rasa's SQL tracker store keeps an ``events`` table in the same database (columns include
``sender_id``, ``type_name``, ``timestamp`` (UNIX seconds, UTC), ``intent_name``, ``action_name`` and
``data``, the event as JSON text). User and bot events carry their ``text`` in ``data``. The table
is Rasa's, not ours: it may be missing (no conversation yet), and we only ever read it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from atende_contract import channels, tables
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from ..models import Ticket, TicketEvent

Source = Literal["conversa", "chamado"]

EVENT_LABELS = {
    "created": "chamado aberto", "assigned": "assumido", "status": "status alterado",
    "message_in": "mensagem do cliente", "message_out": "resposta do técnico", "solution": "solução registrada",
    "escalated": "escalonado", "system_update": "atualização de sistema", "fields_changed": "campos alterados",
    "delivery_failed": "falha no envio ao cliente", "bot_notify_failed": "falha ao avisar o assistente",
}


@dataclass(frozen=True)
class Entry:
    at: datetime  # naive UTC, like the help-desk tables
    source: Source
    author: str  # "cliente", "assistente", or the actor of a ticket event
    kind: str  # user | bot | a TicketEvent kind
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.source == "conversa":
            return "cliente" if self.kind == "user" else "assistente"
        return EVENT_LABELS.get(self.kind, self.kind)


def _has_table(s: Session, name: str) -> bool:
    return inspect(s.get_bind()).has_table(name)


def _from_epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(float(ts), tz=timezone.utc).replace(tzinfo=None)


def conversation(s: Session, sender_id: str, *, since: datetime | None = None, limit: int = 500) -> list[Entry]:
    """User and bot messages of one Rasa conversation, oldest first (at most ``limit``, the latest)."""
    if not sender_id or not _has_table(s, tables.EVENTS):
        return []
    # A conversation that began before ids were namespaced (``5511...``) continues under
    # ``whatsapp:5511...``: both are read.
    forms = channels.legacy_forms(sender_id)
    params: dict[str, Any] = {"limit": limit, **{f"sid{i}": form for i, form in enumerate(forms)}}
    placeholders = ", ".join(f":sid{i}" for i in range(len(forms)))
    where = f"sender_id IN ({placeholders}) AND type_name IN ('user', 'bot')"
    if since is not None:
        where += " AND timestamp >= :since"
        params["since"] = since.replace(tzinfo=timezone.utc).timestamp()
    rows = s.execute(text(
        f"SELECT timestamp, type_name, intent_name, data FROM {tables.EVENTS} WHERE {where} "
        "ORDER BY timestamp DESC, id DESC LIMIT :limit"), params).all()
    entries: list[Entry] = []
    for ts, type_name, intent_name, raw in reversed(rows):
        try:
            data = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            data = {}
        body = data.get("text") if isinstance(data, dict) else None
        if not body:
            if type_name == "user" and intent_name and intent_name.startswith("EXTERNAL_"):
                continue  # console-triggered intents carry no customer text
            body = ""
        if not body and type_name == "bot":
            continue  # buttons-only or custom payloads with no text
        entries.append(Entry(at=_from_epoch(ts), source="conversa",
                             author="cliente" if type_name == "user" else "assistente",
                             kind=type_name, text=str(body), data={"intent": intent_name} if intent_name else {}))
    return entries


def ticket_events(s: Session, ticket_id: int) -> list[Entry]:
    rows = s.query(TicketEvent).filter(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.at, TicketEvent.id)
    return [Entry(at=ev.at, source="chamado", author=ev.actor, kind=ev.kind, text=ev.text or "",
                  data=dict(ev.data or {})) for ev in rows]


def for_ticket(s: Session, ticket: Ticket, *, limit: int = 500) -> list[Entry]:
    """The conversation (from the tracker store) and the ticket's events, merged by time."""
    merged = ticket_events(s, ticket.id)
    if ticket.conversation_id:
        merged += conversation(s, ticket.conversation_id, limit=limit)
    # stable: at equal times the conversation turn comes before the ticket event it caused
    return sorted(merged, key=lambda e: (e.at, 0 if e.source == "conversa" else 1))


@dataclass(frozen=True)
class SendFailure:
    at: datetime
    error_code: int | None
    error_title: str
    needs_template: bool
    text: str

    @property
    def message_pt(self) -> str:
        if self.needs_template or self.error_code == 131047:
            return ("Mensagem não entregue pelo WhatsApp (erro 131047): fora da janela de 24 horas. "
                    "Use um template aprovado para retomar a conversa.")
        code = f" (erro {self.error_code})" if self.error_code is not None else ""
        title = f": {self.error_title}" if self.error_title else ""
        return f"Mensagem não entregue pelo WhatsApp{code}{title}."


def whatsapp_failures(s: Session, recipient: str, *, since: datetime | None = None, limit: int = 20) -> list[SendFailure]:
    """Failed WhatsApp sends to a recipient, from the connector's ``whatsapp_outbox`` (read-only)."""
    if not recipient or not _has_table(s, tables.WHATSAPP_OUTBOX):
        return []
    try:
        recipient = channels.local_id(recipient, channels.WHATSAPP)  # the outbox keeps the bare id
    except channels.BadConversationId:
        return []
    params: dict[str, Any] = {"r": recipient, "limit": limit}
    where = "recipient = :r AND (status = 'failed' OR send_state = 'rejected')"
    if since is not None:
        where += " AND created_at >= :since"
        params["since"] = since.replace(tzinfo=timezone.utc).timestamp()
    rows = s.execute(text(
        f"SELECT created_at, error_code, error_title, needs_template, body FROM {tables.WHATSAPP_OUTBOX} "
        f"WHERE {where} ORDER BY created_at DESC, id DESC LIMIT :limit"), params).all()
    out: list[SendFailure] = []
    for created, code, title, needs, body in rows:
        try:
            payload = json.loads(body) if body else {}
        except (TypeError, ValueError):
            payload = {}
        msg = ""
        if isinstance(payload, dict):
            msg = ((payload.get("text") or {}).get("body") if isinstance(payload.get("text"), dict) else "") or ""
            if not msg and isinstance(payload.get("interactive"), dict):
                msg = ((payload["interactive"].get("body") or {}).get("text")) or ""
        out.append(SendFailure(at=_from_epoch(created), error_code=code, error_title=title or "",
                               needs_template=bool(needs), text=str(msg)))
    return out
