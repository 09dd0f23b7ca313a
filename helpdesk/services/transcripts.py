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


# Meta's template errors (132xxx, "Cloud API error codes"): the template itself is refused, so the
# connector marks the row rejected and never sends it again; the technician reads why in pt-BR.
TEMPLATE_ERRORS_PT = {
    132000: "o número de parâmetros não corresponde ao modelo aprovado",
    132001: "o modelo não existe com esse nome e idioma (ou ainda não foi aprovado)",
    132005: "o texto do modelo com os parâmetros ficou longo demais",
    132007: "o conteúdo viola a política de formatação do modelo",
    132012: "o formato de um parâmetro não corresponde ao modelo",
    132015: "o modelo está pausado pela Meta por baixa qualidade",
    132016: "o modelo foi desativado pela Meta",
}


def template_error_pt(code: int | None) -> str | None:
    """Why Meta refused a template, in pt-BR (None when ``code`` is not a 132xxx error)."""
    if not isinstance(code, int) or isinstance(code, bool) or not 132000 <= code <= 132999:
        return None
    return TEMPLATE_ERRORS_PT.get(code, "a Meta recusou o modelo")


@dataclass(frozen=True)
class SendFailure:
    at: datetime
    error_code: int | None
    error_title: str
    needs_template: bool
    text: str
    template: str = ""  # the template's name, when the refused message was a template

    @property
    def message_pt(self) -> str:
        if self.needs_template or self.error_code == 131047:
            return ("Mensagem não entregue pelo WhatsApp (erro 131047): fora da janela de 24 horas. "
                    "Use um template aprovado para retomar a conversa.")
        why = template_error_pt(self.error_code)
        if why is not None:
            name = f" {self.template}" if self.template else ""
            return (f"Modelo{name} recusado pelo WhatsApp (erro {self.error_code}): {why}. Não será reenviado; "
                    "corrija o modelo no WhatsApp Manager ou em WHATSAPP_TEMPLATES. A mensagem retida segue "
                    "quando o cliente escrever.")
        code = f" (erro {self.error_code})" if self.error_code is not None else ""
        title = f": {self.error_title}" if self.error_title else ""
        return f"Mensagem não entregue pelo WhatsApp{code}{title}."


@dataclass(frozen=True)
class HeldMessage:
    """A message the connector keeps (``send_state`` held) until the customer writes again."""
    at: datetime
    needs_template: bool  # no template could carry it: it only goes when the customer writes
    reason: str  # the connector's reason (error_title), as stored
    text: str
    template_refused: int | None = None  # the template it waits behind was refused by Meta (its 132xxx code)

    @property
    def delivered_nothing(self) -> bool:
        """Nothing reached the customer: no template configured, or Meta refused it."""
        return self.needs_template or self.template_refused is not None

    @property
    def message_pt(self) -> str:
        if self.needs_template:
            return ("Mensagem retida: fora da janela de 24 horas e sem modelo configurado. Ela não foi "
                    "entregue e só segue quando o cliente escrever; se for urgente, use o e-mail ou ligue.")
        if self.template_refused is not None:
            return (f"Mensagem retida: o modelo que a levaria foi recusado pela Meta (erro {self.template_refused}). "
                    "Ela não foi entregue e só segue quando o cliente escrever; se for urgente, use o e-mail ou ligue.")
        return ("Mensagem aguardando o cliente: fora da janela de 24 horas, foi enviado um modelo; "
                "esta mensagem segue quando o cliente responder.")


def _body_of(body: Any) -> tuple[str, str]:
    """(the text, the template name) of an outbox row's Graph body; never raises."""
    try:
        payload = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return "", ""
    if not isinstance(payload, dict):
        return "", ""
    msg: Any = ""
    if isinstance(payload.get("text"), dict):
        msg = payload["text"].get("body") or ""
    if not msg and isinstance(payload.get("interactive"), dict):
        inner = payload["interactive"].get("body")
        msg = (inner.get("text") if isinstance(inner, dict) else "") or ""
    template = ""
    if isinstance(payload.get("template"), dict):
        name = payload["template"].get("name")
        template = name[:60] if isinstance(name, str) else ""
    return (msg if isinstance(msg, str) else str(msg)), template


def _outbox_rows(s: Session, recipient: str, where: str, since: datetime | None, limit: int,
                 order: str) -> list[Any]:
    if not recipient or not _has_table(s, tables.WHATSAPP_OUTBOX):
        return []
    try:
        recipient = channels.local_id(recipient, channels.WHATSAPP)  # the outbox keeps the bare id
    except channels.BadConversationId:
        return []
    params: dict[str, Any] = {"r": recipient, "limit": limit}
    where = f"recipient = :r AND ({where})"
    if since is not None:
        where += " AND created_at >= :since"
        params["since"] = since.replace(tzinfo=timezone.utc).timestamp()
    return list(s.execute(text(
        f"SELECT created_at, error_code, error_title, needs_template, body, send_state FROM {tables.WHATSAPP_OUTBOX} "
        f"WHERE {where} ORDER BY {order} LIMIT :limit"), params).all())


def whatsapp_held(s: Session, recipient: str, *, since: datetime | None = None, limit: int = 20) -> list[HeldMessage]:
    """Messages to a recipient the connector holds outside the 24-hour window (``whatsapp_outbox``
    rows ``held``, read-only), oldest first: the order they will go in. A held text waits behind the
    latest template queued at or before it (the same batch, or one sent earlier); when Meta refused
    that template (132xxx), the message says so."""
    rows = _outbox_rows(s, recipient, "send_state = 'held' OR body LIKE '%template%'", since, 10 * limit,
                        "created_at, id")
    out: list[HeldMessage] = []
    last_template: tuple[str, int | None] | None = None  # (send_state, error_code) of the latest template
    for created, code, title, needs, body, state in rows:
        msg, template = _body_of(body)
        if state != "held":
            if template:
                last_template = (state, code)
            continue
        refused = None
        if not needs and last_template is not None and last_template[0] == "rejected":
            refused = last_template[1] if template_error_pt(last_template[1]) else None
        out.append(HeldMessage(at=_from_epoch(created), needs_template=bool(needs),
                               reason=str(title or "")[:400], text=msg, template_refused=refused))
    return out[:limit]


def whatsapp_failures(s: Session, recipient: str, *, since: datetime | None = None, limit: int = 20) -> list[SendFailure]:
    """Failed WhatsApp sends to a recipient, from the connector's ``whatsapp_outbox`` (read-only)."""
    out: list[SendFailure] = []
    for created, code, title, needs, body, _state in _outbox_rows(
            s, recipient, "status = 'failed' OR send_state = 'rejected'", since, limit, "created_at DESC, id DESC"):
        msg, template = _body_of(body)
        out.append(SendFailure(at=_from_epoch(created), error_code=code, error_title=title or "",
                               needs_template=bool(needs), text=msg, template=template))
    return out
