"""The customer's WhatsApp identities (phone, BSUID, LID) on the Clientes page, and which identity
identified each ticket on the Chamado page (issue 15 item 1)."""
from __future__ import annotations

from helpdesk.db import session_scope
from helpdesk.models import Ticket
from helpdesk.services import customers, identities

from . import dataset
from .apphelpers import goto, login, texts

BSUID = "BR.1502576394655843"
LID = "81896604192873@lid"


def _identities_table(at):  # type: ignore[no-untyped-def]
    return next(d.value for d in at.dataframe if "Identidade" in d.value.columns)


def test_the_customer_page_lists_the_whatsapp_identities(ids: dataset.Ids) -> None:
    with session_scope() as s:
        customers.link_whatsapp_id(s, ids.a, "bsuid", BSUID)
        customers.link_whatsapp_id(s, ids.a, "lid", LID)
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "clientes")
    at.text_input(key="c_search").input("alfa").run()
    assert not at.exception
    table = _identities_table(at)
    assert list(table["Identidade"]) == ["Telefone", "ID de usuário do WhatsApp (BSUID)", "LID do WhatsApp (Z-API)"]
    assert list(table["Valor"]) == ["5511987654321", BSUID, LID]
    assert "Meta" in table["Como foi vinculada"][1] and "Z-API" in table["Como foi vinculada"][2]
    # the BSUID / LID are not listed as e-mails among the editable contacts
    contacts = next(d.value for d in at.dataframe if "Contato" in d.value.columns)
    assert set(contacts["Tipo"]) == {"telefone", "e-mail"} and BSUID not in set(contacts["Contato"])


def test_a_customer_without_a_bsuid_is_told_what_that_means(ids: dataset.Ids) -> None:
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "clientes")
    at.text_input(key="c_search").input("alfa").run()
    assert list(_identities_table(at)["Identidade"]) == ["Telefone"]
    assert any("Sem ID de usuário (BSUID)" in c.value for c in at.caption)


def test_each_ticket_shows_which_identity_identified_it(ids: dataset.Ids) -> None:
    tid = ids.tickets["t1"]
    user = login("tiago@teste.dev", dataset.PASSWORD)
    expected = {
        None: "não identificado pelo assistente",
        "phone": "telefone do WhatsApp (verificado)",
        "bsuid": "nome de usuário sem telefone (verificado)",
        "lid": "LID do WhatsApp pela Z-API (verificado)",
        "website_token": "login no site (token verificado)",
        "claim": "CNPJ digitado no chat (não verificado)",
    }
    for value, label in expected.items():
        with session_scope() as s:
            identities.set_identified_by(s, tid, value)
        at = goto(user, "chamado", id=tid)
        assert not at.exception
        captions = [c.value for c in at.caption if c.value.startswith("Identificado por: ")]
        assert len(captions) == 1 and label in captions[0], (value, captions)
    # the ticket also lists the customer's BSUID / LID beside the contacts
    with session_scope() as s:
        customers.link_whatsapp_id(s, ids.a, "lid", LID)
        assert s.get(Ticket, tid).identified_by == "claim"
    assert f"WhatsApp: LID do WhatsApp (Z-API): {LID}" in texts(goto(user, "chamado", id=tid))
