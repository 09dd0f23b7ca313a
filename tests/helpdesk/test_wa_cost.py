"""WhatsApp cost (issue #15 item 4), app env, on SQLite and PostgreSQL: the managers' prices per
Meta pricing category (validated: negative, non-numeric, absurd refused with a pt-BR message,
nothing written) and the cost of the period's messages from the connector's ``whatsapp_pricing``
(the connector's own columns: tests/helpdesk/test_privacy.py pins them), priced by ``valid_from``
at each message's time, per day, category, customer and conversation; and in the report and its CSV.

Hand-computed for 2026-05-01 .. 2026-06-30 (prices: utility R$ 0,04 from 01/01, R$ 0,05 from
01/06; marketing R$ 0,35 from 01/01; no authentication price):
  w1 Joana's phone (WhatsApp form without the ninth digit), utility, 31/05 23:59 → R$ 0,04
  w2 same conversation, utility, 01/06 00:00:01 → R$ 0,05 (the new price)
  w3 same conversation, service, free_customer_service → free
  w4 Joana's BSUID only (username), marketing, regular, no billable → R$ 0,35
  w5 Carlos, authentication, CBP billable → charged, no price: unpriced
  w6 a lead's number (no customer; a ticket of that conversation), utility → R$ 0,05
  w7 outside the period (01/07) → not counted
  w8 the lead's number, an unknown category, nothing said about billing → unknown
Total 7 messages, 5 charged, 1 free, 1 unknown, 1 unpriced; R$ 0,49.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Iterator

import pytest
import sqlalchemy as sa

from helpdesk.db import get_engine, session_scope
from helpdesk.errors import InvalidInput, NotFound, PermissionDenied
from helpdesk.models import Ticket, WhatsAppPrice
from helpdesk.services import customers, reports, technicians, wa_cost
from helpdesk.services.metrics import Period
from tests.helpdesk.test_privacy import PRICING

JOANA_WA = "551187654321"
JOANA_BSUID = "BR.13491208655302741918"
CARLOS = "5531988887777"
LEAD = "5521999887766"
PERIOD = Period.from_dates(date(2026, 5, 1), date(2026, 6, 30))


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


@pytest.fixture()
def pricing_table(db_url: str) -> Iterator[None]:
    """The bot env's table, as the connector creates it, in the migrated database."""
    engine = get_engine()
    PRICING.create(engine)
    try:
        yield
    finally:
        PRICING.drop(engine)


@pytest.fixture()
def people(db_url: str) -> dict[str, int]:
    with session_scope() as s:
        marta = technicians.create(s, name="Marta Gestora", email="marta@teste.dev", password="senha-forte-123",
                                   role="manager")
        rafa = technicians.create(s, name="Rafa Técnico", email="rafa@teste.dev", password="senha-forte-123")
        joana = customers.create(s, responsible_name="Joana Pereira", legal_name="Doces da Joana Ltda",
                                 cnpj="04252011000110", tax_regime="mei", phones=["(11) 98765-4321"])
        customers.link_whatsapp_id(s, joana.id, "bsuid", JOANA_BSUID)
        carlos = customers.create(s, responsible_name="Carlos Souza", legal_name="Souza Materiais ME",
                                  cnpj="11222333000181", tax_regime="simples_nacional", phones=["(31) 98888-7777"])
        t1 = Ticket(customer_id=joana.id, channel="whatsapp", type="erro", conversation_id=f"whatsapp:{JOANA_WA}",
                    subject="impressora")
        t2 = Ticket(channel="whatsapp", type="comercial", conversation_id=f"whatsapp:{LEAD}", subject="preço")
        s.add_all([t1, t2])
        s.flush()
        return {"marta": marta.id, "rafa": rafa.id, "joana": joana.id, "carlos": carlos.id, "t1": t1.id,
                "t2": t2.id}


def _prices(manager: int) -> None:
    with session_scope() as s:
        for cat, price, start in (("utility", "0,04", date(2026, 1, 1)), ("utility", "0,05", date(2026, 6, 1)),
                                  ("marketing", "R$ 0,35", date(2026, 1, 1))):
            wa_cost.set_price(s, category=cat, price=price, valid_from=start, technician_id=manager)


