"""Domain rules of console access (issue 12, item 6), on SQLite and on PostgreSQL:
login throttling by backoff, sessions that end, who may act on a held ticket, CSV cells, migration 0004."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect, select

from helpdesk import errors
from helpdesk.db import dispose_engines, downgrade, get_engine, session_scope, upgrade
from helpdesk.models import Technician, Ticket, TicketEvent
from helpdesk.services import customer_import, technicians, tickets
from tests.console.apphelpers import FakeClock

PASSWORD = "segredo-123"


@pytest.fixture()
def people(db_url: str) -> dict[str, int]:
    with session_scope() as s:
        ids = {
            "rafael": technicians.create(s, name="Rafael", email="rafael@x.com", password=PASSWORD).id,
            "livia": technicians.create(s, name="Lívia", email="livia@x.com", password=PASSWORD).id,
            "bianca": technicians.create(s, name="Bianca", email="bianca@x.com", password=PASSWORD, role="manager").id,
        }
        t = tickets.open_ticket(s, customer_id=None, channel="web", type="erro", module=None,
                                description="Caixa travou", conversation_id="web:sess-1")
        tickets.assume(s, t.id, ids["rafael"])
        ids["ticket"] = t.id
    return ids


def _snapshot(tid: int) -> tuple[Any, ...]:
    with session_scope() as s:
        t = s.get(Ticket, tid)
        events = [(e.kind, e.technician_id, e.text) for e in
                  s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tid).order_by(TicketEvent.id))]
        return (t.status, t.technician_id, t.level, t.solution, t.first_response_at, t.row_version, events)


# ---- login ----------------------------------------------------------------------------------------

def test_backoff_grows_and_is_capped() -> None:
    waits = [technicians.backoff_seconds(n, free=5, cap_seconds=900) for n in range(1, 20)]
    assert waits[:4] == [0, 0, 0, 0]
    assert waits[4:9] == [1, 2, 4, 8, 16]
    assert max(waits) == 900 and waits[-1] == 900


def test_unknown_and_inactive_accounts_run_one_real_hash_check(people: dict[str, int],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope() as s:
        technicians.set_active(s, people["livia"], False, by=people["bianca"])
    checked: list[str] = []
    real = technicians._hasher

    class Spy:
        def verify(self, hash_: str, password: str) -> bool:
            checked.append(hash_)
            return real.verify(hash_, password)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(technicians, "_hasher", Spy())
    outcomes = []
    for email, password in (("rafael@x.com", "errada"), ("ninguem@x.com", "errada"), ("livia@x.com", PASSWORD)):
        with pytest.raises(errors.AuthenticationFailed) as err, session_scope() as s:
            technicians.authenticate(s, email, password, client=f"198.51.100.{len(outcomes)}")
        outcomes.append(err.value.message_pt)
    assert outcomes == ["E-mail ou senha incorretos."] * 3
    assert len(checked) == 3 and all(h.startswith("$argon2id$") for h in checked)
    assert checked[1] != checked[0]  # the unknown account was checked against the dummy hash


def test_a_stranger_cannot_lock_the_manager_out(people: dict[str, int], clock: FakeClock) -> None:
    def attempt(password: str, client: str) -> str:
        try:
            with session_scope() as s:
                technicians.authenticate(s, "bianca@x.com", password, client=client)
        except errors.DomainError as err:
            return err.message_pt
        return "ok"

    assert attempt(PASSWORD, "203.0.113.10") == "ok"  # the manager's usual machine
    for _ in range(30):  # a stranger keeps guessing from elsewhere
        attempt("chute", "198.51.100.66")
        clock.advance(0.5)
    assert attempt("chute", "198.51.100.66").startswith("Muitas tentativas de login.")
    assert attempt(PASSWORD, "203.0.113.10") == "ok"  # trusted machine: never waits for the account
    for _ in range(3):
        attempt("chute", "198.51.100.66")
    assert attempt(PASSWORD, "192.0.2.44") == "ok"  # a new machine: its first attempt is always checked


def test_wrong_passwords_from_one_client_back_off_and_the_right_one_logs_in_after(
        people: dict[str, int], clock: FakeClock) -> None:
    def attempt(password: str, email: str = "rafael@x.com") -> str:
        try:
            with session_scope() as s:
                technicians.authenticate(s, email, password, client="198.51.100.7")
        except errors.DomainError as err:
            return err.message_pt
        return "ok"

    results = [attempt("errada") for _ in range(5)]
    assert results == ["E-mail ou senha incorretos."] * 5
    assert attempt(PASSWORD) == "Muitas tentativas de login. Aguarde 1 segundo e tente novamente."
    assert attempt(PASSWORD, "livia@x.com").startswith("Muitas tentativas")  # the client waits, whatever the account
    clock.advance(1)
    assert attempt("errada") == "E-mail ou senha incorretos."
    clock.advance(1.9)
    assert attempt(PASSWORD).startswith("Muitas tentativas")  # 6 failures: 2 s
    clock.advance(0.1)
    assert attempt(PASSWORD) == "ok"


# ---- sessions -------------------------------------------------------------------------------------

def test_password_reset_and_deactivation_end_sessions(people: dict[str, int]) -> None:
    with session_scope() as s:
        generation = technicians.authenticate(s, "rafael@x.com", PASSWORD).session_generation
        assert technicians.session_user(s, people["rafael"], generation).id == people["rafael"]
        technicians.set_password(s, people["rafael"], "outra-senha-1")
    with session_scope() as s, pytest.raises(errors.PermissionDenied) as err:
        technicians.session_user(s, people["rafael"], generation)
    assert err.value.message_pt == technicians.SESSION_ENDED
    with session_scope() as s:
        generation = s.get(Technician, people["rafael"]).session_generation
        technicians.set_active(s, people["rafael"], False, by=people["bianca"])
    with session_scope() as s, pytest.raises(errors.PermissionDenied) as err:
        technicians.session_user(s, people["rafael"], generation)
    assert err.value.message_pt == "Sua conta foi desativada. Fale com um gestor."
    with session_scope() as s:  # reactivated: the old session still does not come back
        technicians.set_active(s, people["rafael"], True, by=people["bianca"])
    with session_scope() as s, pytest.raises(errors.PermissionDenied):
        technicians.session_user(s, people["rafael"], generation)


def test_role_is_read_again_and_the_last_manager_stays(people: dict[str, int]) -> None:
    with session_scope() as s:
        technicians.set_role(s, people["rafael"], "manager", by=people["bianca"])
        assert technicians.session_user(s, people["rafael"], 0).role == "manager"
        technicians.set_role(s, people["rafael"], "technician", by=people["bianca"])
        assert technicians.session_user(s, people["rafael"], 0).role == "technician"
    refusals = [
        (lambda s: technicians.set_active(s, people["bianca"], False, by=people["bianca"]),
         "Você não pode desativar a sua própria conta."),
        (lambda s: technicians.set_role(s, people["bianca"], "technician", by=people["bianca"]),
         "Você não pode tirar o seu próprio perfil de gestor."),
        (lambda s: technicians.set_role(s, people["bianca"], "technician", by=people["rafael"]),
         "Não é possível tirar o perfil do último gestor ativo."),
        (lambda s: technicians.set_active(s, people["bianca"], False, by=people["rafael"]),
         "Não é possível desativar o último gestor ativo."),
    ]
    for action, message in refusals:
        with session_scope() as s, pytest.raises(errors.InvalidInput) as err:
            action(s)
        assert err.value.message_pt == message
    with session_scope() as s:
        bianca = s.get(Technician, people["bianca"])
        assert (bianca.role, bianca.active, bianca.session_generation) == ("manager", True, 0)


# ---- who may act on a held ticket -----------------------------------------------------------------

def test_another_technician_cannot_reply_close_or_escalate_a_held_ticket(people: dict[str, int]) -> None:
    tid = people["ticket"]
    before = _snapshot(tid)
    attempts = [
        ("responder", lambda s: tickets.add_message(s, tid, author="Lívia", text="Oi", direction="out",
                                                    technician_id=people["livia"])),
        ("concluir o chamado", lambda s: tickets.resolve(s, tid, technician_id=people["livia"], solution="Feito")),
        ("escalar o chamado", lambda s: tickets.escalate(s, tid, technician_id=people["livia"], level=2,
                                                         to_technician_id=people["livia"], reason="meu")),
        ("responder", lambda s: tickets.require_holder(s, tid, people["livia"])),
    ]
    for action_pt, attempt in attempts:
        with session_scope() as s, pytest.raises(errors.AlreadyAssigned) as err:
            attempt(s)
        assert err.value.message_pt == (f"O chamado #{tid} está com Rafael. Para {action_pt}, use \"Assumir\" no "
                                        "chamado primeiro (fica registrado no histórico).")
    with session_scope() as s, pytest.raises(errors.AlreadyAssigned):
        tickets.assume(s, tid, people["livia"])  # the queue's "Assumir" does not take a held ticket
    assert _snapshot(tid) == before


def test_take_over_is_explicit_logged_and_atomic(people: dict[str, int]) -> None:
    tid = people["ticket"]
    with session_scope() as s:
        tickets.take_over(s, tid, people["livia"], from_technician_id=people["rafael"])
    with session_scope() as s:
        t = tickets.get(s, tid)
        assert t.technician_id == people["livia"] and t.status == "em_atendimento"
        taken = t.events[-1]
        assert (taken.kind, taken.actor, taken.technician_id, taken.text) == ("assigned", "Lívia", people["livia"],
                                                                             "assumido de Rafael")
        assert taken.data["from_technician_id"] == people["rafael"] and taken.data["take_over"] is True
        tickets.add_message(s, tid, author="Lívia", text="Assumi, já vejo", direction="out",
                            technician_id=people["livia"])
    before = _snapshot(tid)
    with session_scope() as s, pytest.raises(errors.AlreadyAssigned) as err:  # Rafael saw an old page
        tickets.take_over(s, tid, people["rafael"], from_technician_id=people["rafael"])
    assert err.value.message_pt == f"O chamado #{tid} mudou de mãos: agora está com Lívia."
    assert _snapshot(tid) == before


def test_a_manager_acts_on_any_ticket(people: dict[str, int]) -> None:
    tid = people["ticket"]
    with session_scope() as s:
        tickets.add_message(s, tid, author="Bianca", text="Sou a gestora", direction="out",
                            technician_id=people["bianca"])
        tickets.resolve(s, tid, technician_id=people["bianca"], solution="Resolvido pela gestora")
    with session_scope() as s:
        t = s.get(Ticket, tid)
        assert (t.status, t.technician_id) == ("concluido", people["rafael"])


# ---- CSV cells, migration -------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["=1+1", "+55 11 9999", "-2+3", "@SUM(A1)", "\tx", "\rx",
                                  "=HYPERLINK(\"http://evil\",\"clique\")"])
def test_formula_cells_get_an_apostrophe(cell: str) -> None:
    assert customer_import.safe_cell(cell) == "'" + cell
    text = customer_import.csv_text(["a"], [[cell]])
    assert text.splitlines()[1].lstrip('"').startswith("'")


def test_ordinary_cells_stay_as_they_are() -> None:
    for cell in ("Alfa Ltda", "11.222.333/0001-81", 42, -3, 1.5, "", "a=b"):
        assert customer_import.safe_cell(cell) == cell


def test_migration_0004_goes_up_and_down(db_url: str) -> None:
    with session_scope() as s:
        technicians.create(s, name="Rafael", email="rafael@x.com", password=PASSWORD)
    downgrade(db_url, "0003")
    dispose_engines()
    assert "session_generation" not in {c["name"] for c in inspect(get_engine(db_url)).get_columns("technicians")}
    upgrade(db_url)
    dispose_engines()
    assert "session_generation" in {c["name"] for c in inspect(get_engine(db_url)).get_columns("technicians")}
    with session_scope() as s:
        assert s.scalar(select(Technician.session_generation).where(Technician.email == "rafael@x.com")) == 0
