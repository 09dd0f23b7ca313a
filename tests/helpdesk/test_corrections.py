"""The customer correction log (issue #17 part 5), on SQLite and PostgreSQL: every edit of personal
data through services/customers.py writes who, when, which customer and which field, never a value;
the privacy export includes the log and an erasure leaves no personal data in it."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from helpdesk import privacy
from helpdesk.db import session_scope
from helpdesk.errors import InvalidCNPJ, InvalidInput, UnknownCustomer
from helpdesk.models import Customer, CustomerCorrection
from helpdesk.services import customers, technicians
from tests.helpdesk.test_privacy import JOANA_NEEDLES, _dump, _load, _traces, foreign_tables  # noqa: F401

NEW_VALUES = ["Joana Pereira Lima Souza", "Doces da Joana Eireli", "11444777000161", "Valinhos", "nota nova sigilosa",
              "5511977776666", "joana.nova@docesdajoana.com.br", "CAIXA-NOVA-JOANA", "987654321"]


def _tech(s: object) -> int:
    return technicians.create(s, name="Mariana Gestora", email="mariana@teste.dev", password="senha-forte-123",
                              role="manager").id


def _log(customer_id: int) -> list[tuple[str, str, str, int | None]]:
    with session_scope() as s:
        return [(c.field, c.action, c.actor, c.technician_id) for c in customers.corrections(s, customer_id)]


def _edit_everything(customer_id: int, tech: int) -> None:
    with session_scope() as s:
        customers.update(s, customer_id, by=tech, responsible_name=NEW_VALUES[0], legal_name=NEW_VALUES[1],
                         cnpj=NEW_VALUES[2], city=NEW_VALUES[3], notes=NEW_VALUES[4], state="SP", trade_name="")
    with session_scope() as s:
        customers.add_contact(s, customer_id, "phone", NEW_VALUES[5], by=tech)
        customers.add_contact(s, customer_id, "email", NEW_VALUES[6], by=tech)
        customers.add_machine(s, customer_id, NEW_VALUES[7], NEW_VALUES[8], by=tech)


def test_every_edit_is_logged_without_its_values(db_url: str, foreign_tables: None) -> None:
    ids = _load()
    with session_scope() as s:
        tech = _tech(s)
    _edit_everything(ids.joana, tech)
    log = _log(ids.joana)
    # newest first; state "SP" was already "SP": not a change, not logged
    assert log == [(f, a, "technician", tech) for f, a in (
        ("machine", "added"), ("contact.email", "added"), ("contact.phone", "added"), ("notes", "changed"),
        ("city", "changed"), ("cnpj", "changed"), ("trade_name", "changed"), ("legal_name", "changed"),
        ("responsible_name", "changed"))]
    fields = {f for f, *_ in log}
    assert fields == {"responsible_name", "legal_name", "trade_name", "cnpj", "city", "notes", "contact.phone",
                      "contact.email", "machine"}
    assert all(a == "technician" and t == tech for _f, _a, a, t in log)
    rows = _dump()["customer_corrections"]
    blob = "\n".join(rows).lower()
    for value in NEW_VALUES + JOANA_NEEDLES:  # neither the new nor the old values
        assert value.lower() not in blob, value


def test_whatsapp_number_change_and_id_link_are_logged_as_the_system(db_url: str, foreign_tables: None) -> None:
    ids = _load()
    with session_scope() as s:
        assert customers.change_phone(s, ids.joana, "5511987654321", "5511966665555")
        assert customers.link_whatsapp_id(s, ids.joana, "bsuid", "BR.123abc")
        assert customers.link_whatsapp_id(s, ids.carlos, "bsuid", "BR.123abc")  # Meta says it is Carlos's now
        assert not customers.change_phone(s, ids.joana, "5511900000000", "5511955554444")  # not hers: no log
    assert _log(ids.joana) == [("contact.bsuid", "removed", "whatsapp:id-link", None),
                               ("contact.bsuid", "added", "whatsapp:id-link", None),
                               ("contact.phone", "changed", "whatsapp:number-change", None)]
    assert _log(ids.carlos) == [("contact.bsuid", "added", "whatsapp:id-link", None)]


def test_refused_edits_and_unknown_actors_log_nothing_and_change_nothing(db_url: str, foreign_tables: None) -> None:
    ids = _load()
    with session_scope() as s:
        tech = _tech(s)
    before = _dump()
    for kwargs, error in (({"by": tech, "cnpj": "11.111.111/1111-11"}, InvalidCNPJ),
                          ({"by": tech, "responsible_name": "  "}, InvalidInput),
                          ({"by": "hacker", "city": "Outra"}, InvalidInput),
                          ({"by": tech + 999, "city": "Outra"}, InvalidInput),
                          ({"by": True, "city": "Outra"}, InvalidInput),
                          ({"by": tech, "owner": "x"}, InvalidInput)):
        with pytest.raises(error):
            with session_scope() as s:
                customers.update(s, ids.joana, **kwargs)
    assert _dump() == before
    with session_scope() as s, pytest.raises(UnknownCustomer):
        customers.corrections(s, ids.joana + 1000)


def test_export_includes_the_log_and_erase_leaves_it_without_personal_data(db_url: str, foreign_tables: None) -> None:
    ids = _load()
    with session_scope() as s:
        tech = _tech(s)
    _edit_everything(ids.joana, tech)
    with session_scope() as s:
        doc = json.loads(privacy.to_json(privacy.export(s, "customer", str(ids.joana), actor="teste")))
    assert {r["field"] for r in doc["customer_corrections"]} >= {"cnpj", "contact.phone", "machine"}
    assert all(r["customer_id"] == ids.joana and r["technician_id"] == tech for r in doc["customer_corrections"])
    assert {x["store"]: x["rows"] for x in doc["sources"]}["customer_corrections"] == 9
    with session_scope() as s:
        held = privacy.erase(s, "customer", str(ids.joana), actor="teste")
    assert held["customer_corrections"] == 9
    assert _traces(JOANA_NEEDLES + NEW_VALUES) == []
    assert len(_log(ids.joana)) == 9  # kept: ids, field names and times only
    with session_scope() as s:
        assert s.get(Customer, ids.joana).responsible_name == privacy.REMOVED_NAME
        assert s.scalar(sa.select(sa.func.count()).select_from(CustomerCorrection)) == 9