def _messages() -> None:
    rows = [
        ("w1", JOANA_WA, f"whatsapp:{JOANA_WA}", True, "utility", "PMP", "regular", "2026-05-31T23:59:00"),
        ("w2", JOANA_WA, f"whatsapp:{JOANA_WA}", True, "utility", "PMP", "regular", "2026-06-01T00:00:01"),
        ("w3", JOANA_WA, f"whatsapp:{JOANA_WA}", False, "service", "PMP", "free_customer_service",
         "2026-06-02T10:00:00"),
        ("w4", JOANA_BSUID, f"whatsapp:{JOANA_BSUID}", None, "marketing", "PMP", "regular", "2026-06-03T10:00:00"),
        ("w5", CARLOS, f"whatsapp:{CARLOS}", True, "authentication", "CBP", None, "2026-06-03T11:00:00"),
        ("w6", LEAD, f"whatsapp:{LEAD}", True, "utility", "PMP", "regular", "2026-06-04T09:00:00"),
        ("w7", LEAD, f"whatsapp:{LEAD}", True, "utility", "PMP", "regular", "2026-07-01T00:00:00"),
        ("w8", LEAD, f"whatsapp:{LEAD}", None, "premium_ai", "PMP", None, "2026-06-05T09:00:00"),
    ]
    with get_engine().begin() as c:
        for wamid, rcp, conv, billable, cat, model, ptype, at in rows:
            c.execute(PRICING.insert().values(wamid=wamid, recipient=rcp, conversation=conv, billable=billable,
                                              category=cat, pricing_model=model, pricing_type=ptype,
                                              reason="unknown category 'premium_ai'" if wamid == "w8" else None,
                                              recorded_at=_at(at)))


def _line(lines: list[wa_cost.CostLine], label: object) -> wa_cost.CostLine:
    return next(x for x in lines if x.label == label)


def test_cost_per_period_day_category_customer_and_conversation(people: dict[str, int], pricing_table: None) -> None:
    _prices(people["marta"])
    _messages()
    with session_scope() as s:
        c = wa_cost.cost(s, PERIOD)
    assert c.available
    t = c.total
    assert (t.messages, t.charged, t.free, t.unknown, t.unpriced, t.cost_brl) == (7, 5, 1, 1, 1, Decimal("0.49"))
    assert [(x.label, x.messages, x.cost_brl) for x in c.per_day] == [
        (date(2026, 5, 31), 1, Decimal("0.04")), (date(2026, 6, 1), 1, Decimal("0.05")),
        (date(2026, 6, 2), 1, Decimal("0")), (date(2026, 6, 3), 2, Decimal("0.35")),
        (date(2026, 6, 4), 1, Decimal("0.05")), (date(2026, 6, 5), 1, Decimal("0"))]
    assert [(x.label, x.messages, x.charged, x.cost_brl) for x in c.per_category] == [
        ("marketing", 1, 1, Decimal("0.35")), ("utility", 3, 3, Decimal("0.14")),
        ("authentication", 1, 1, Decimal("0")), ("service", 1, 0, Decimal("0")), ("premium_ai", 1, 0, Decimal("0"))]
    assert _line(c.per_category, "authentication").unpriced == 1
    assert c.unpriced_categories == ["autenticação"]
    # the BSUID-only message is Joana's (her linked BSUID); the lead has no customer
    assert [(x.label, x.messages, x.cost_brl) for x in c.per_customer] == [
        ("Doces da Joana Ltda", 4, Decimal("0.44")), ("sem cadastro", 2, Decimal("0.05")),
        ("Souza Materiais ME", 1, Decimal("0"))]
    joana = _line(c.per_conversation, f"whatsapp:{JOANA_WA}")
    assert (joana.messages, joana.cost_brl, joana.customer, joana.tickets) == (
        3, Decimal("0.09"), "Doces da Joana Ltda", [people["t1"]])
    lead = _line(c.per_conversation, f"whatsapp:{LEAD}")
    assert (lead.messages, lead.cost_brl, lead.customer, lead.tickets) == (2, Decimal("0.05"), "sem cadastro",
                                                                          [people["t2"]])
    table = wa_cost.as_table(c.per_conversation, "Conversa")
    assert table[0] == {"Conversa": f"whatsapp:{JOANA_BSUID}", "Cliente": "Doces da Joana Ltda", "Chamados": "—",
                        "Mensagens": 1, "Cobradas": 1, "Gratuitas": 0, "Sem preço": 0,
                        "Custo estimado": "R$ 0,35"}


def test_the_report_and_its_csv_carry_the_cost(people: dict[str, int], pricing_table: None) -> None:
    _prices(people["marta"])
    _messages()
    with session_scope() as s:
        r = reports.build(s, PERIOD)
    assert r.wa_cost.total.cost_brl == Decimal("0.49")
    url = str(get_engine().url.render_as_string(hide_password=False))
    assert reports.build_concurrently(PERIOD, url).wa_cost.total.messages == 7
    csv = reports.to_csv(r)
    assert "whatsapp_custo;custo_estimado_brl;0.49" in csv
    assert "whatsapp_custo;mensagens;7" in csv
    assert f"whatsapp_custo_por_conversa;whatsapp:{JOANA_WA};0.09" in csv
    assert "whatsapp_custo_por_categoria;utility;0.14" in csv
    assert "whatsapp_custo_por_cliente;Doces da Joana Ltda;0.44" in csv


