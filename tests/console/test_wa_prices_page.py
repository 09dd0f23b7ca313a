"""Preços do WhatsApp (managers) and the reports' "Custo do WhatsApp" section, through AppTest: a
price saves with its pt-BR confirmation; a negative, non-numeric or absurd price says why and saves
nothing; technicians are refused; the report shows the period's messages and their cost per
conversation, from the connector's ``whatsapp_pricing`` (tests/helpdesk/test_wa_cost.py has the
figures on both databases)."""
from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from helpdesk.db import get_engine, session_scope
from helpdesk.models import WhatsAppPrice
from helpdesk.services import wa_cost
from tests.helpdesk.test_privacy import PRICING

from . import dataset
from .apphelpers import goto, login, menu, messages, metrics

PHONE_A = "5511987654321"  # customer A's phone in the data set


def _page(email: str = "marta@teste.dev") -> AppTest:
    return goto(login(email, dataset.PASSWORD), "precos-whatsapp")


def _saved() -> list[tuple[str, Decimal]]:
    with session_scope() as s:
        return [(p.category, Decimal(p.price_brl)) for p in s.scalars(sa.select(WhatsAppPrice).order_by(WhatsAppPrice.id))]


def _table(at: AppTest, column: str) -> Any:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _fill(at: AppTest, category: str, price: str, start: date) -> None:
    at.selectbox(key="wa_price_category").set_value(category)
    at.text_input(key="wa_price_value").input(price)
    at.date_input(key="wa_price_from").set_value(start)
    at.button(key="wa_price_save").click().run()


def test_a_manager_saves_a_price_and_sees_it_in_force(ids: dataset.Ids) -> None:
    at = _page()
    assert "Preços do WhatsApp" in menu(at) and [h.value for h in at.header] == ["Preços do WhatsApp"]
    assert any("Nenhum preço cadastrado" in i.value for i in at.info)
    _fill(at, "utility", "0,04", date(2026, 1, 1))
    assert messages(at, "success") == ["Preço de utilidade salvo: R$ 0,0400 por mensagem a partir de 01/01/2026."]
    assert _saved() == [("utility", Decimal("0.0400"))]
    table = _table(at, "Situação")
    assert table.to_dict("records")[0]["Situação"] == "em vigor"
    assert table.to_dict("records")[0]["Cadastrado por"] == "Marta Gestora"


@pytest.mark.parametrize("price,expected", [
    ("-0,05", "O preço não pode ser negativo."),
    ("abc", "Preço inválido: \"abc\". Use só números, com vírgula nos centavos, por exemplo 0,3125."),
    ("1.000,00", "Preço inválido: \"1.000,00\". Use só números, com vírgula nos centavos, por exemplo 0,3125."),
    ("250", "Preço fora da realidade: R$ 250,00 por mensagem. O máximo aceito é R$ 10,00 (as tarifas da Meta são "
            "centavos por mensagem)."),
    ("", "Informe o preço por mensagem, por exemplo 0,3125."),
    ("0,00001", "Use no máximo 4 casas decimais no preço."),
])
def test_bad_prices_say_why_and_save_nothing(ids: dataset.Ids, price: str, expected: str) -> None:
    at = _page()
    _fill(at, "marketing", price, date(2026, 1, 1))
    assert messages(at, "error") == [expected]
    assert _saved() == []


def test_a_correction_on_the_same_date_replaces_and_a_price_is_removed(ids: dataset.Ids) -> None:
    at = _page()
    _fill(at, "marketing", "3,5", date(2026, 1, 1))
    _fill(at, "marketing", "0,35", date(2026, 1, 1))  # the typo corrected: same category and date
    _fill(at, "utility", "0,04", date(2026, 2, 1))
    assert _saved() == [("marketing", Decimal("0.3500")), ("utility", Decimal("0.0400"))]
    with session_scope() as s:
        utility = next(p.id for p in wa_cost.prices(s) if p.category == "utility")
    at.selectbox(key="wa_price_remove_choice").set_value(utility)
    at.button(key="wa_price_remove").click().run()
    assert messages(at, "success") == ["Preço removido."]
    assert _saved() == [("marketing", Decimal("0.3500"))]


def test_a_technician_is_refused(ids: dataset.Ids) -> None:
    at = _page("tiago@teste.dev")
    assert messages(at, "error") == ["Você não tem permissão para acessar esta área. Esta página é só para gestores."]
    assert not at.text_input


@pytest.fixture()
def pricing_rows(ids: dataset.Ids) -> Iterator[None]:
    """Two priced messages to customer A yesterday, one free, in the connector's table."""
    engine = get_engine()
    PRICING.create(engine)
    at = time.time() - 86400
    with engine.begin() as c:
        for wamid, billable, cat, ptype in (("w1", True, "utility", "regular"), ("w2", None, "marketing", "regular"),
                                            ("w3", False, "service", "free_customer_service")):
            c.execute(PRICING.insert().values(wamid=wamid, recipient=PHONE_A, conversation=f"whatsapp:{PHONE_A}",
                                              billable=billable, category=cat, pricing_model="PMP",
                                              pricing_type=ptype, recorded_at=at))
    try:
        yield
    finally:
        PRICING.drop(engine)


def test_the_report_shows_cost_per_conversation(ids: dataset.Ids, pricing_rows: None) -> None:
    with session_scope() as s:
        for cat, price in (("utility", "0,04"), ("marketing", "0,35")):
            wa_cost.set_price(s, category=cat, price=price, valid_from=date(2026, 1, 1), technician_id=ids.manager)
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    assert "Custo do WhatsApp" in [h.value for h in at.subheader]
    shown = metrics(at)
    assert shown["Custo estimado"] == "R$ 0,39" and shown["Mensagens enviadas"] == "3"
    table = _table(at, "Conversa").to_dict("records")
    assert table == [{"Conversa": f"whatsapp:{PHONE_A}", "Cliente": "Alfa Comércio Ltda", "Chamados": "—",
                      "Mensagens": 3, "Cobradas": 2, "Gratuitas": 1, "Sem preço": 0, "Custo estimado": "R$ 0,39"}]
    assert not at.warning
    # one tab a breakdown, each holding its own table (first column named by the breakdown)
    tabs = {t.label: t for t in at.tabs if t.label in {"Por conversa", "Por cliente", "Por categoria", "Por dia"}}
    assert [t.dataframe[0].value.columns[0] for t in tabs.values()] == ["Conversa", "Cliente", "Categoria", "Dia"]
    assert tabs["Por conversa"].dataframe[0].value.to_dict("records") == table


def test_the_report_warns_of_charged_messages_without_a_price(ids: dataset.Ids, pricing_rows: None) -> None:
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    assert metrics(at)["Custo estimado"] == "R$ 0,00"
    assert messages(at, "warning") == ["Mensagens cobradas sem preço cadastrado (não entram no custo): marketing, "
                                       "utilidade. Cadastre o preço em Preços do WhatsApp."]


def test_the_report_without_the_connector_table_says_so(ids: dataset.Ids) -> None:
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    assert any("Sem dados de custo do WhatsApp" in c.value for c in at.caption)
