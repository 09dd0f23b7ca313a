"""Console-facing services: CSV import, transcripts, WhatsApp failures, replies and closing through Rasa."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from typing import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from helpdesk.db import get_engine, session_scope
from helpdesk.errors import IllegalTransition, InvalidInput
from helpdesk.models import Contact, Customer, Ticket, TicketEvent
from helpdesk.services import customer_import, handoff, transcripts
from helpdesk.services.rasa_client import RasaClient, RasaUnavailable

from . import dataset
from .conftest import RasaRecorder, bearer_claims

HEADER = "responsavel;razao_social;nome_fantasia;cnpj;regime_tributario;telefones;emails;modulos;maquinas;cidade;uf\n"


def _count(model: type) -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_csv_import_reports_broken_rows_and_writes_none_of_them(data: dataset.Ids) -> None:
    rows = [
        "Dora Nunes;Delta Mercado Ltda;Delta;04.252.011/0001-10;Simples Nacional;(11) 91234-5678;dora@delta.com.br;pdv|tef;CAIXA:111222333;São Paulo;sp",
        "Eva Prado;Épsilon ME;;04.252.011/0001-11;MEI;(11) 95555-4444;;;;;",  # bad check digits
        "Fábio Luz;Zeta Ltda;;33.000.167/0001-01;lucro real;123;;;;;",  # bad phone
        "Gil Sá;Eta Ltda;;60.746.948/0001-12;simples;(31) 93333-2222;;xyz;;;",  # unknown module
        "Hugo Paz;Teta Ltda;;04.252.011/0001-10;simples;(41) 97777-1111;;;;;",  # CNPJ repeated from line 2
        "Ivo Reis;Iota Ltda;;33.000.167/0001-01;regime novo;(51) 98888-0000;;;;;",  # unknown regime
        "Juca;Kappa Ltda;;33.000.167/0001-01",  # too few columns
        "Lia Mota;Lambda Ltda;;33.000.167/0001-01;Lucro Presumido;+55 51 98888-0001;lia@lambda.com.br;gestor;;Porto Alegre;RS",
    ]
    customers_before, contacts_before = _count(Customer), _count(Contact)
    with session_scope() as s:
        report = customer_import.import_csv(s, (HEADER + "\n".join(rows) + "\n").encode("utf-8"))
    assert [name for _line, _id, name in report.created] == ["Delta Mercado Ltda", "Lambda Ltda"]
    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8]
    assert "CNPJ inválido" in reasons[3]
    assert "telefone inválido" in reasons[4].lower()
    assert "Módulo desconhecido: xyz" in reasons[5]
    assert "CNPJ" in reasons[6] and "Já existe" in reasons[6]
    assert "Regime tributário inválido" in reasons[7]
    assert "colunas" in reasons[8]
    assert _count(Customer) == customers_before + 2
    assert _count(Contact) == contacts_before + 4  # 2 from Delta, 2 from Lambda; nothing from rejected rows
    with session_scope() as s:
        assert s.scalar(select(Contact.id).where(Contact.value == "5511955554444")) is None  # Épsilon's phone
        delta = s.scalar(select(Customer).where(Customer.cnpj == "04252011000110"))
        assert delta is not None and delta.state == "SP" and [m.anydesk_code for m in delta.machines] == ["111222333"]
    assert "linha;razao_social;motivo" in report.rejected_csv()


def test_csv_without_required_columns_changes_nothing(data: dataset.Ids) -> None:
    before = _count(Customer)
    with session_scope() as s, pytest.raises(InvalidInput) as err:
        customer_import.import_csv(s, b"nome,cnpj\nFulano,04252011000110\n")
    assert "responsavel" in err.value.message_pt and "razao_social" in err.value.message_pt
    with session_scope() as s, pytest.raises(InvalidInput):
        customer_import.import_csv(s, b"   ")
    assert _count(Customer) == before


_foreign = sa.MetaData()
RASA_EVENTS = sa.Table(  # the columns of Rasa 3.6's SQLTrackerStore that we read
    "events", _foreign, sa.Column("id", sa.Integer, primary_key=True), sa.Column("sender_id", sa.String(255)),
    sa.Column("type_name", sa.String(255)), sa.Column("timestamp", sa.Float), sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)), sa.Column("data", sa.Text))
OUTBOX = sa.Table(  # the columns of the WhatsApp connector's outbox that we read
    "whatsapp_outbox", _foreign, sa.Column("id", sa.Integer, primary_key=True), sa.Column("recipient", sa.String(128)),
    sa.Column("body", sa.Text), sa.Column("send_state", sa.String(16)), sa.Column("status", sa.String(16)),
    sa.Column("error_code", sa.Integer), sa.Column("error_title", sa.Text), sa.Column("needs_template", sa.Boolean),
    sa.Column("created_at", sa.Float))


@pytest.fixture()
def foreign_tables(db_url: str) -> Iterator[None]:
    """Rasa's ``events`` and the connector's ``whatsapp_outbox``, created by their owners in production."""
    engine = get_engine()
    _foreign.create_all(engine)
    try:
        yield
    finally:
        _foreign.drop_all(engine)


def _rasa_events(s, sender: str, rows: list[tuple[str, float, dict, str | None]]) -> None:  # type: ignore[no-untyped-def]
    for type_name, ts, data, intent in rows:
        s.execute(RASA_EVENTS.insert().values(sender_id=sender, type_name=type_name, timestamp=ts, intent_name=intent,
                                              data=json.dumps({"event": type_name, **data})))


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


def test_transcript_merges_tracker_store_and_ticket_events_by_time(data: dataset.Ids, foreign_tables: None) -> None:
    tid = data.tickets["t2"]  # web conversation "web-sess-a2", opened 2026-03-02 10:00
    with session_scope() as s:
        _rasa_events(s, "web-sess-a2", [
            ("user", _epoch("2026-03-02T09:58:00"), {"text": "<script>alert(1)</script> o PDV travou"}, "relatar_problema"),
            ("action", _epoch("2026-03-02T09:58:01"), {"name": "action_listen"}, None),
            ("bot", _epoch("2026-03-02T09:59:00"), {"text": "Abri o chamado para você."}, None),
            ("user", _epoch("2026-03-02T10:30:00"), {"text": None}, "EXTERNAL_agent_reply"),
            ("bot", _epoch("2026-03-02T10:30:01"), {"text": "Olá, sou o Tiago."}, None),
        ])
        _rasa_events(s, "someone-else", [("user", _epoch("2026-03-02T10:00:00"), {"text": "outra conversa"}, None)])
        s.add(TicketEvent(ticket_id=tid, actor="Tiago Técnico", kind="assigned", at=datetime(2026, 3, 2, 10, 20), data={}))
    with session_scope() as s:
        entries = transcripts.for_ticket(s, s.get(Ticket, tid))
    assert [(e.source, e.kind, e.text) for e in entries] == [
        ("conversa", "user", "<script>alert(1)</script> o PDV travou"),
        ("conversa", "bot", "Abri o chamado para você."),
        ("chamado", "created", "Descrição t2"),
        ("chamado", "assigned", ""),
        ("conversa", "bot", "Olá, sou o Tiago."),
    ]
    assert entries[0].label == "cliente" and entries[1].label == "assistente"


def test_transcript_without_tracker_store_table_is_the_ticket_events(data: dataset.Ids) -> None:
    with session_scope() as s:
        entries = transcripts.for_ticket(s, s.get(Ticket, data.tickets["t1"]))
    assert [(e.source, e.kind) for e in entries] == [("chamado", "created")]


def test_whatsapp_131047_failure_is_surfaced(data: dataset.Ids, foreign_tables: None) -> None:
    with session_scope() as s:
        for rid, recipient, state, status, code in ((1, "5511987654321", "accepted", "failed", 131047),
                                                    (2, "5511987654321", "accepted", "delivered", None),
                                                    (3, "5599999999999", "rejected", "failed", 131026)):
            s.execute(OUTBOX.insert().values(
                id=rid, recipient=recipient, body=json.dumps({"type": "text", "text": {"body": f"msg {rid}"}}),
                send_state=state, status=status, error_code=code, error_title="Re-engagement message",
                needs_template=code == 131047, created_at=_epoch("2026-03-02T12:00:00")))
    with session_scope() as s:
        failures = transcripts.whatsapp_failures(s, "5511987654321", since=datetime(2026, 3, 2, 9))
    assert len(failures) == 1 and failures[0].text == "msg 1"
    assert "131047" in failures[0].message_pt and "24 horas" in failures[0].message_pt and "template" in failures[0].message_pt


def test_rejected_rows_report_neutralises_formula_cells(data: dataset.Ids) -> None:
    import csv
    import io

    rows = ['Ana;"=HYPERLINK(""http://mal.example"";""Clique"")";;04.252.011/0001-11;simples;;;;;;',
            "Bia;@SUM(1+1)*cmd|' /C calc'!A0;;33.000.167/0001-02;simples;;;;;;",
            "Cid;-2+3;;60.746.948/0001-13;simples;;;;;;",
            "Dan;Delta Ltda;;04.252.011/0001-19;simples;;;;;;"]
    with session_scope() as s:
        report = customer_import.import_csv(s, (HEADER + "\n".join(rows) + "\n").encode("utf-8"))
    assert not report.created and len(report.rejected) == 4
    cells = list(csv.reader(io.StringIO(report.rejected_csv()), delimiter=";"))
    assert [c[1] for c in cells[1:]] == ["'=HYPERLINK(\"http://mal.example\";\"Clique\")",
                                         "'@SUM(1+1)*cmd|' /C calc'!A0", "'-2+3", "Delta Ltda"]
    assert all(not cell.startswith(customer_import.FORMULA_PREFIXES) for row in cells for cell in row)


def _events(tid: int) -> list[tuple[str, str]]:
    with session_scope() as s:
        return [(e.kind, e.text) for e in s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tid)
                                                    .order_by(TicketEvent.id))]


def _open_t5(data: dataset.Ids) -> int:
    return data.tickets["t5"]  # em atendimento, Bruno, web conversation "web-sess-c5"


def test_reply_goes_through_rasa_then_is_recorded(data: dataset.Ids, rasa: RasaRecorder) -> None:
    tid = _open_t5(data)
    with session_scope() as s:
        out = handoff.reply(s, tid, technician_id=data.bruno, text="  Pode reiniciar o pinpad?  ",
                            client=RasaClient.from_settings())
    assert out.ok and out.message_pt == "Resposta enviada ao cliente."
    assert rasa.calls == [{"path": "/conversations/web-sess-c5/trigger_intent",
                           "query": {"output_channel": ["latest"]},
                           "body": {"name": "EXTERNAL_agent_reply",
                                    "entities": {"agent_text": "Pode reiniciar o pinpad?", "agent_name": "Bruno Técnico"}}}]
    assert bearer_claims(rasa.authorizations[0])["user"]["role"] == "admin"  # a bearer JWT, no token in the URL
    assert _events(tid)[-1] == ("message_out", "Pode reiniciar o pinpad?")


def test_a_colleague_cannot_reply_on_a_held_ticket_and_nothing_reaches_the_customer(
        data: dataset.Ids, rasa: RasaRecorder) -> None:
    from helpdesk.errors import AlreadyAssigned

    tid = _open_t5(data)  # held by Bruno
    before = _events(tid)
    with session_scope() as s:
        with pytest.raises(AlreadyAssigned):
            handoff.reply(s, tid, technician_id=data.tiago, text="oi", client=RasaClient.from_settings())
    assert rasa.calls == []  # refused before Rasa was called
    assert _events(tid) == before


@pytest.mark.parametrize("failure", ["http_500", "down"])
def test_failed_reply_is_recorded_as_failed_and_not_as_sent(data: dataset.Ids, rasa: RasaRecorder, failure: str) -> None:
    tid = _open_t5(data)
    if failure == "http_500":
        rasa.status = 500
    else:
        rasa.stop()
    with session_scope() as s:
        first_before = s.get(Ticket, tid).first_response_at
        out = handoff.reply(s, tid, technician_id=data.bruno, text="Olá", client=RasaClient.from_settings())
    assert not out.ok and "não chegou ao cliente" in out.message_pt
    kinds = [k for k, _ in _events(tid)]
    assert "message_out" not in kinds and kinds[-1] == "delivery_failed"
    with session_scope() as s:
        assert s.get(Ticket, tid).first_response_at == first_before


def test_replies_refused_before_any_call(data: dataset.Ids, rasa: RasaRecorder) -> None:
    client = RasaClient.from_settings()
    cases = [(data.tickets["t7"], "Olá", IllegalTransition, "Assuma o chamado"),  # novo
             (data.tickets["t1"], "Olá", IllegalTransition, "concluído"),  # closed
             (_open_t5(data), "   ", InvalidInput, "Escreva a resposta")]
    for tid, body, exc, words in cases:
        before = _events(tid)
        with session_scope() as s, pytest.raises(exc) as err:
            handoff.reply(s, tid, technician_id=data.bruno, text=body, client=client)
        assert words in err.value.message_pt
        assert _events(tid) == before
    assert rasa.calls == []


def test_resolve_closes_then_asks_the_bot_for_a_rating(data: dataset.Ids, rasa: RasaRecorder) -> None:
    tid = _open_t5(data)
    with session_scope() as s:
        out = handoff.resolve(s, tid, technician_id=data.bruno, solution="Pinpad reconfigurado.",
                              client=RasaClient.from_settings())
    assert out.ok and "avaliação" in out.message_pt
    assert rasa.calls[0]["body"] == {"name": "EXTERNAL_ticket_closed", "entities": {"ticket_number": f"#{tid}"}}
    with session_scope() as s:
        t = s.get(Ticket, tid)
        assert (t.status, t.solution) == ("concluido", "Pinpad reconfigurado.") and t.resolved_at is not None


def test_resolve_keeps_the_ticket_closed_when_rasa_is_down(data: dataset.Ids, rasa: RasaRecorder) -> None:
    tid = _open_t5(data)
    rasa.stop()
    with session_scope() as s:
        out = handoff.resolve(s, tid, technician_id=data.bruno, solution="Feito.", client=RasaClient.from_settings())
    assert not out.ok and "concluído" in out.message_pt and "avaliação" in out.message_pt
    with session_scope() as s:
        assert s.get(Ticket, tid).status == "concluido"
    assert [k for k, _ in _events(tid)][-1] == "bot_notify_failed"


def test_rasa_client_needs_a_conversation() -> None:
    with pytest.raises(RasaUnavailable) as err:
        RasaClient("http://127.0.0.1:9").agent_reply("", agent_text="x", agent_name="y")
    assert "conversa" in err.value.message_pt
