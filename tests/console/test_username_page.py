"""The customer page shows the customer's WhatsApp username (display-only, issue 15) in the
identities section, as plain text; it is not listed as an identity or as an editable contact."""
from __future__ import annotations

from helpdesk.db import session_scope
from helpdesk.services import customers

from . import dataset
from .apphelpers import goto, login, texts


def _open_alfa():  # type: ignore[no-untyped-def]
    at = goto(login("tiago@teste.dev", dataset.PASSWORD), "clientes")
    at.text_input(key="c_search").input("alfa").run()
    assert not at.exception
    return at


def test_the_customer_page_shows_the_whatsapp_username(ids: dataset.Ids) -> None:
    with session_scope() as s:
        customers.set_whatsapp_username(s, ids.a, "@Ana.Alfa_01")
    at = _open_alfa()
    assert "Nome de usuário do WhatsApp: @ana.alfa_01" in texts(at)
    # plain text, never Markdown; and not an identity nor an editable contact
    assert not any("ana.alfa_01" in str(m.value) for m in at.markdown)
    identities = next(d.value for d in at.dataframe if "Identidade" in d.value.columns)
    assert "ana.alfa_01" not in set(identities["Valor"])
    contacts = next(d.value for d in at.dataframe if "Contato" in d.value.columns)
    assert "ana.alfa_01" not in set(contacts["Contato"])


def test_without_a_username_nothing_is_shown(ids: dataset.Ids) -> None:
    at = _open_alfa()
    assert not any(t.startswith("Nome de usuário do WhatsApp") for t in texts(at))
