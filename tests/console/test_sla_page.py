"""The SLA page (managers) through AppTest: policies per priority and tier, the calendar, customers'
tiers; bad input shows its pt-BR error and saves nothing; the queue shows time left or "violado"."""
from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from helpdesk.db import session_scope
from helpdesk.models import Customer, SlaCalendar
from helpdesk.services import sla

from . import dataset
from .apphelpers import goto, login, menu, messages

DAYS = ("seg", "ter", "qua", "qui", "sex", "sab", "dom")


def _sla_page() -> AppTest:
    return goto(login("marta@teste.dev", dataset.PASSWORD), "sla")


def _fill(at: AppTest, tier: str, priority: str, first_h: float, resolution_h: float) -> None:
    at.checkbox(key=f"sla_none_{tier}_{priority}").uncheck()
    at.number_input(key=f"sla_fr_{tier}_{priority}").set_value(first_h)
    at.number_input(key=f"sla_res_{tier}_{priority}").set_value(resolution_h)


def _saved() -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    with session_scope() as s:
        row = s.get(SlaCalendar, 1)
        return sla.policy_rows(s), (None if row is None else dict(row.week))


def test_a_manager_saves_targets_and_the_calendar(data: dataset.Ids) -> None:
    at = _sla_page()
    assert "SLA" in menu(at) and [h.value for h in at.header] == ["SLA"]
    assert any("Nenhuma política" in i.value for i in at.info)
    _fill(at, "", "normal", 1.0, 4.0)
    _fill(at, "", "urgente", 0.25, 2.0)
    at.text_input(key="sla_day_sex").input("08:00-12:00, 13:00-17:00")
    at.button(key="sla_save").click().run()
    assert messages(at, "success") == [
        "Políticas de SLA e calendário salvos. Os prazos dos chamados abertos serão recalculados."]
    policies, week = _saved()
    assert policies == [
        {"tier": "", "priority": "normal", "first_response_minutes": 60, "resolution_minutes": 240},
        {"tier": "", "priority": "urgente", "first_response_minutes": 15, "resolution_minutes": 120}]
    assert week["sex"] == [["08:00", "12:00"], ["13:00", "17:00"]] and week["sab"] == []
    table = next(d.value for d in at.dataframe if "Prioridade" in d.value.columns)
    assert table.to_dict("records")[0] == {"Contrato": "padrão", "Prioridade": "normal", "1ª resposta": "1h",
                                           "Resolução": "4h"}
    holidays = next(d.value for d in at.dataframe if "Feriado" in d.value.columns)
    assert "Tiradentes" in set(holidays["Feriado"])


@pytest.mark.parametrize(("change", "expected"), [
    ({"fr": 0.0}, "A meta de primeira resposta em prioridade normal precisa ser maior que zero."),
    ({"fr": -1.0}, "A meta de primeira resposta em prioridade normal precisa ser maior que zero."),
    ({"res": 0.0}, "A meta de resolução em prioridade normal precisa ser maior que zero."),
    ({"days": ""}, "O calendário precisa de pelo menos um horário de atendimento na semana."),
    ({"days": "8h às 18h"}, "Horário inválido em segunda: \"8h às 18h\". Use início-fim, por exemplo 08:00-18:00."),
    ({"days": "18:00-08:00"}, "Em segunda, o fim (08:00) precisa ser depois do início (18:00)."),
    ({"tz": "Mars/Olympus"}, "Fuso horário desconhecido: Mars/Olympus."),
])
def test_bad_input_says_why_and_saves_nothing(data: dataset.Ids, change: dict[str, Any], expected: str) -> None:
    with session_scope() as s:
        sla.save(s, policies=[{"priority": "alta", "first_response_minutes": 30, "resolution_minutes": 120}],
                 week={d: [["08:00", "18:00"]] for d in DAYS[:5]}, actor="Marta")
    before = _saved()
    at = _sla_page()
    _fill(at, "", "normal", change.get("fr", 1.0), change.get("res", 4.0))
    if "days" in change:
        for d in DAYS:
            at.text_input(key=f"sla_day_{d}").input(change["days"] if d == "seg" else "")
    if "tz" in change:
        at.text_input(key="sla_tz").input(change["tz"])
    at.button(key="sla_save").click().run()
    assert messages(at, "error") == [expected]
    assert _saved() == before
    with session_scope() as s:
        assert s.get(SlaCalendar, 1).version == 1


