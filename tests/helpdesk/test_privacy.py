"""LGPD export and erasure (issue #17 parts 2 and 3), on SQLite and PostgreSQL.

One customer (Joana) has WhatsApp (with the phone stored without the ninth digit, and a legacy bare
conversation id) and website conversations, tickets with events, ratings, a question to the
assistant, tracker-store events and WhatsApp inbox/outbox rows; a second customer (Carlos) and a
lead have their own. The export of Joana holds every item; after the erasure no table holds any of
her identifiers or texts, the reports over the period are unchanged and Carlos is untouched.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from helpdesk import privacy
from helpdesk.db import downgrade, get_engine, session_scope, upgrade
from helpdesk.errors import InvalidInput, InvalidPhone, NotFound
from helpdesk.models import (
    Contact,
    ConversationOutcome,
    Customer,
    KnowledgeQuery,
    License,
    Machine,
    Module,
    PrivacyRequest,
    Product,
    Ticket,
    TicketEvent,
)
from helpdesk.services import metrics

ROOT = Path(__file__).resolve().parents[2]

_foreign = sa.MetaData()
EVENTS = sa.Table(  # Rasa 3.6 SQLTrackerStore
    "events", _foreign, sa.Column("id", sa.Integer, primary_key=True), sa.Column("sender_id", sa.String(255)),
    sa.Column("type_name", sa.String(255)), sa.Column("timestamp", sa.Float), sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)), sa.Column("data", sa.Text))
INBOX = sa.Table(  # connectors/whatsapp/store/engine.py
    "whatsapp_inbox", _foreign, sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.String(255), nullable=False, unique=True), sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("sender", sa.String(128), nullable=False), sa.Column("state", sa.String(16), nullable=False),
    sa.Column("text", sa.Text), sa.Column("button_id", sa.String(255)), sa.Column("data", sa.Text, nullable=False),
    sa.Column("reason", sa.Text), sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("received_at", sa.Float, nullable=False), sa.Column("processed_at", sa.Float))
OUTBOX = sa.Table(
    "whatsapp_outbox", _foreign, sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_key", sa.String(255), nullable=False), sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("recipient", sa.String(128), nullable=False), sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("body", sa.Text, nullable=False), sa.Column("ref", sa.String(32)), sa.Column("options", sa.Text),
    sa.Column("send_state", sa.String(16), nullable=False), sa.Column("wamid", sa.String(255)),
    sa.Column("status", sa.String(16)), sa.Column("error_code", sa.Integer), sa.Column("error_title", sa.Text),
    sa.Column("needs_template", sa.Boolean, nullable=False, default=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0), sa.Column("next_attempt_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False), sa.Column("updated_at", sa.Float, nullable=False))
LEASES = sa.Table(
    "whatsapp_leases", _foreign, sa.Column("sender", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False), sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=False))
ALIASES = sa.Table(
    "whatsapp_aliases", _foreign, sa.Column("wa_id", sa.String(128), primary_key=True),
    sa.Column("conversation", sa.String(128), nullable=False, index=True),
    sa.Column("changed_at", sa.Float, nullable=False))
WINDOWS = sa.Table(
    "whatsapp_windows", _foreign, sa.Column("recipient", sa.String(128), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False), sa.Column("updated_at", sa.Float, nullable=False))
PRICING = sa.Table(  # Meta's pricing object per message (connectors/whatsapp/store/engine.py)
    "whatsapp_pricing", _foreign, sa.Column("wamid", sa.String(255), primary_key=True),
    sa.Column("recipient", sa.String(128), nullable=False), sa.Column("conversation", sa.String(200), nullable=False),
    sa.Column("billable", sa.Boolean), sa.Column("category", sa.String(40)), sa.Column("pricing_model", sa.String(16)),
    sa.Column("pricing_type", sa.String(40)), sa.Column("reason", sa.Text),
    sa.Column("recorded_at", sa.Float, nullable=False))

JOANA_PHONE = "5511987654321"
JOANA_WA = "551187654321"  # the same mobile as WhatsApp sends it, without the ninth digit
JOANA_EMAIL = "joana@docesdajoana.com.br"
JOANA_CNPJ = "04252011000110"
# Every one of these must be in the export and in no table after the erasure.
JOANA_NEEDLES = [
    "Joana", "Pereira", JOANA_PHONE, JOANA_WA, JOANA_EMAIL, "docesdajoana", JOANA_CNPJ, "CAIXA-JOANA",
    "AD-731845296", "impressora travou na padaria", "reinstalei o driver sigiloso", "mensagem sigilosa da cliente",
    "como emitir nota na padaria", "sess-joana-1", "texto do inbox da cliente", "resposta enviada a cliente",
    "conversa antiga da cliente", "lembrete sobre a confeitaria", "Rua das Flores 12",
]
CARLOS_PHONE = "5531988887777"
LEAD_PHONE = "5521999887766"


@dataclass
class Ids:
    joana: int
    carlos: int
    joana_tickets: list[int]
    lead_ticket: int


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


@pytest.fixture()
def foreign_tables(db_url: str) -> Iterator[None]:
    engine = get_engine()
    _foreign.create_all(engine)
    try:
        yield
    finally:
        _foreign.drop_all(engine)


def _customer(s: Any, name: str, legal: str, cnpj: str, phone: str, email: str, regime: str, machine: str,
              anydesk: str, module: Module, notes: str = "") -> Customer:
    c = Customer(responsible_name=name, legal_name=legal, trade_name=legal.split()[0] + " Ltda", cnpj=cnpj,
                 tax_regime=regime, city="Campinas", state="SP", notes=notes)
    c.contacts = [Contact(kind="phone", value=phone, name=name, is_primary=True),
                  Contact(kind="email", value=email, name=name)]
    c.machines = [Machine(name=machine, anydesk_code=anydesk, notes="balcão")]
    c.licenses = [License(module=module, seats=2, version="5.1", valid_until=date(2027, 1, 31))]
    s.add(c)
    s.flush()
    return c


def _ticket(s: Any, customer: Customer | None, conv: str | None, opened: str, type_: str, module: str, **kw: Any) -> Ticket:
    t = Ticket(customer_id=customer.id if customer else None, channel=kw.pop("channel", "whatsapp"), type=type_,
               module=module, conversation_id=conv, opened_at=datetime.fromisoformat(opened), **kw)
    s.add(t)
    s.flush()
    return t


def _load(with_foreign: bool = True) -> Ids:
    with session_scope() as s:
        product = Product(code="erp", name="ERP")
        module = Module(product=product, code="fiscal", name="Fiscal")
        s.add_all([product, module])
        joana = _customer(s, "Joana Pereira Lima", "Joana Pereira Lima MEI", JOANA_CNPJ, JOANA_PHONE, JOANA_EMAIL,
                          "mei", "CAIXA-JOANA", "AD-731845296", module, notes="Rua das Flores 12")
        carlos = _customer(s, "Carlos Souza Ferreira", "Ferragens Souza Ltda", "11222333000181", CARLOS_PHONE,
                           "carlos@ferragens.com.br", "lucro_presumido", "CAIXA-CARLOS", "AD-111222333", module)
        t1 = _ticket(s, joana, f"whatsapp:{JOANA_WA}", "2026-03-02T10:00:00", "erro", "fiscal",
                     subject="Impressora da Joana", description="impressora travou na padaria",
                     contact_name="Joana Pereira Lima", solution="reinstalei o driver sigiloso", status="concluido",
                     resolved_at=datetime(2026, 3, 2, 12, 0), first_response_at=datetime(2026, 3, 2, 10, 5))
        t1.events = [TicketEvent(actor="bot", kind="created", text="chamado aberto", at=datetime(2026, 3, 2, 10, 0)),
                     TicketEvent(actor="Joana Pereira Lima", kind="message_in", text="mensagem sigilosa da cliente",
                                 data={"phone": JOANA_PHONE}, at=datetime(2026, 3, 2, 10, 1)),
                     TicketEvent(actor="bot", kind="solution", text="reinstalei o driver sigiloso",
                                 at=datetime(2026, 3, 2, 12, 0))]
        t2 = _ticket(s, joana, "web:sess-joana-1", "2026-04-10T09:00:00", "duvida", "fiscal", channel="web",
                     subject="Dúvida", description="lembrete sobre a confeitaria")
        t2.events = [TicketEvent(actor="cliente", kind="created", text="lembrete sobre a confeitaria",
                                 at=datetime(2026, 4, 10, 9, 0))]
        tc = _ticket(s, carlos, f"whatsapp:{CARLOS_PHONE}", "2026-03-05T10:00:00", "erro", "fiscal",
                     description="erro do carlos", contact_name="Carlos Souza Ferreira")
        tc.events = [TicketEvent(actor="bot", kind="created", text="erro do carlos")]
        lead = _ticket(s, None, f"whatsapp:{LEAD_PHONE}", "2026-03-20T15:00:00", "comercial", None,
                       description="quero comprar o sistema, sou a lead Marta", contact_name="Marta Lead",
                       contact_phone=LEAD_PHONE, contact_email="marta@lead.com.br")
        s.add_all([
            ConversationOutcome(conversation_id=f"whatsapp:{JOANA_WA}", channel="whatsapp", customer_id=joana.id,
                                started_at=datetime(2026, 3, 2, 10, 0), handed_off=True, rating=5),
            ConversationOutcome(conversation_id="web:sess-joana-1", channel="web", customer_id=joana.id,
                                started_at=datetime(2026, 4, 10, 9, 0), resolved_by_bot=True, rating=4),
            ConversationOutcome(conversation_id=f"whatsapp:{CARLOS_PHONE}", channel="whatsapp",
                                customer_id=carlos.id, started_at=datetime(2026, 3, 5, 10, 0), rating=2),
            KnowledgeQuery(conversation_id="web:sess-joana-1", question="como emitir nota na padaria",
                           answered=False, at=datetime(2026, 4, 10, 9, 1)),
            KnowledgeQuery(conversation_id=f"whatsapp:{CARLOS_PHONE}", question="pergunta do carlos",
                           answered=True, at=datetime(2026, 3, 5, 10, 1)),
        ])
        if with_foreign:
            ev = [
                (f"whatsapp:{JOANA_WA}", "user", "2026-03-02T10:00:00", {"text": "mensagem sigilosa da cliente"}),
                (f"whatsapp:{JOANA_WA}", "bot", "2026-03-02T10:00:01", {"text": "Olá Joana Pereira Lima!"}),
                (JOANA_PHONE, "user", "2025-12-01T08:00:00", {"text": "conversa antiga da cliente"}),
                ("web:sess-joana-1", "user", "2026-04-10T09:00:00", {"text": f"meu e-mail é {JOANA_EMAIL}"}),
                (f"whatsapp:{CARLOS_PHONE}", "user", "2026-03-05T10:00:00", {"text": "oi sou o carlos"}),
            ]
            for sender, kind, at, data in ev:
                s.execute(EVENTS.insert().values(sender_id=sender, type_name=kind, timestamp=_epoch(at),
                                                 data=json.dumps({"event": kind, **data}, ensure_ascii=False)))
            for i, (who, txt) in enumerate([(JOANA_WA, "texto do inbox da cliente"), (CARLOS_PHONE, "inbox do carlos")]):
                s.execute(INBOX.insert().values(
                    item_id=f"wamid.in{i}", kind="message", sender=who, state="done", text=txt, attempts=0,
                    data=json.dumps({"contacts": [{"profile": {"name": "Joana Pereira Lima" if i == 0 else "Carlos"},
                                                   "wa_id": who}]}), received_at=_epoch("2026-03-02T10:00:00")))
                s.execute(OUTBOX.insert().values(
                    source_key=f"wamid.in{i}", idx=0, recipient=who, kind="text", send_state="accepted",
                    body=json.dumps({"type": "text", "text": {"body": "resposta enviada a cliente" if i == 0
                                                              else "resposta do carlos"}}),
                    status="delivered", needs_template=False, attempts=1, created_at=_epoch("2026-03-02T10:00:02"),
                    updated_at=_epoch("2026-03-02T10:00:03")))
                s.execute(LEASES.insert().values(sender=who, owner="host:1:abc", expires_at=1.0, claimed_at=0.5))
                # a number change seen by the connector (the person's numbers on both sides)
                s.execute(ALIASES.insert().values(wa_id=who, conversation=f"{who}0", changed_at=1.0))
                # Meta's 24-hour window for the address (a status's conversation.expiration_timestamp)
                s.execute(WINDOWS.insert().values(recipient=who, expires_at=2.0, updated_at=1.0))
                # what Meta charged for the reply (a status's pricing object), with its conversation
                s.execute(PRICING.insert().values(
                    wamid=f"wamid.out{i}", recipient=who, conversation=f"whatsapp:{who}", billable=True,
                    category="utility", pricing_model="PMP", pricing_type="regular", reason=f"unknown type of {who}",
                    recorded_at=_epoch("2026-03-02T10:00:03")))
        return Ids(joana.id, carlos.id, [t1.id, t2.id], lead.id)


def _dump(exclude: set[str] = frozenset()) -> dict[str, list[str]]:  # type: ignore[assignment]
    """Every row of every table (alembic_version aside), as text, sorted."""
    engine = get_engine()
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name == "alembic_version" or name in exclude:
                continue
            out[name] = sorted(repr(tuple(str(v) for v in row)) for row in conn.execute(sa.text(f"SELECT * FROM {name}")))
    return out


def _traces(needles: list[str]) -> list[tuple[str, str]]:
    found = []
    for table, rows in _dump().items():
        blob = "\n".join(rows).lower()
        found += [(table, n) for n in needles if n.lower() in blob]
    return found


def _rows_of(table: str, where: str, **params: Any) -> list[tuple[Any, ...]]:
    with get_engine().connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} WHERE {where} ORDER BY 1"), params)]


def _carlos_rows(ids: Ids) -> dict[str, Any]:
    return {
        "customer": _rows_of("customers", "id = :i", i=ids.carlos),
        "contacts": _rows_of("contacts", "customer_id = :i", i=ids.carlos),
        "machines": _rows_of("machines", "customer_id = :i", i=ids.carlos),
        "tickets": _rows_of("tickets", "customer_id = :i", i=ids.carlos),
        "lead": _rows_of("tickets", "id = :i", i=ids.lead_ticket),
        "outcomes": _rows_of("conversation_outcomes", "customer_id = :i", i=ids.carlos),
        "queries": _rows_of("knowledge_queries", "conversation_id = :c", c=f"whatsapp:{CARLOS_PHONE}"),
        "events": _rows_of("events", "sender_id = :c", c=f"whatsapp:{CARLOS_PHONE}"),
        "inbox": _rows_of("whatsapp_inbox", "sender = :c", c=CARLOS_PHONE),
        "outbox": _rows_of("whatsapp_outbox", "recipient = :c", c=CARLOS_PHONE),
        "leases": _rows_of("whatsapp_leases", "sender = :c", c=CARLOS_PHONE),
        "pricing": _rows_of("whatsapp_pricing", "recipient = :c", c=CARLOS_PHONE),
    }


def _reports() -> dict[str, Any]:
    period = metrics.Period.from_dates(date(2025, 11, 1), date(2026, 6, 30))
    with session_scope() as s:
        return {
            "totals": metrics.ticket_totals(s, period), "per_day": metrics.tickets_per_day(s, period),
            "per_type": metrics.tickets_per_type(s, period), "per_module": metrics.tickets_per_module(s, period),
            "per_technician": metrics.tickets_per_technician(s, period), "bot": metrics.bot_summary(s, period),
            "ratings": metrics.ratings(s, period),
            "per_customer_counts": sorted(n for _, n in metrics.tickets_per_customer(s, period)),
        }


def _export(selector: str, value: str) -> dict[str, Any]:
    with session_scope() as s:
        doc = privacy.export(s, selector, value, actor="teste")
    return json.loads(privacy.to_json(doc))


# ---- export -------------------------------------------------------------------------------------

def test_export_holds_every_item_from_every_store(db_url: str, foreign_tables: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    ids = _load()
    doc = _export("customer", str(ids.joana))
    blob = json.dumps(doc, ensure_ascii=False)
    for needle in JOANA_NEEDLES:
        assert needle in blob, needle
    assert "carlos" not in blob.lower() and "Marta" not in blob
    assert doc["customer"]["cnpj"] == JOANA_CNPJ and doc["customer"]["tax_regime"] == "mei"
    assert [m["name"] for m in doc["customer"]["machines"]] == ["CAIXA-JOANA"]
    assert doc["customer"]["licenses"][0]["module"] == "fiscal"
    assert [t["id"] for t in doc["tickets"]] == ids.joana_tickets
    assert len(doc["tickets"][0]["events"]) == 3
    assert sorted(o["rating"] for o in doc["conversation_outcomes"]) == [4, 5]
    assert doc["knowledge_queries"][0]["question"] == "como emitir nota na padaria"
    assert set(doc["transcripts"]) == {f"whatsapp:{JOANA_WA}", JOANA_PHONE, "web:sess-joana-1"}
    assert doc["whatsapp_inbox"][0]["text"] == "texto do inbox da cliente"
    assert doc["whatsapp_outbox"][0]["body"]["text"]["body"] == "resposta enviada a cliente"
    assert [(p["wamid"], p["category"]) for p in doc["whatsapp_pricing"]] == [("wamid.out0", "utility")]
    sources = {x["store"]: x for x in doc["sources"]}
    assert sources["events"] == {"store": "events", "present": True, "rows": 4}
    assert sources["tickets"]["rows"] == 2 and sources["whatsapp_outbox"]["rows"] == 1
    assert any("modelo de linguagem" in r and "perguntas" in r for r in doc["recipients"])
    assert doc["purposes"]
    # the same person, found by any of their identifiers
    for selector, value in (("phone", "+55 (11) 98765-4321"), ("phone", JOANA_WA), ("email", JOANA_EMAIL.upper()),
                            ("conversation", "web:sess-joana-1"), ("conversation", JOANA_PHONE)):
        other = _export(selector, value)
        assert other["customer"]["id"] == ids.joana, (selector, value)
        assert [t["id"] for t in other["tickets"]] == ids.joana_tickets
    with session_scope() as s:
        audits = list(s.scalars(sa.select(PrivacyRequest)))
    assert {a.action for a in audits} == {"export"} and len(audits) == 6


def test_export_without_tracker_or_whatsapp_tables_reports_them_absent(db_url: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    ids = _load(with_foreign=False)
    doc = _export("customer", str(ids.joana))
    sources = {x["store"]: x for x in doc["sources"]}
    for store in ("events", "whatsapp_inbox", "whatsapp_outbox", "whatsapp_leases"):
        assert sources[store] == {"store": store, "present": False, "rows": 0}
    assert doc["transcripts"] is None and doc["whatsapp_inbox"] is None and doc["whatsapp_outbox"] is None
    assert len(doc["tickets"]) == 2 and doc["customer"]["contacts"]
    assert any("Nenhum provedor" in r for r in doc["recipients"])
    # erasure works without those tables too
    with session_scope() as s:
        counts = privacy.erase(s, "customer", str(ids.joana))
    assert counts["events"] is None and counts["tickets"] == 2
    assert not _traces(["Joana", JOANA_PHONE, JOANA_EMAIL])


def test_lead_found_by_phone_only(db_url: str, foreign_tables: None) -> None:
    ids = _load()
    doc = _export("phone", LEAD_PHONE)
    assert doc["customer"] is None
    assert doc["leads"] == [{"ticket_id": ids.lead_ticket, "contact_name": "Marta Lead", "contact_phone": LEAD_PHONE,
                             "contact_email": "marta@lead.com.br"}]
    with session_scope() as s:
        privacy.erase(s, "email", "marta@lead.com.br")
    assert not _traces([LEAD_PHONE, "marta@lead.com.br", "Marta"])
    with session_scope() as s:
        lead = s.get(Ticket, ids.lead_ticket)
        assert lead.contact_phone is None and lead.contact_email is None and lead.type == "comercial"


def test_bad_selectors_change_nothing(db_url: str, foreign_tables: None) -> None:
    ids = _load()
    before = _dump()
    with session_scope() as s:
        with pytest.raises(NotFound) as err:
            privacy.erase(s, "customer", str(ids.joana + 100))
        assert "não encontrado" in err.value.message_pt
        with pytest.raises(NotFound):
            privacy.export(s, "phone", "(48) 99999-0000")
        with pytest.raises(NotFound):
            privacy.plan(s, "email", "ninguem@exemplo.com")
        with pytest.raises(InvalidPhone):
            privacy.export(s, "phone", "12ab")
        with pytest.raises(InvalidInput):
            privacy.export(s, "customer", "abc")
        with pytest.raises(InvalidInput):
            privacy.export(s, "email", "sem-arroba")
    assert _dump() == before


# ---- erasure ------------------------------------------------------------------------------------

def test_erase_leaves_no_trace_keeps_reports_and_other_customers(db_url: str, foreign_tables: None) -> None:
    ids = _load()
    reports, carlos = _reports(), _carlos_rows(ids)
    tickets_before = _rows_of("tickets", "1 = 1")
    before = _dump()
    with session_scope() as s:
        assert privacy.plan(s, "phone", JOANA_WA)["events"] == 4
    assert _dump() == before  # the plan changes nothing, not even the audit
    with session_scope() as s:
        counts = privacy.erase(s, "phone", JOANA_WA, actor="dpo@empresa")
    assert counts["tickets"] == 2 and counts["events"] == 4 and counts["whatsapp_inbox"] == 1

    assert _traces(JOANA_NEEDLES) == []
    assert _reports() == reports
    assert _carlos_rows(ids) == carlos
    assert len(_rows_of("tickets", "1 = 1")) == len(tickets_before)
    with session_scope() as s:
        joana = s.get(Customer, ids.joana)
        assert joana.responsible_name == privacy.REMOVED_NAME and not joana.contacts and not joana.machines
        assert len(joana.licenses) == 1  # not personal: kept for the revenue reports
        t1 = s.get(Ticket, ids.joana_tickets[0])
        assert (t1.type, t1.module, t1.status, t1.customer_id) == ("erro", "fiscal", "concluido", ids.joana)
        assert t1.description == privacy.REMOVED_TEXT and t1.contact_name == "" and t1.events[1].data == {}
        outcome_convs = set(s.scalars(sa.select(ConversationOutcome.conversation_id).where(
            ConversationOutcome.customer_id == ids.joana)))
        assert all(c.startswith("apagado:") for c in outcome_convs)
        audit = s.scalars(sa.select(PrivacyRequest).where(PrivacyRequest.action == "erase")).one()
        assert (audit.actor, audit.selector, audit.customer_id) == ("dpo@empresa", "phone", ids.joana)
        assert audit.counts["ticket_events"] == 4
    inbox = _rows_of("whatsapp_inbox", "item_id = 'wamid.in0'")[0]
    assert inbox[3].startswith("apagado:") and inbox[5] is None
    # the cost of her messages stays in the reports, with no number and no conversation of hers
    with get_engine().connect() as conn:
        priced = conn.execute(sa.select(PRICING).where(PRICING.c.wamid == "wamid.out0")).mappings().one()
    assert priced["recipient"].startswith("apagado:") and priced["conversation"].startswith("apagado:")
    assert (priced["category"], priced["pricing_type"], priced["reason"]) == ("utility", "regular", None)
    # nothing left to find: a second erasure or export says so
    with session_scope() as s, pytest.raises(NotFound):
        privacy.export(s, "phone", JOANA_PHONE)


def test_erase_is_all_or_nothing(db_url: str, foreign_tables: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _load()
    before = _dump()

    def boom(*_a: Any) -> None:
        raise RuntimeError("disk full")

    steps = list(privacy.ERASE_STEPS)
    steps.insert(len(steps) - 1, boom)  # after events, WhatsApp, queries and tickets were changed
    monkeypatch.setattr(privacy, "ERASE_STEPS", tuple(steps))
    with pytest.raises(RuntimeError):
        with session_scope() as s:
            privacy.erase(s, "customer", str(ids.joana))
    assert _dump() == before


# ---- migration ----------------------------------------------------------------------------------

def test_privacy_requests_migration_goes_up_and_down(db_url: str) -> None:
    engine = get_engine(db_url)
    assert "privacy_requests" in sa.inspect(engine).get_table_names()
    downgrade(db_url, "0004")
    engine.dispose()
    assert "privacy_requests" not in sa.inspect(get_engine(db_url)).get_table_names()
    upgrade(db_url)
    get_engine(db_url).dispose()
    assert "privacy_requests" in sa.inspect(get_engine(db_url)).get_table_names()


# ---- command line -------------------------------------------------------------------------------

def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=db_url, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OPENAI_API_KEY="")
    return subprocess.run([sys.executable, "-m", "helpdesk", "privacy", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_end_to_end(db_url: str, foreign_tables: None, tmp_path: Path) -> None:
    ids = _load()
    get_engine().dispose()  # release SQLite before the subprocess writes

    out = tmp_path / "joana.json"
    r = _cli(db_url, "export", "--email", JOANA_EMAIL, "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["customer"]["id"] == ids.joana and "mensagem sigilosa da cliente" in out.read_text(encoding="utf-8")

    r = _cli(db_url, "export", "--conversation", "web:sess-joana-1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["customer"]["cnpj"] == JOANA_CNPJ

    before = _dump(exclude={"privacy_requests"})
    r = _cli(db_url, "erase", "--customer", str(ids.joana))
    assert r.returncode == 0, r.stderr
    assert "Simulação" in r.stdout and "--yes" in r.stdout and "chamados" in r.stdout
    assert _dump(exclude={"privacy_requests"}) == before

    missing = tmp_path / "ninguem.json"
    for args, expected in (
        (("export", "--customer", "9999", "--out", str(missing)), "Cliente 9999 não encontrado"),
        (("erase", "--phone", "(48) 99999-0000", "--yes"), "Nenhum dado encontrado"),
        (("export", "--phone", "12ab"), "telefone inválido"),
    ):
        r = _cli(db_url, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert expected in r.stderr, r.stderr
    assert not missing.exists()
    r = _cli(db_url, "export", "--customer", "1", "--phone", JOANA_PHONE)
    assert r.returncode == 2 and "not allowed with" in r.stderr
    assert _dump(exclude={"privacy_requests"}) == before

    r = _cli(db_url, "erase", "--phone", JOANA_PHONE, "--yes", "--actor", "encarregado")
    assert r.returncode == 0, r.stderr
    assert "apagados" in r.stdout
    assert _traces(JOANA_NEEDLES) == []


def test_connector_tables_of_these_tests_are_the_connectors_own() -> None:
    """The erasure writes columns of the bot env's WhatsApp tables (not pinned in atende_contract):
    the tables built here must be the connector's, so a renamed column fails this test."""
    wa_schema = pytest.importorskip("connectors.whatsapp.store.engine")
    for ours, theirs in ((INBOX, wa_schema.inbox), (OUTBOX, wa_schema.outbox), (LEASES, wa_schema.leases),
                         (ALIASES, wa_schema.aliases), (WINDOWS, wa_schema.windows),
                         (PRICING, wa_schema.pricing)):
        assert ours.name == theirs.name
        assert [c.name for c in ours.c] == [c.name for c in theirs.c]
    assert {"sender", "state", "text", "button_id", "data", "reason"} <= set(wa_schema.inbox.c.keys())
    assert {"recipient", "body", "options", "send_state"} <= set(wa_schema.outbox.c.keys())


def test_export_says_who_saw_the_anydesk_codes(db_url: str, foreign_tables: None) -> None:
    from helpdesk.models import Machine
    from helpdesk.services import machine_access, technicians

    ids = _load()
    with session_scope() as s:
        tech = technicians.create(s, name="Rafa Técnico", email="rafa@teste.dev", password="senha-forte-123")
        machine = s.scalar(sa.select(Machine).where(Machine.customer_id == ids.joana))
        machine_access.reveal(s, technician_id=tech.id, machine_id=machine.id)
        tech_id, machine_id = tech.id, machine.id
    doc = _export("customer", str(ids.joana))
    assert [(a["technician_id"], a["machine_id"]) for a in doc["machine_accesses"]] == [(tech_id, machine_id)]
    assert "anydesk_code" not in doc["machine_accesses"][0]
