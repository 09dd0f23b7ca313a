"""LGPD access/portability (export) and erasure of one data subject, across every store (issue #17).

A selector (customer id, phone, e-mail or conversation id) is resolved into a :class:`Scope`: the
customer record when there is one, every phone (with the WhatsApp forms without the ninth digit),
every e-mail, every conversation id (namespaced and bare legacy forms) and every ticket that
belongs to that person. :func:`export` reads all of it; :func:`erase` deletes or irreversibly
anonymises all of it in one transaction and writes a :class:`~helpdesk.models.PrivacyRequest`
audit row without personal data. Decisions are documented in docs/privacy.md.

Tables owned by other environments (Rasa's ``events``, the WhatsApp connector's tables) are read
and written with plain SQL and may be missing: a missing table is reported as absent.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable

from atende_contract import channels, tables
from sqlalchemy import bindparam, inspect, or_, select, text
from sqlalchemy.orm import Session

from . import consent
from .services import articles
from .errors import InvalidInput, NotFound
from .models import (
    Contact,
    ConversationOutcome,
    Customer,
    CustomerCorrection,
    KnowledgeQuery,
    MachineAccess,
    PrivacyRequest,
    Ticket,
    TicketEvent,
    utcnow,
)
from .phones import phone_variants
from .services.customers import normalize_email

FORMAT = "atende-privacy-export/1"
SELECTORS = ("customer", "phone", "email", "conversation")
WA_INBOX = "whatsapp_inbox"
WA_LEASES = "whatsapp_leases"
WA_ALIASES = "whatsapp_aliases"  # number changes: wa_id (new number) -> conversation (first number)
REMOVED_NAME = "Titular removido"
REMOVED_TEXT = "[removido a pedido do titular]"
# Actors of ticket events that name nobody (a technician's name is kept: it is not the subject).
NEUTRAL_ACTORS = {"bot", "cliente", "assistente", "sistema", "console"}
# Columns of the connector's tables holding JSON text (parsed in the export, blanked on erasure).
_JSON_COLUMNS = {"data", "body", "options"}

PURPOSES_PT = [
    "Atendimento de suporte técnico e comercial (abertura, acompanhamento e solução de chamados).",
    "Identificação do cliente e dos seus contatos, máquinas e licenças para prestar o suporte.",
    "Histórico das conversas pelo WhatsApp e pelo chat do site, para dar continuidade ao atendimento.",
    "Relatórios internos de volume, tempo de solução e satisfação (avaliações).",
    "Melhoria da base de conhecimento a partir das perguntas feitas ao assistente.",
]


def recipients_pt(env: dict[str, str] | None = None) -> list[str]:
    """Who receives the data, in pt-BR; names the LLM provider when one is configured."""
    env = dict(os.environ if env is None else env)
    out = [
        "Equipe de suporte e gestores da empresa (console de atendimento).",
        "Meta Platforms (WhatsApp Business), para as conversas pelo WhatsApp.",
    ]
    if env.get("AZURE_OPENAI_ENDPOINT") and env.get("AZURE_OPENAI_API_KEY"):
        out.append("Microsoft Azure OpenAI (provedor de modelo de linguagem): as perguntas feitas ao "
                   "assistente e trechos da documentação são enviados para gerar as respostas.")
    if env.get("OPENAI_API_KEY"):
        base = env.get("OPENAI_BASE_URL") or "OpenAI"
        out.append(f"Provedor de modelo de linguagem ({base}): as perguntas feitas ao assistente e "
                   "trechos da documentação são enviados para gerar as respostas.")
    if len(out) == 2:
        out.append("Nenhum provedor de modelo de linguagem está configurado: as perguntas não saem "
                   "do servidor.")
    return out


@dataclass
class Scope:
    selector: str
    value: str
    customer: Customer | None = None
    phones: set[str] = field(default_factory=set)  # canonical digits and WhatsApp variants
    emails: set[str] = field(default_factory=set)
    conversations: set[str] = field(default_factory=set)  # every stored form
    wa_ids: set[str] = field(default_factory=set)  # bare WhatsApp ids (inbox sender, outbox recipient)
    ticket_ids: list[int] = field(default_factory=list)


# ---- resolution ---------------------------------------------------------------------------------

def _add_conversation(scope: Scope, conv: str | None) -> None:
    if not conv:
        return
    for form in channels.legacy_forms(conv):
        scope.conversations.add(form)
    owner, local = channels.split(conv)
    if owner == channels.WHATSAPP:
        scope.wa_ids.add(local)


def _add_phone(scope: Scope, phone: str) -> None:
    for variant in phone_variants(phone):
        scope.phones.add(variant)
        scope.wa_ids.add(variant)
        _add_conversation(scope, f"whatsapp:{variant}")


def _not_found(message: str) -> NotFound:
    return NotFound("privacy: nobody matches the selector",
                    f"{message} Nada foi exportado nem apagado.")


def resolve(s: Session, selector: str, value: str) -> Scope:
    """The person behind a selector, with every identifier under which their data is stored.

    Raises InvalidInput (malformed value) or NotFound (nothing held about that person).
    """
    if selector not in SELECTORS:
        raise InvalidInput(f"unknown selector {selector!r}", "Seletor inválido.")
    value = (value or "").strip()
    scope = Scope(selector=selector, value=value)
    customer_ids: set[int] = set()
    if selector == "customer":
        try:
            cid = int(value)
        except ValueError:
            raise InvalidInput(f"customer id {value!r}", "Código de cliente inválido: informe um número.") from None
        if s.get(Customer, cid) is None:
            raise _not_found(f"Cliente {cid} não encontrado.")
        customer_ids.add(cid)
    elif selector == "phone":
        _add_phone(scope, value)  # InvalidPhone on a malformed number
        customer_ids |= set(s.scalars(select(Contact.customer_id).where(
            Contact.kind == "phone", Contact.value.in_(sorted(scope.phones)))))
    elif selector == "email":
        email = normalize_email(value)
        scope.emails.add(email)
        customer_ids |= set(s.scalars(select(Contact.customer_id).where(
            Contact.kind == "email", Contact.value == email)))
    else:
        if not value or len(value) > 200 or any(ch.isspace() for ch in value):
            raise InvalidInput(f"conversation id {value!r}", "Identificador de conversa inválido.")
        _add_conversation(scope, value)
        owner, local = channels.split(value)
        if owner in (channels.WHATSAPP, None) and local.isdigit():
            try:
                _add_phone(scope, local)
            except InvalidInput:
                pass  # a WhatsApp user id (BSUID) or a legacy session id, not a phone
        forms = sorted(scope.conversations)
        customer_ids |= {c for c in s.scalars(select(Ticket.customer_id).where(Ticket.conversation_id.in_(forms))) if c}
        customer_ids |= {c for c in s.scalars(select(ConversationOutcome.customer_id).where(
            ConversationOutcome.conversation_id.in_(forms))) if c}
    if len(customer_ids) > 1:
        raise InvalidInput(f"selector matches customers {sorted(customer_ids)}",
                           "O identificador pertence a mais de um cliente: use --customer com o código "
                           f"de um deles ({', '.join(str(c) for c in sorted(customer_ids))}).")
    if customer_ids:
        scope.customer = s.get(Customer, customer_ids.pop())
        for contact in scope.customer.contacts:
            if contact.kind == "phone":
                try:
                    _add_phone(scope, contact.value)
                except InvalidInput:
                    scope.phones.add(contact.value)
            elif contact.kind == "email":
                scope.emails.add(contact.value)
            elif contact.kind in ("bsuid", "lid"):
                # a username-only (BSUID) or number-hidden (Z-API LID) conversation of the customer
                _add_conversation(scope, f"whatsapp:{contact.value}")
    complete(s, scope)
    return scope


def complete(s: Session, scope: Scope) -> None:
    """Add to the scope every ticket matching its customer, phones, e-mails or conversations, and
    the conversations of those tickets and of the customer's outcomes (also used by the retention
    purge for leads)."""
    conds = []
    if scope.customer is not None:
        conds.append(Ticket.customer_id == scope.customer.id)
    if scope.phones:
        conds.append(Ticket.contact_phone.in_(sorted(scope.phones)))
    if scope.emails:
        conds.append(Ticket.contact_email.in_(sorted(scope.emails)))
    if scope.conversations:
        conds.append(Ticket.conversation_id.in_(sorted(scope.conversations)))
    tickets = list(s.scalars(select(Ticket).where(or_(*conds)).order_by(Ticket.id))) if conds else []
    scope.ticket_ids = [t.id for t in tickets]
    for t in tickets:
        _add_conversation(scope, t.conversation_id)
    if scope.customer is not None:
        for conv in s.scalars(select(ConversationOutcome.conversation_id).where(
                ConversationOutcome.customer_id == scope.customer.id)):
            _add_conversation(scope, conv)


# ---- reading ------------------------------------------------------------------------------------

def _has(s: Session, name: str) -> bool:
    return inspect(s.connection()).has_table(name)


def _columns(s: Session, name: str) -> set[str]:
    return {c["name"] for c in inspect(s.connection()).get_columns(name)}


def _rows_in(s: Session, table: str, column: str, values: Iterable[str], order: str = "id") -> list[dict[str, Any]]:
    values = sorted(set(values))
    if not values:
        return []
    stmt = text(f"SELECT * FROM {table} WHERE {column} IN :values ORDER BY {order}").bindparams(
        bindparam("values", expanding=True))
    return [dict(r) for r in s.execute(stmt, {"values": values}).mappings()]


def _count_in(s: Session, table: str, column: str, values: Iterable[str]) -> int:
    values = sorted(set(values))
    if not values:
        return 0
    stmt = text(f"SELECT COUNT(*) FROM {table} WHERE {column} IN :values").bindparams(
        bindparam("values", expanding=True))
    return int(s.execute(stmt, {"values": values}).scalar() or 0)


def _parse_json_columns(row: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_COLUMNS & set(row):
        if isinstance(row[key], str):
            try:
                row[key] = json.loads(row[key])
            except ValueError:
                pass
    return row


def _model_dict(obj: Any, exclude: Iterable[str] = ()) -> dict[str, Any]:
    skip = set(exclude)
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns if c.key not in skip}


def _outcomes(s: Session, scope: Scope) -> list[ConversationOutcome]:
    o = ConversationOutcome
    conds = []
    if scope.customer is not None:
        conds.append(o.customer_id == scope.customer.id)
    if scope.conversations:
        conds.append(o.conversation_id.in_(sorted(scope.conversations)))
    return list(s.scalars(select(o).where(or_(*conds)).order_by(o.id))) if conds else []


def _queries(s: Session, scope: Scope) -> list[KnowledgeQuery]:
    if not scope.conversations:
        return []
    q = KnowledgeQuery
    return list(s.scalars(select(q).where(q.conversation_id.in_(sorted(scope.conversations))).order_by(q.id)))


def _corrections(s: Session, scope: Scope) -> list[CustomerCorrection]:
    if scope.customer is None:
        return []
    c = CustomerCorrection
    return list(s.scalars(select(c).where(c.customer_id == scope.customer.id).order_by(c.id)))


def _tickets(s: Session, scope: Scope) -> list[Ticket]:
    if not scope.ticket_ids:
        return []
    return list(s.scalars(select(Ticket).where(Ticket.id.in_(scope.ticket_ids)).order_by(Ticket.id)))


# (store, table, column matched, scope attribute) of the tables owned by the bot env.
_FOREIGN = (
    ("events", tables.EVENTS, "sender_id", "conversations"),
    ("whatsapp_inbox", WA_INBOX, "sender", "wa_ids"),
    ("whatsapp_outbox", tables.WHATSAPP_OUTBOX, "recipient", "wa_ids"),
    ("whatsapp_leases", WA_LEASES, "sender", "wa_ids"),
    ("whatsapp_aliases", WA_ALIASES, "wa_id", "wa_ids"),
    ("whatsapp_windows", tables.WHATSAPP_WINDOWS, "recipient", "wa_ids"),
    ("whatsapp_pricing", tables.WHATSAPP_PRICING, "recipient", "wa_ids"),
)


def counts(s: Session, scope: Scope) -> dict[str, int | None]:
    """Rows held per store (None: the table does not exist)."""
    out: dict[str, int | None] = {
        "customers": 1 if scope.customer is not None else 0,
        "contacts": len(scope.customer.contacts) if scope.customer is not None else 0,
        "machines": len(scope.customer.machines) if scope.customer is not None else 0,
        "licenses": len(scope.customer.licenses) if scope.customer is not None else 0,
        # the correction log (0010): kept by the erasure, it holds ids and field names only
        "customer_corrections": len(_corrections(s, scope)),
        "tickets": len(scope.ticket_ids),
        "ticket_events": len(list(s.scalars(select(TicketEvent.id).where(
            TicketEvent.ticket_id.in_(scope.ticket_ids))))) if scope.ticket_ids else 0,
        "conversation_outcomes": len(_outcomes(s, scope)),
        "knowledge_queries": len(_queries(s, scope)),
        **consent.count_rows(s, scope),  # website consents, WhatsApp notices (0007)
        **articles.count_rows(s, scope),  # documentation candidates/articles of their tickets (0012)
    }
    for store, table, column, attr in _FOREIGN:
        out[store] = _count_in(s, table, column, getattr(scope, attr)) if _has(s, table) else None
    return out


def _is_empty(c: dict[str, int | None]) -> bool:
    return not any(v for v in c.values())


def export(s: Session, selector: str, value: str, *, actor: str | None = None) -> dict[str, Any]:
    """Everything held about the person, as one JSON-ready document (raises NotFound for nobody)."""
    scope = resolve(s, selector, value)
    held = counts(s, scope)
    if _is_empty(held):
        raise _not_found("Nenhum dado encontrado para esse identificador.")
    doc: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "selector": {"kind": selector, "value": value},
        "identifiers": {"phones": sorted(scope.phones), "emails": sorted(scope.emails),
                        "conversations": sorted(scope.conversations)},
        "purposes": PURPOSES_PT,
        "recipients": recipients_pt(),
        "controller_note": ("Documento gerado conforme o art. 18 e o art. 19 da LGPD (Lei 13.709/2018): "
                            "confirmação, acesso e portabilidade dos dados pessoais tratados pelo Atende."),
    }
    c = scope.customer
    doc["customer"] = None if c is None else {
        **_model_dict(c),
        "contacts": [_model_dict(x, ("customer_id",)) for x in c.contacts],
        "machines": [_model_dict(x, ("customer_id",)) for x in c.machines],
        "licenses": [{**_model_dict(x, ("customer_id",)), "module": x.module.code if x.module else None}
                     for x in c.licenses],
    }
    tickets = _tickets(s, scope)
    doc["tickets"] = [{**_model_dict(t), "events": [_model_dict(e, ("ticket_id",)) for e in t.events]}
                      for t in tickets]
    doc["leads"] = [{"ticket_id": t.id, "contact_name": t.contact_name, "contact_phone": t.contact_phone,
                     "contact_email": t.contact_email}
                    for t in tickets if t.contact_phone or t.contact_email]
    doc["conversation_outcomes"] = [_model_dict(o) for o in _outcomes(s, scope)]
    doc["knowledge_queries"] = [_model_dict(q) for q in _queries(s, scope)]
    doc.update(consent.export_rows(s, scope))  # privacy_consents, privacy_notices
    doc.update(articles.export_rows(s, scope))  # knowledge_articles made from their tickets
    # who in the support team saw the AnyDesk codes of the person's machines (ids only)
    doc["machine_accesses"] = ([_model_dict(a) for a in s.scalars(
        select(MachineAccess).where(MachineAccess.customer_id == scope.customer.id).order_by(MachineAccess.id))]
        if scope.customer is not None else [])
    # who corrected the person's registry data, when, which field (never the values)
    doc["customer_corrections"] = [_model_dict(x) for x in _corrections(s, scope)]
    for store, table, column, attr in _FOREIGN:
        if not _has(s, table):
            doc["transcripts" if store == "events" else store] = None
            continue
        order = "timestamp, id" if store == "events" else {
            "whatsapp_leases": "sender", "whatsapp_aliases": "wa_id",
            "whatsapp_windows": "recipient", "whatsapp_pricing": "wamid"}.get(store, "id")
        rows = [_parse_json_columns(r) for r in _rows_in(s, table, column, getattr(scope, attr), order)]
        if store == "events":
            transcripts: dict[str, list[dict[str, Any]]] = {}
            for r in rows:
                transcripts.setdefault(r["sender_id"], []).append(r)
            doc["transcripts"] = transcripts
        else:
            doc[store] = rows
    doc["console"] = {"note": ("O console guarda as sessões dos técnicos apenas na memória do servidor; "
                               "não há registros próprios sobre o titular além das tabelas acima.")}
    doc["sources"] = [{"store": store, "present": n is not None, "rows": n or 0} for store, n in held.items()]
    doc["sources"].append({"store": "console", "present": False, "rows": 0})
    s.add(PrivacyRequest(action="export", actor=_actor(actor), selector=selector,
                         customer_id=c.id if c is not None else None, counts=_plain_counts(held)))
    return doc


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, default=_jsonable)


# ---- erasure ------------------------------------------------------------------------------------

def _actor(actor: str | None) -> str:
    if actor:
        return actor[:200]
    try:
        return ("cli:" + getpass.getuser())[:200]
    except Exception:  # noqa: BLE001 - no login name (containers)
        return "cli"


def _plain_counts(c: dict[str, int | None]) -> dict[str, int | None]:
    return {k: (None if v is None else int(v)) for k, v in c.items()}


class _Pseudonyms:
    """Irreversible replacements: a hash salted with a random key that is never stored."""

    def __init__(self) -> None:
        self._salt = secrets.token_bytes(32)

    def __call__(self, value: str) -> str:
        return "apagado:" + hashlib.sha256(self._salt + value.encode()).hexdigest()[:24]


def _update_in(s: Session, table: str, column: str, value: str, sets: dict[str, Any]) -> int:
    cols = _columns(s, table)
    sets = {k: v for k, v in sets.items() if k in cols}
    assign = ", ".join(f"{k} = :set_{k}" for k in sets)
    result = s.execute(text(f"UPDATE {table} SET {assign} WHERE {column} = :match"),
                       {"match": value, **{f"set_{k}": v for k, v in sets.items()}})
    return int(result.rowcount or 0)


def _erase_events(s: Session, scope: Scope, pseudo: _Pseudonyms) -> None:
    if _has(s, tables.EVENTS) and scope.conversations:
        s.execute(text(f"DELETE FROM {tables.EVENTS} WHERE sender_id IN :values").bindparams(
            bindparam("values", expanding=True)), {"values": sorted(scope.conversations)})


def _erase_whatsapp(s: Session, scope: Scope, pseudo: _Pseudonyms) -> None:
    if not scope.wa_ids:
        return
    if _has(s, WA_INBOX):
        if "state" in _columns(s, WA_INBOX):  # a pending message of the person is never handed to Rasa
            s.execute(text(f"UPDATE {WA_INBOX} SET state = 'ignored' WHERE state = 'pending' AND sender IN :v")
                      .bindparams(bindparam("v", expanding=True)), {"v": sorted(scope.wa_ids)})
        for wa_id in sorted(scope.wa_ids):
            _update_in(s, WA_INBOX, "sender", wa_id, {"sender": pseudo(wa_id), "text": None, "button_id": None,
                                                      "data": "{}", "reason": None})
    if _has(s, tables.WHATSAPP_OUTBOX):
        if "send_state" in _columns(s, tables.WHATSAPP_OUTBOX):  # nothing left to send to them
            s.execute(text(f"UPDATE {tables.WHATSAPP_OUTBOX} SET send_state = 'rejected' "
                           "WHERE send_state IN ('pending', 'sending', 'unconfirmed') AND recipient IN :v")
                      .bindparams(bindparam("v", expanding=True)), {"v": sorted(scope.wa_ids)})
        for wa_id in sorted(scope.wa_ids):
            _update_in(s, tables.WHATSAPP_OUTBOX, "recipient", wa_id,
                       {"recipient": pseudo(wa_id), "body": "{}", "options": None})
    if _has(s, WA_LEASES):
        s.execute(text(f"DELETE FROM {WA_LEASES} WHERE sender IN :v").bindparams(
            bindparam("v", expanding=True)), {"v": sorted(scope.wa_ids)})
    if _has(s, tables.WHATSAPP_WINDOWS):  # when Meta's 24-hour window closes for the address
        s.execute(text(f"DELETE FROM {tables.WHATSAPP_WINDOWS} WHERE recipient IN :v").bindparams(
            bindparam("v", expanding=True)), {"v": sorted(scope.wa_ids)})
    if _has(s, tables.WHATSAPP_PRICING):  # what their messages cost stays in the reports, unnamed
        for wa_id in sorted(scope.wa_ids):
            _update_in(s, tables.WHATSAPP_PRICING, "recipient", wa_id, {"recipient": pseudo(wa_id), "reason": None})
        for conv in sorted(scope.conversations):
            _update_in(s, tables.WHATSAPP_PRICING, "conversation", conv, {"conversation": pseudo(conv), "reason": None})
    if _has(s, WA_ALIASES):  # both sides of a number change are the person's numbers
        s.execute(text(f"DELETE FROM {WA_ALIASES} WHERE wa_id IN :v OR conversation IN :v").bindparams(
            bindparam("v", expanding=True)), {"v": sorted(scope.wa_ids)})


def _erase_queries_and_outcomes(s: Session, scope: Scope, pseudo: _Pseudonyms) -> None:
    for q in _queries(s, scope):
        q.question = ""
        q.conversation_id = pseudo(q.conversation_id) if q.conversation_id else None
    for o in _outcomes(s, scope):
        o.conversation_id = pseudo(o.conversation_id)
    s.flush()


def _erase_tickets(s: Session, scope: Scope, pseudo: _Pseudonyms) -> None:
    for t in _tickets(s, scope):
        t.subject = ""
        t.description = REMOVED_TEXT if t.description else ""
        t.solution = REMOVED_TEXT if t.solution else ""
        t.contact_name = ""
        t.contact_phone = None
        t.contact_email = None
        t.conversation_id = pseudo(t.conversation_id) if t.conversation_id else None
        for ev in t.events:
            ev.text = REMOVED_TEXT if ev.text else ""
            ev.data = {}
            if ev.technician_id is None and ev.actor not in NEUTRAL_ACTORS:
                ev.actor = "cliente"
    s.flush()


def _erase_customer(s: Session, scope: Scope, pseudo: _Pseudonyms) -> None:
    c = scope.customer
    if c is None:
        return
    c.responsible_name = REMOVED_NAME
    c.legal_name = REMOVED_NAME
    c.trade_name = ""
    c.cnpj = f"X{c.id:013d}"[:14]  # unique, never a valid CNPJ
    c.city = ""
    c.state = ""
    c.notes = ""
    c.contacts.clear()
    c.machines.clear()
    s.flush()


# In this order; a failure anywhere rolls every step back (one transaction).
# articles.erase_rows reads the person's names before _erase_tickets and _erase_customer remove them.
ERASE_STEPS = (_erase_events, _erase_whatsapp, _erase_queries_and_outcomes, articles.erase_rows, _erase_tickets,
               consent.erase_rows, _erase_customer)


def plan(s: Session, selector: str, value: str) -> dict[str, int | None]:
    """What an erasure would touch, per store (raises NotFound for nobody); changes nothing."""
    held = counts(s, resolve(s, selector, value))
    if _is_empty(held):
        raise _not_found("Nenhum dado encontrado para esse identificador.")
    return held


def erase(s: Session, selector: str, value: str, *, actor: str | None = None) -> dict[str, int | None]:
    """Delete or anonymise everything about the person in the session's transaction.

    The caller commits (session_scope); any exception leaves every store as it was.
    Returns the rows touched per store (None: table absent), also written to the audit row.
    """
    scope = resolve(s, selector, value)
    held = counts(s, scope)
    if _is_empty(held):
        raise _not_found("Nenhum dado encontrado para esse identificador.")
    pseudo = _Pseudonyms()
    for step in ERASE_STEPS:
        step(s, scope, pseudo)
    s.add(PrivacyRequest(action="erase", actor=_actor(actor), selector=selector,
                         customer_id=scope.customer.id if scope.customer is not None else None,
                         counts=_plain_counts(held), at=utcnow()))
    s.flush()
    return held


STORE_LABELS_PT = {
    "customers": "cliente", "contacts": "contatos", "machines": "máquinas", "licenses": "licenças (mantidas)",
    "customer_corrections": "registro de correções (mantido: só ids e nomes de campos)",
    "tickets": "chamados (mantidos, anonimizados)", "ticket_events": "eventos de chamados (texto removido)",
    "conversation_outcomes": "resultados de conversas e avaliações (mantidos, sem identificador)",
    "knowledge_queries": "perguntas ao assistente (texto removido)",
    "events": "mensagens das conversas (tracker do Rasa, apagadas)",
    "whatsapp_inbox": "mensagens recebidas pelo WhatsApp (conteúdo removido)",
    "whatsapp_outbox": "mensagens enviadas pelo WhatsApp (conteúdo removido)",
    "whatsapp_leases": "travas de processamento do WhatsApp (apagadas)",
    "whatsapp_aliases": "trocas de número do WhatsApp (apagadas)",
    "whatsapp_windows": "janelas de 24 horas do WhatsApp (apagadas)",
    "whatsapp_pricing": "preço das mensagens do WhatsApp (mantido para os relatórios, sem o número)",
    "privacy_consents": "consentimentos do chat do site (apagados)",
    "privacy_notices": "avisos de privacidade do WhatsApp (apagados)",
    "knowledge_articles": ("artigos e sugestões de artigo dos chamados (texto do chamado removido; marcados para "
                           "revisão; rode python -m knowledge ingest para tirar do assistente os que citavam a pessoa)"),
}


def describe_counts(c: dict[str, int | None]) -> list[str]:
    return [f"  {STORE_LABELS_PT.get(k, k)}: {'tabela inexistente' if v is None else v}" for k, v in c.items()]
