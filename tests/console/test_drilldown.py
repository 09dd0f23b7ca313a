"""Relatórios drill-down: the rows behind every figure, their count equal to the figure, exports,
one row opened with its transcript, an empty period, bad figures (issue #16 item 3)."""
from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from helpdesk.db import session_scope
from helpdesk.errors import InvalidInput
from helpdesk.models import Ticket
from helpdesk.services import drilldown, metrics, reports
from helpdesk.services.drilldown import Figure

from . import dataset
from .apphelpers import current_path, goto, login, messages, metrics as shown_metrics, texts

PERIOD = metrics.Period.from_dates(date(2026, 3, 1), date(2026, 3, 10))


def test_every_figure_drills_down_to_exactly_its_count(data: dataset.Ids) -> None:
    with session_scope() as s:
        report = reports.build(s, PERIOD)
        figures = drilldown.drillable(report)
        kinds = {f.kind for f, _label, _count in figures}
        assert kinds == set(drilldown.TICKET_KINDS) | set(drilldown.CONVERSATION_KINDS)
        for figure, label, count in figures:
            d = drilldown.drill(s, PERIOD, figure)
            assert (d.total, len(d.rows)) == (count, count), label
    # spot checks against the hand-built data set
    by_label = {label: count for _f, label, count in figures}
    assert by_label["Chamados no período"] == 7 and by_label["Chamados do cliente Alfa Comércio Ltda"] == 3
    assert by_label["Conversas com resolução verificada"] == 1 and by_label["Conversas com nota 5"] == 1
    gaps = {f.value.strip().lower(): count for f, _label, count in figures if f.kind == "lacuna"}
    assert gaps == {"como emitir mdf-e?": 2, "tem app para ipad?": 1}  # case and spaces folded


def test_rows_are_the_ones_behind_the_figure(data: dataset.Ids) -> None:
    t = data.tickets
    with session_scope() as s:
        alfa = drilldown.drill(s, PERIOD, Figure("cliente", "Alfa Comércio Ltda"))
        day = drilldown.drill(s, PERIOD, Figure("dia", date(2026, 3, 2)))
        no_module = drilldown.drill(s, PERIOD, Figure("modulo", metrics.NO_MODULE))
        open_ = drilldown.drill(s, PERIOD, Figure("em_aberto"))
        durable = drilldown.drill(s, PERIOD, Figure("duraveis"))
        gap = drilldown.drill(s, PERIOD, Figure("lacuna", "Como emitir MDF-e?"))
    assert [r.ticket_id for r in alfa.rows] == [t["t1"], t["t2"], t["t4"]]
    assert [r.ticket_id for r in day.rows] == [t["t1"], t["t2"], t["t3"]]
    assert [r.ticket_id for r in no_module.rows] == [t["t7"]]
    assert [r.ticket_id for r in open_.rows] == [t["t5"], t["t7"]]
    assert [r.conversation_id for r in durable.rows] == ["conv-o1"]
    assert [r.columns["Pergunta"] for r in gap.rows] == ["Como emitir MDF-e?", "  como emitir mdf-e? "]
    assert gap.unique_contacts is None  # questions carry no contact


def test_unique_contacts_and_conversations_next_to_ticket_counts(data: dataset.Ids) -> None:
    with session_scope() as s:
        # 7 tickets: customers Alfa, Beta, Gama and one lead; 6 of them came from a conversation
        assert drilldown.ticket_reach(s, PERIOD) == (4, 6) == reports.build(s, PERIOD).reach
        alfa = drilldown.drill(s, PERIOD, Figure("cliente", "Alfa Comércio Ltda"))
        assert (alfa.total, alfa.unique_contacts, alfa.unique_conversations) == (3, 1, 3)


def test_an_empty_period_has_no_rows(data: dataset.Ids) -> None:
    empty = metrics.Period.from_dates(date(2025, 1, 1), date(2025, 1, 31))
    with session_scope() as s:
        for figure, _label, count in drilldown.drillable(reports.build(s, empty)):
            assert count == 0 and drilldown.drill(s, empty, figure).total == 0