def test_without_the_connector_table_the_cost_is_unavailable(people: dict[str, int]) -> None:
    with session_scope() as s:
        c = wa_cost.cost(s, PERIOD)
        assert not c.available and c.total.messages == 0
        assert not reports.build(s, PERIOD).wa_cost.available


@pytest.mark.parametrize("raw,expected", [
    ("0,3125", Decimal("0.3125")), ("0.35", Decimal("0.3500")), ("R$ 0,05", Decimal("0.0500")),
    (" 1 ", Decimal("1.0000")), ("0", Decimal("0.0000")), ("10", Decimal("10.0000")), (Decimal("0.2"), Decimal("0.2000")),
])
def test_prices_are_read_as_typed_in_brazil(raw: object, expected: Decimal) -> None:
    assert wa_cost.parse_price(raw) == expected


@pytest.mark.parametrize("raw,message", [
    ("-0,10", "O preço não pode ser negativo."),
    ("abc", "Preço inválido: \"abc\". Use só números, com vírgula nos centavos, por exemplo 0,3125."),
    ("1e3", "Preço inválido: \"1e3\""),
    ("NaN", "Preço inválido: \"NaN\""),
    ("0,1,2", "Preço inválido"),
    ("", "Informe o preço por mensagem"),
    ("0,12345", "Use no máximo 4 casas decimais no preço."),
    ("10,01", "Preço fora da realidade: R$ 10,01 por mensagem. O máximo aceito é R$ 10,00"),
    ("9" * 40, "Preço inválido"),
    (float("inf"), "Preço inválido"),
    (True, "Preço inválido."),
    (None, "Preço inválido."),
])
def test_bad_prices_are_refused_with_a_clear_message(raw: object, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        wa_cost.parse_price(raw)
    assert message in err.value.message_pt


def test_setting_prices_validates_everything_and_writes_nothing_on_error(people: dict[str, int]) -> None:
    bad = [
        ({"category": "promo"}, "Categoria de preço do WhatsApp desconhecida."),
        ({"price": "-1"}, "O preço não pode ser negativo."),
        ({"price": "500"}, "Preço fora da realidade"),
        ({"valid_from": date(2019, 1, 1)}, "Data muito antiga: 01/01/2019"),
        ({"valid_from": date(2099, 1, 1)}, "Data muito distante: 01/01/2099"),
        ({"valid_from": "2026-01-01"}, "Informe a data"),
    ]
    for change, message in bad:
        args = {"category": "utility", "price": "0,04", "valid_from": date(2026, 1, 1), **change}
        with pytest.raises(InvalidInput) as err, session_scope() as s:
            wa_cost.set_price(s, technician_id=people["marta"], **args)
        assert message in err.value.message_pt
    with pytest.raises(PermissionDenied), session_scope() as s:  # a technician cannot set prices
        wa_cost.set_price(s, category="utility", price="0,04", valid_from=date(2026, 1, 1),
                          technician_id=people["rafa"])
    with session_scope() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WhatsAppPrice)) == 0


def test_the_same_date_replaces_and_a_price_can_be_removed(people: dict[str, int]) -> None:
    with session_scope() as s:
        wa_cost.set_price(s, category="utility", price="0,4", valid_from=date(2026, 1, 1),
                          technician_id=people["marta"])
        fixed = wa_cost.set_price(s, category="utility", price="0,04", valid_from=date(2026, 1, 1),
                                  technician_id=people["marta"])
        wa_cost.set_price(s, category="marketing", price="0,35", valid_from=date(2026, 1, 1),
                          technician_id=people["marta"])
    with session_scope() as s:
        rows = wa_cost.prices(s)
        assert [(r.category, r.price_brl, r.valid_from, r.created_by) for r in rows] == [
            ("marketing", Decimal("0.3500"), date(2026, 1, 1), "Marta Gestora"),
            ("utility", Decimal("0.0400"), date(2026, 1, 1), "Marta Gestora")]
        book = wa_cost.PriceBook.load(s)
        assert book.price_at("utility", _at("2025-12-31T23:59:59")) is None  # before any price
        assert book.price_at("utility", _at("2026-01-01T00:00:00")) == Decimal("0.04")
        assert book.price_at("authentication", _at("2026-06-01T00:00:00")) is None
    with session_scope() as s:
        wa_cost.delete_price(s, fixed.id, technician_id=people["marta"])
    with session_scope() as s:
        assert [r.category for r in wa_cost.prices(s)] == ["marketing"]
        with pytest.raises(NotFound):
            wa_cost.delete_price(s, fixed.id, technician_id=people["marta"])
        with pytest.raises(PermissionDenied):
            wa_cost.delete_price(s, wa_cost.prices(s)[0].id, technician_id=people["rafa"])


def test_brl_format() -> None:
    assert wa_cost.brl(Decimal("1234.5")) == "R$ 1.234,50"
    assert wa_cost.brl(Decimal("0.3125"), 4) == "R$ 0,3125"
    assert wa_cost.brl(None) == "—"
