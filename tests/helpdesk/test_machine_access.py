"""Remote-access audit: masking, the record of each reveal, who may reveal and read, CSV, migration 0006."""
from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from helpdesk.db import downgrade, get_engine, session_scope, upgrade
from helpdesk.errors import InvalidInput, NotFound, PermissionDenied
from helpdesk.models import Machine, MachineAccess, Ticket
from helpdesk.services import customers, machine_access, technicians

PASSWORD = "senha-segura-1"


def _load() -> dict[str, int]:
    with session_scope() as s:
        manager = technicians.create(s, name="Marta Gestora", email="marta@teste.dev", password=PASSWORD,
                                     role="manager", level=3)
        tiago = technicians.create(s, name="Tiago Técnico", email="tiago@teste.dev", password=PASSWORD)
        a = customers.create(s, responsible_name="Ana", legal_name="Alfa Ltda", cnpj="11222333000181",
                             tax_regime="simples_nacional",
                             machines=[customers.MachineSpec(name="CAIXA-01", anydesk_code="123 456 789"),
                                       customers.MachineSpec(name="=HYPERLINK(\"http://mal.example\")",
                                                             anydesk_code="1234567890"),
                                       customers.MachineSpec(name="SEM-CODIGO")])
        b = customers.create(s, responsible_name="Beto", legal_name="Beta Ltda", cnpj="11444777000161",
                             tax_regime="lucro_real")
        ta = Ticket(customer_id=a.id, channel="web", type="erro", subject="caixa")
        tb = Ticket(customer_id=b.id, channel="web", type="erro", subject="outro")
        s.add_all([ta, tb])
        s.flush()
        return {"manager": manager.id, "tiago": tiago.id, "a": a.id, "b": b.id, "caixa": a.machines[0].id,
                "formula": a.machines[1].id, "nocode": a.machines[2].id, "ta": ta.id, "tb": tb.id}


def _rows() -> list[tuple[int, int, int | None, int | None, str]]:
    with session_scope() as s:
        return [(r.technician_id, r.customer_id, r.machine_id, r.ticket_id, r.action)
                for r in s.scalars(select(MachineAccess).order_by(MachineAccess.id))]


def test_mask_shows_only_the_last_digits() -> None:
    assert machine_access.mask("123456789") == "••• ••• 789"
    assert machine_access.mask("123 456 789") == "••• ••• 789"
    assert machine_access.mask("1234567890") == "• ••• ••• 890"
    assert machine_access.mask("12") == "•••"
    assert machine_access.mask("") == "" and machine_access.mask(None) == ""


def test_reveal_records_who_when_which_machine_and_ticket(db_url: str) -> None:
    ids = _load()
    with session_scope() as s:
        assert machine_access.reveal(s, technician_id=ids["tiago"], machine_id=ids["caixa"],
                                     ticket_id=ids["ta"]) == "123456789"
        assert machine_access.reveal(s, technician_id=ids["manager"], machine_id=ids["formula"]) == "1234567890"
    assert _rows() == [(ids["tiago"], ids["a"], ids["caixa"], ids["ta"], "reveal"),
                       (ids["manager"], ids["a"], ids["formula"], None, "reveal")]
    with session_scope() as s:
        log = machine_access.history(s, ids["a"], viewer_id=ids["manager"])
        assert [(e.technician, e.machine, e.ticket) for e in log] == [
            ("Marta Gestora", "=HYPERLINK(\"http://mal.example\")", ""), ("Tiago Técnico", "CAIXA-01", f"#{ids['ta']}")]
        assert all(isinstance(e.at, datetime) for e in log)
        assert [e.technician for e in machine_access.history(s, ids["a"], viewer_id=ids["manager"],
                                                             technician_id=ids["tiago"])] == ["Tiago Técnico"]
        assert machine_access.history(s, ids["a"], viewer_id=ids["manager"], end=log[-1].at) == []
        assert machine_access.history(s, ids["b"], viewer_id=ids["manager"]) == []
        text = machine_access.history_csv(log)
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0] == ["quando", "tecnico", "maquina", "chamado"]
    assert rows[1][1:] == ["Marta Gestora", "'=HYPERLINK(\"http://mal.example\")", ""]  # formula neutralised
    assert rows[2][1:] == ["Tiago Técnico", "CAIXA-01", f"#{ids['ta']}"]
    assert datetime.fromisoformat(rows[2][0]) == log[1].at.replace(microsecond=0)
    assert "123456789" not in text and "1234567890" not in text  # the log never holds the code


def test_refusals_record_nothing(db_url: str) -> None:
    ids = _load()
    with session_scope() as s:
        technicians.set_active(s, ids["tiago"], False, by=ids["manager"])
    with session_scope() as s, pytest.raises(PermissionDenied) as err:
        machine_access.reveal(s, technician_id=ids["tiago"], machine_id=ids["caixa"])
    assert err.value.message_pt == "Sua conta foi desativada. Fale com um gestor."
    with session_scope() as s, pytest.raises(PermissionDenied):
        machine_access.reveal(s, technician_id=999_999, machine_id=ids["caixa"])
    with session_scope() as s, pytest.raises(NotFound):
        machine_access.reveal(s, technician_id=ids["manager"], machine_id=ids["nocode"])
    with session_scope() as s, pytest.raises(NotFound):
        machine_access.reveal(s, technician_id=ids["manager"], machine_id=999_999)
    with session_scope() as s, pytest.raises(InvalidInput) as bad:
        machine_access.reveal(s, technician_id=ids["manager"], machine_id=ids["caixa"], ticket_id=ids["tb"])
    assert bad.value.message_pt == "Este chamado não é do cliente desta máquina."
    assert _rows() == []


def test_only_managers_read_the_log(db_url: str) -> None:
    ids = _load()
    with session_scope() as s, pytest.raises(PermissionDenied):
        machine_access.history(s, ids["a"], viewer_id=ids["tiago"])


def test_a_removed_machine_keeps_its_records_without_the_machine(db_url: str) -> None:
    ids = _load()
    with session_scope() as s:
        machine_access.reveal(s, technician_id=ids["tiago"], machine_id=ids["caixa"])
    with session_scope() as s:
        s.delete(s.get(Machine, ids["caixa"]))
    assert _rows() == [(ids["tiago"], ids["a"], None, None, "reveal")]
    with session_scope() as s:
        log = machine_access.history(s, ids["a"], viewer_id=ids["manager"])
    assert [e.machine for e in log] == ["máquina removida"]


def test_migration_0006_goes_up_and_down(db_url: str) -> None:
    engine = get_engine(db_url)
    assert "machine_accesses" in sa.inspect(engine).get_table_names()
    downgrade(db_url, "0005")
    engine.dispose()
    inspector = sa.inspect(get_engine(db_url))
    assert "machine_accesses" not in inspector.get_table_names() and "privacy_requests" in inspector.get_table_names()
    assert "ix_outcomes_customer_started" not in {i["name"] for i in inspector.get_indexes("conversation_outcomes")}
    upgrade(db_url)
    get_engine(db_url).dispose()
    inspector = sa.inspect(get_engine(db_url))
    assert "machine_accesses" in inspector.get_table_names()
    assert "ix_outcomes_customer_started" in {i["name"] for i in inspector.get_indexes("conversation_outcomes")}
