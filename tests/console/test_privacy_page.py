"""Privacidade (managers): LGPD export download and erasure with a typed confirmation (issue #17
parts 2-3 in the console), through AppTest; technicians neither see nor use them."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from console.screens import privacy as page
from helpdesk.db import get_engine, session_scope
from helpdesk.errors import InvalidInput, NotFound, PermissionDenied
from helpdesk.models import Customer, PrivacyRequest, Technician
from helpdesk.privacy import REMOVED_NAME

from . import dataset
from .apphelpers import goto, login, menu, messages


def _dump() -> dict[str, list[str]]:
    with get_engine().connect() as conn:
        return {name: sorted(repr(tuple(map(str, r))) for r in conn.execute(sa.text(f"SELECT * FROM {name}")))
                for name in sa.inspect(conn).get_table_names() if name != "alembic_version"}


def _audits() -> list[tuple[str, str, str, int | None]]:
    with session_scope() as s:
        return [(a.action, a.actor, a.selector, a.customer_id)
                for a in s.scalars(select(PrivacyRequest).order_by(PrivacyRequest.id))]


def _customer_a(at):  # type: ignore[no-untyped-def]
    at.selectbox(key="pv_kind").set_value("customer").run()
    at.text_input(key="pv_search").input("alfa").run()
    return at


def _manager_page():  # type: ignore[no-untyped-def]
    return goto(login("marta@teste.dev", dataset.PASSWORD), page.URL_PATH)


def _generation(tech_id: int) -> int:
    with session_scope() as s:
        return int(s.get(Technician, tech_id).session_generation or 0)


def test_manager_exports_and_erases_a_customer_with_the_cnpj_typed(ids: dataset.Ids) -> None:
    at = _manager_page()
    assert "Privacidade" in menu(at) and [h.value for h in at.header] == ["Privacidade (LGPD)"]
    at = _customer_a(at)
    held = next(d.value for d in at.dataframe if "Área" in d.value.columns)
    rows = dict(zip(held["Área"], held["Linhas"]))
    assert rows["cliente"] == "1" and rows["chamados (mantidos, anonimizados)"] == "3"
    assert [b.proto.label for b in at.get("download_button")] == ["Exportar dados (LGPD)"]
    assert _audits() == []  # looking writes nothing

    # the download's contents: the export document, audited with the manager as actor
    doc = json.loads(page.export_json(ids.manager, _generation(ids.manager), "customer", str(ids.a)))
    assert doc["customer"]["cnpj"] == dataset.CNPJ_A and len(doc["tickets"]) == 3
    assert _audits() == [("export", "console:marta@teste.dev", "customer", ids.a)]

    # a wrong confirmation (or APAGAR, when the person is a customer) erases nothing
    before = _dump()
    for typed in ("", "apagar", "APAGAR", "11.444.777/0001-61"):
        at.text_input(key="pv_confirm").input(typed)
        at.button(key="pv_erase").click().run()
        assert messages(at, "error") == [
            "Confirmação incorreta: digite 11.222.333/0001-81 para apagar. Nada foi apagado."], typed
    assert _dump() == before

    at.text_input(key="pv_confirm").input("11.222.333/0001-81")
    at.button(key="pv_erase").click().run()
    assert not at.exception
    assert messages(at, "success") == ["Dados do titular apagados. O registro da solicitação foi gravado."]
    done = next(d.value for d in at.dataframe if "Área" in d.value.columns)
    assert dict(zip(done["Área"], done["Linhas"]))["contatos"] == "2"  # the counts after the erasure
    with session_scope() as s:
        a = s.get(Customer, ids.a)
        assert a.responsible_name == REMOVED_NAME and a.cnpj != dataset.CNPJ_A and not a.contacts
    assert _audits()[-1] == ("erase", "console:marta@teste.dev", "customer", ids.a)


def test_a_phone_or_conversation_needs_the_word_apagar(ids: dataset.Ids) -> None:
    at = _manager_page()
    at.selectbox(key="pv_kind").set_value("phone").run()
    at.text_input(key="pv_value").input("(21) 99876-5432").run()  # customer B's phone: B's CNPJ is asked
    assert any("11.444.777/0001-61" in t.label for t in at.text_input if t.key == "pv_confirm")
    at.text_input(key="pv_value").input("5548999990000").run()
    assert messages(at, "warning")[0].startswith("Nenhum dado encontrado")
    with session_scope() as s:  # a visitor known only by a conversation (a knowledge query)
        from helpdesk.models import KnowledgeQuery
        s.add(KnowledgeQuery(conversation_id="web:visitante-9", question="quanto custa o pdv?"))
    at.selectbox(key="pv_kind").set_value("conversation").run()
    at.text_input(key="pv_value").input("web:visitante-9").run()
    at.text_input(key="pv_confirm").input("APAGAR")
    at.button(key="pv_erase").click().run()
    assert messages(at, "success") and _audits()[-1][:3] == ("erase", "console:marta@teste.dev", "conversation")
    with session_scope() as s:
        assert s.scalar(select(KnowledgeQuery.question).where(KnowledgeQuery.conversation_id.like("apagado:%"))) == ""


@pytest.mark.parametrize("value, expected", [
    ("12ab", "Número de telefone inválido"),
    ("5548999990000", "Nenhum dado encontrado"),
])
def test_bad_phone_selectors_say_so_and_change_nothing(ids: dataset.Ids, value: str, expected: str) -> None:
    at = _manager_page()
    before = _dump()
    at.selectbox(key="pv_kind").set_value("phone").run()
    at.text_input(key="pv_value").input(value).run()
    assert messages(at, "warning")[0].startswith(expected)
    assert not at.get("download_button") and not [b for b in at.button if b.key == "pv_erase"]
    assert _dump() == before


def test_technician_neither_sees_nor_opens_the_page(ids: dataset.Ids) -> None:
    at = login("tiago@teste.dev", dataset.PASSWORD)
    assert "Privacidade" not in menu(at)
    at = goto(at, page.URL_PATH)
    assert messages(at, "error") == ["Você não tem permissão para acessar esta área. Esta página é só para gestores."]
    assert not at.get("download_button") and not at.text_input and not at.header


def test_a_technician_session_calling_the_actions_is_refused(ids: dataset.Ids) -> None:
    before = _dump()
    tiago = _generation(ids.tiago)
    with pytest.raises(PermissionDenied):
        page.export_json(ids.tiago, tiago, "customer", str(ids.a))
    with pytest.raises(PermissionDenied):
        page.erase(ids.tiago, tiago, "customer", str(ids.a), "11.222.333/0001-81")
    # a manager's id with a stale session generation (password reset since): refused too
    with pytest.raises(PermissionDenied):
        page.erase(ids.manager, _generation(ids.manager) + 1, "customer", str(ids.a), "11222333000181")
    assert _dump() == before and _audits() == []


def test_a_manager_demoted_after_the_page_was_drawn_cannot_erase(ids: dataset.Ids) -> None:
    at = _customer_a(_manager_page())
    before = _dump()
    with session_scope() as s:  # demoted from another console, the page still open
        s.get(Technician, ids.manager).role = "technician"
    before = _dump()
    at.text_input(key="pv_confirm").input("11.222.333/0001-81")
    at.button(key="pv_erase").click().run()
    assert messages(at, "error")[0].startswith("Você não tem permissão")
    assert _dump() == before


@pytest.mark.parametrize("selector, value, error", [
    ("cnpj", "11222333000181", InvalidInput), ("customer", "", InvalidInput), ("customer", "x" * 201, InvalidInput),
    ("customer", "abc", InvalidInput), ("customer", "99999", NotFound), ("email", "sem-arroba", InvalidInput),
    ("conversation", "web:a b", InvalidInput),
])
def test_bad_inputs_to_the_actions_change_nothing(ids: dataset.Ids, selector: str, value: str,
                                                   error: type) -> None:
    before = _dump()
    gen = _generation(ids.manager)
    with pytest.raises(error):
        page.export_json(ids.manager, gen, selector, value)
    with pytest.raises(error):
        page.erase(ids.manager, gen, selector, value, "APAGAR")
    assert _dump() == before