@pytest.mark.parametrize("figure", [Figure("inexistente"), Figure("avaliacao", "5; DROP TABLE tickets"),
                                    Figure("avaliacao", 9), Figure("dia", "2026-03-02"), Figure("cliente", ""),
                                    Figure("tipo", None)])
def test_a_bad_figure_is_refused(data: dataset.Ids, figure: Figure) -> None:
    with session_scope() as s, pytest.raises(InvalidInput):
        drilldown.drill(s, PERIOD, figure)
    with session_scope() as s:
        assert s.query(Ticket).count() == 8  # nothing changed


def test_the_report_csv_has_unique_contacts_and_conversations(data: dataset.Ids) -> None:
    with session_scope() as s:
        lines = reports.to_csv(reports.build(s, PERIOD)).splitlines()
    assert lines[3:6] == ["resumo;total_chamados;7", "resumo;contatos_unicos;4", "resumo;conversas_unicas;6"]


def test_exports_neutralise_cells_and_carry_full_transcripts(data: dataset.Ids) -> None:
    tid = data.tickets["t1"]
    with session_scope() as s:
        s.get(Ticket, tid).subject = "=HYPERLINK(\"http://mal.example\")"
    with session_scope() as s:
        rows = drilldown.drill(s, PERIOD, Figure("dia", date(2026, 3, 2))).rows
        exported = json.loads(drilldown.json_export(s, rows))
    cells = list(csv.reader(io.StringIO(drilldown.csv(rows)), delimiter=";"))
    assert cells[0][:3] == ["Nº", "Aberto em", "Status"] and len(cells) == 4
    assert cells[1][cells[0].index("Assunto")] == "'=HYPERLINK(\"http://mal.example\")"
    assert [e["Nº"] for e in exported] == [f"#{data.tickets[k]}" for k in ("t1", "t2", "t3")]
    assert exported[0]["transcricao"][0] == {"em": "2026-03-02T09:00:00", "origem": "chamado", "autor": "bot",
                                             "tipo": "created", "texto": "Descrição t1"}


def test_reports_page_opens_the_rows_behind_a_figure_and_one_transcript(ids: dataset.Ids) -> None:
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    at.date_input(key="r_from").set_value(date(2026, 3, 1))
    at.date_input(key="r_to").set_value(date(2026, 3, 10)).run()
    assert any("4 contatos únicos · 6 conversas únicas" in str(m.delta) for m in at.metric)
    at.selectbox(key="r_drill").set_value("cliente|Alfa Comércio Ltda").run()
    assert shown_metrics(at)["Chamados"] == "3" and shown_metrics(at)["Contatos únicos"] == "1"
    table = next(d.value for d in at.dataframe if "Assunto" in d.value.columns)
    assert list(table["Nº"]) == [f"#{ids.tickets[k]}" for k in ("t1", "t2", "t4")]
    at.selectbox(key="r_drill_open").set_value(str(ids.tickets["t2"])).run()
    assert any("chamado aberto: Descrição t2" in t for t in texts(at))
    at.button(key="r_drill_ticket").click().run()
    assert current_path(at) == "chamado" and at.subheader[0].value == f"#{ids.tickets['t2']} · Assunto t2"


def test_reports_page_says_when_a_figure_has_nothing_in_the_period(ids: dataset.Ids) -> None:
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "relatorios")
    at.date_input(key="r_from").set_value(date(2026, 3, 1))
    at.date_input(key="r_to").set_value(date(2026, 3, 10)).run()
    at.selectbox(key="r_drill").set_value("duraveis").run()
    assert shown_metrics(at)["Conversas"] == "1"
    at.date_input(key="r_from").set_value(date(2025, 1, 1))
    at.date_input(key="r_to").set_value(date(2025, 1, 31)).run()
    assert "Nenhum(a) conversa neste recorte no período." in messages(at, "info")