def test_a_contract_tier_gets_its_own_targets_and_customers_are_put_on_it(data: dataset.Ids) -> None:
    at = _sla_page()
    _fill(at, "", "normal", 2.0, 8.0)
    at.button(key="sla_save").click().run()
    at.selectbox(key="sla_tier").set_value("__new__").run()
    at.text_input(key="sla_new_tier").input("Ouro").run()
    _fill(at, "ouro", "normal", 0.5, 2.0)
    at.button(key="sla_save").click().run()
    policies, _ = _saved()
    assert {(p["tier"], p["priority"], p["first_response_minutes"]) for p in policies} == {
        ("", "normal", 120), ("ouro", "normal", 30)}
    at.selectbox(key="sla_customer").set_value(data.a).run()
    at.text_input(key=f"sla_customer_tier_{data.a}").input("ouro; drop table customers").run()
    at.button(key="sla_customer_save").click().run()
    assert messages(at, "error")[0].startswith("Contrato inválido")
    at.text_input(key=f"sla_customer_tier_{data.a}").input("ouro").run()
    at.button(key="sla_customer_save").click().run()
    assert messages(at, "success") == ["Contrato de Alfa Comércio Ltda: ouro."]
    with session_scope() as s:
        assert s.get(Customer, data.a).tier == "ouro"
        assert sla.load_config(s).targets("ouro", "normal") == sla.Targets(30, 120)


def test_a_technician_cannot_open_the_sla_page(data: dataset.Ids) -> None:
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "sla")
    assert messages(at, "error") == ["Você não tem permissão para acessar esta área. Esta página é só para gestores."]
    assert not at.header and "SLA" not in menu(at)


def test_the_queue_shows_time_left_or_violado(data: dataset.Ids) -> None:
    with session_scope() as s:
        sla.save(s, policies=[{"priority": "normal", "first_response_minutes": 60, "resolution_minutes": 240}],
                 week={d: [["08:00", "18:00"]] for d in DAYS[:5]}, actor="Marta")
    at = login("tiago@teste.dev", dataset.PASSWORD)
    queue = next(d.value for d in at.dataframe if "SLA" in d.value.columns)
    # the data set's open tickets were opened in March 2026: long past their targets
    assert list(queue["SLA"]) == ["violado", "violado"]
    with session_scope() as s:
        sla.save(s, policies=[], week={d: [["08:00", "18:00"]] for d in DAYS[:5]}, actor="Marta")
    at.run()
    queue = next(d.value for d in at.dataframe if "SLA" in d.value.columns)
    assert list(queue["SLA"]) == ["—", "—"]


def test_reports_show_the_share_of_slas_met_and_export_it(data: dataset.Ids) -> None:
    from datetime import date

    from helpdesk.services import metrics as m
    from helpdesk.services import reports, sla_escalation, sla_metrics

    from .apphelpers import metrics

    with session_scope() as s:
        sla.save(s, policies=[{"priority": "normal", "first_response_minutes": 60, "resolution_minutes": 240}],
                 week={d: [["08:00", "18:00"]] for d in DAYS[:5]}, actor="Marta")
        sla_escalation.backfill(s)
    period = m.Period.from_dates(date(2026, 3, 1), date(2026, 3, 10))
    with session_scope() as s:
        expected = sla_metrics.sla_totals(s, period)
        report = reports.build(s, period)
    assert report.sla_total == expected and expected.measured == 7  # t1..t7 (t8 is in February)
    assert expected.resolution_breached >= 2  # t5 still open, t7 never answered
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    at.date_input(key="r_from").set_value(date(2026, 3, 1))
    at.date_input(key="r_to").set_value(date(2026, 3, 10)).run()
    shown = metrics(at)
    assert shown["1ª resposta no prazo"] == ui_pct(expected.pct_first_response)
    assert shown["Resolução no prazo"] == ui_pct(expected.pct_resolution)
    assert shown["Resoluções fora do prazo"] == str(expected.resolution_breached)
    per_tech = next(d.value for d in at.dataframe if "Técnico" in d.value.columns and "resolução no prazo" in d.value.columns)
    assert set(per_tech["Técnico"]) == {"Tiago Técnico", "Bruno Técnico", "sem técnico"}
    tabs = {t.label: t for t in at.tabs if t.label in {"Por técnico", "Por módulo", "Por cliente", "Por dia"}}
    assert [t.dataframe[0].value.columns[0] for t in tabs.values()] == ["Técnico", "Módulo", "Cliente", "Dia"]
    assert tabs["Por técnico"].dataframe[0].value.equals(per_tech)
    csv = reports.to_csv(report)
    assert f"sla;resolucao_violadas;{expected.resolution_breached}" in csv
    assert "sla_primeira_resposta_por_tecnico;Tiago Técnico;" in csv


def ui_pct(value: float | None) -> str:
    from console import ui

    return ui.pct(value)
