"""A small fixed data set for the console tests; the report figures on it are computed by hand.

Period under test: 2026-03-01 .. 2026-03-10 (inclusive).

Tickets (opened, customer, type, module, technician, hours to resolve or open):
  t1 03-02 09:00  A  erro     pdv     Tiago   2 h
  t2 03-02 10:00  A  erro     pdv     Tiago   4 h
  t3 03-02 11:00  B  duvida   gestor  Bruno   1 h
  t4 03-03 09:00  A  duvida   gestor  Tiago  10 h
  t5 03-03 14:00  C  erro     tef     Bruno   open (em atendimento)
  t6 03-05 08:00  B  erro     gestor  Tiago   3 h
  t7 03-05 09:00  -  comercial -      -       open (novo), no customer
  t8 02-20 09:00  C  erro     tef     Bruno  100 h  (outside the period)
Hand-computed for the period: total 7, resolved 5, open 2; resolution hours 2, 4, 1, 10, 3 → mean
4.0, median 3.0; per day 03-02: 3, 03-03: 2, 03-05: 2; top customer A (3); top type erro (4);
most problematic module pdv (2 errors; gestor has more tickets, 3, but 1 error); highest load
Tiago (4), then Bruno (2, 1 open).

Conversations (started in the period unless said):
  o1 resolved by bot, no hand-off, answered from docs, product offered, rating 5
  o2 resolved_by_bot flag set BUT handed off (must not count as resolved), rating 2
  o3 handed off, product offered (offer with a human: not counted), no rating
  o4 not resolved, no hand-off, product offered, rating 4
  o5 02-15, resolved by bot (outside the period)
→ 4 conversations, 1 resolved by the bot (25%), 2 handed off, 2 offers without a human,
  3 ratings averaging 11/3, distribution 1:0 2:1 3:0 4:1 5:1.
Questions: 2 answered, 3 not ("Como emitir MDF-e?" twice, spelled differently; "Tem app para
iPad?" once) + 1 unanswered outside the period → 5 questions, 40% answered from the docs; gaps
MDF-e ×2, iPad ×1.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from helpdesk.models import ConversationOutcome, KnowledgeQuery, Module, Product, Ticket, TicketEvent
from helpdesk.services import customers, technicians

PASSWORD = "senha-segura-1"
CNPJ_A = "11222333000181"
CNPJ_B = "11444777000161"
CNPJ_C = "45723174000110"


@dataclass
class Ids:
    manager: int
    tiago: int
    bruno: int
    a: int
    b: int
    c: int
    tickets: dict[str, int]


def _at(day: str, hour: int) -> datetime:
    return datetime.fromisoformat(f"2026-{day}T{hour:02d}:00:00")


def build(s: Session) -> Ids:
    erp = Product(code="erp", name="ERP Atende", description="ERP", audience="varejo")
    s.add(erp)
    for code, name in (("gestor", "Gestor"), ("pdv", "PDV"), ("tef", "TEF")):
        s.add(Module(product=erp, code=code, name=name, description="", synonyms=[]))
    s.flush()
    manager = technicians.create(s, name="Marta Gestora", email="marta@teste.dev", password=PASSWORD, role="manager", level=3)
    tiago = technicians.create(s, name="Tiago Técnico", email="tiago@teste.dev", password=PASSWORD)
    bruno = technicians.create(s, name="Bruno Técnico", email="bruno@teste.dev", password=PASSWORD, level=2)
    a = customers.create(s, responsible_name="Ana Lima", legal_name="Alfa Comércio Ltda", cnpj=CNPJ_A,
                         tax_regime="simples_nacional", phones=["+55 (11) 98765-4321"], emails=["ana@alfa.com.br"],
                         licenses=[customers.LicenseSpec(module="pdv", seats=3, version="5.12.1"),
                                   customers.LicenseSpec(module="gestor", version="5.12.1")],
                         machines=[customers.MachineSpec(name="CAIXA-01", anydesk_code="123456789", notes="PDV")])
    b = customers.create(s, responsible_name="Beto Reis", legal_name="Beta Serviços Ltda", cnpj=CNPJ_B,
                         tax_regime="lucro_presumido", phones=["(21) 99876-5432"])
    c = customers.create(s, responsible_name="Caio Dias", legal_name="Gama Indústria S.A.", cnpj=CNPJ_C,
                         tax_regime="lucro_real")
    spec = [
        ("t1", "03-02", 9, a.id, "erro", "pdv", tiago.id, 2.0, "whatsapp", "5511987654321"),
        ("t2", "03-02", 10, a.id, "erro", "pdv", tiago.id, 4.0, "web", "web-sess-a2"),
        ("t3", "03-02", 11, b.id, "duvida", "gestor", bruno.id, 1.0, "phone", None),
        ("t4", "03-03", 9, a.id, "duvida", "gestor", tiago.id, 10.0, "web", "web-sess-a4"),
        ("t5", "03-03", 14, c.id, "erro", "tef", bruno.id, None, "web", "web-sess-c5"),
        ("t6", "03-05", 8, b.id, "erro", "gestor", tiago.id, 3.0, "whatsapp", "5521998765432"),
        ("t7", "03-05", 9, None, "comercial", None, None, None, "web", "web-sess-lead"),
        ("t8", "02-20", 9, c.id, "erro", "tef", bruno.id, 100.0, "phone", None),
    ]
    ids: dict[str, int] = {}
    for key, day, hour, cust, ttype, module, tech, hours, channel, conv in spec:
        opened = _at(day, hour)
        status = "concluido" if hours is not None else ("em_atendimento" if tech else "novo")
        t = Ticket(customer_id=cust, channel=channel, type=ttype, module=module, status=status, priority="normal",
                   technician_id=tech, conversation_id=conv, subject=f"Assunto {key}", description=f"Descrição {key}",
                   opened_at=opened, updated_at=opened,
                   first_response_at=opened + timedelta(minutes=10) if tech else None,
                   resolved_at=opened + timedelta(hours=hours) if hours is not None else None,
                   solution="Resolvido." if hours is not None else "")
        t.events = [TicketEvent(actor="bot", kind="created", text=f"Descrição {key}", at=opened, data={})]
        s.add(t)
        s.flush()
        ids[key] = t.id
    outcomes = [
        ("o1", "03-04", True, False, True, True, 5),
        ("o2", "03-04", True, True, False, False, 2),
        ("o3", "03-06", False, True, True, True, None),
        ("o4", "03-08", False, False, False, True, 4),
        ("o5", "02-15", True, False, True, False, 5),
    ]
    for key, day, resolved, handed, answered, offered, rating in outcomes:
        at = _at(day, 12)
        s.add(ConversationOutcome(conversation_id=f"conv-{key}", channel="web", started_at=at, updated_at=at,
                                  resolved_by_bot=resolved, handed_off=handed, answered_from_docs=answered,
                                  product_offered=offered, rating=rating))
    for day, question, answered in (("03-02", "Como cadastrar produto?", True), ("03-03", "Como fechar o caixa?", True),
                                    ("03-04", "Como emitir MDF-e?", False), ("03-07", "  como emitir mdf-e? ", False),
                                    ("03-09", "Tem app para iPad?", False), ("02-10", "Como emitir MDF-e?", False)):
        s.add(KnowledgeQuery(conversation_id=None, question=question, answered=answered, grounded=answered,
                             at=_at(day, 15)))
    s.flush()
    return Ids(manager.id, tiago.id, bruno.id, a.id, b.id, c.id, ids)
