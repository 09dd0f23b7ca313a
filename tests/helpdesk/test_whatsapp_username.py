"""A customer's WhatsApp username (issue 15): one per customer, display-only. Stored, replaced on
change and moved between customers (latest signed wins, every change in the correction log); out of
form refused with nothing changed; never found by any lookup (phone, e-mail, WhatsApp id, search,
privacy selectors); exported and erased with the customer (LGPD). SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from helpdesk import privacy
from helpdesk.db import session_scope
from helpdesk.errors import DomainError, InvalidInput
from helpdesk.models import Contact
from helpdesk.services import customers, identities

HANDLE = "maria.padaria"


def _two() -> tuple[int, int]:
    with session_scope() as s:
        maria = customers.create(s, responsible_name="Maria Souza", legal_name="Padaria Pão Quente Ltda",
                                 cnpj="04252011000110", tax_regime="mei", phones=["+55 (11) 98765-4321"],
                                 emails=["maria@padaria.com.br"])
        joao = customers.create(s, responsible_name="João Lima", legal_name="Lima Comunicação SA",
                                cnpj="11444777000161", tax_regime="lucro_real", phones=["+55 (21) 99999-0000"])
        return maria.id, joao.id


def _rows() -> list[tuple[int, str]]:
    with session_scope() as s:
        return sorted((c.customer_id, c.value) for c in s.scalars(select(Contact).where(Contact.kind == "username")))


def _log(customer_id: int) -> list[tuple[str, str, str]]:
    with session_scope() as s:
        return sorted((r.field, r.action, r.actor) for r in customers.corrections(s, customer_id)
                      if r.field == "contact.username")


def test_stored_replaced_and_moved_with_every_change_logged(db_url: str) -> None:
    maria, joao = _two()
    with session_scope() as s:
        assert customers.set_whatsapp_username(s, maria, "@Maria.Padaria") is True
        assert customers.set_whatsapp_username(s, maria, "maria.padaria") is False  # the same: nothing
    assert _rows() == [(maria, HANDLE)]
    assert _log(maria) == [("contact.username", "added", "whatsapp:username")]
    # the user changed it: one username per customer, the new one replaces the old
    with session_scope() as s:
        assert customers.set_whatsapp_username(s, maria, "maria_souza") is True
        assert customers.whatsapp_username(s, maria) == "maria_souza"
    assert _rows() == [(maria, "maria_souza")]
    assert ("contact.username", "changed", "whatsapp:username") in _log(maria)
    # the same handle signed for another customer: it moves (the latest signed delivery wins)
    with session_scope() as s:
        assert customers.set_whatsapp_username(s, joao, "Maria_Souza") is True
        assert customers.whatsapp_username(s, maria) is None
        assert customers.whatsapp_username(s, joao) == "maria_souza"
    assert _rows() == [(joao, "maria_souza")]
    assert ("contact.username", "removed", "whatsapp:username") in _log(maria)
    assert _log(joao) == [("contact.username", "added", "whatsapp:username")]
    # and back, replacing João's
    with session_scope() as s:
        customers.set_whatsapp_username(s, maria, HANDLE)
        customers.set_whatsapp_username(s, maria, "maria_souza")
    assert _rows() == [(maria, "maria_souza")]


@pytest.mark.parametrize("bad", ["a" * 36, "ma", "maria padaria", "<b>x</b>", "maria..p", "123456", "@@maria",
                                 "mariã", "", "maria\n"])
def test_a_username_out_of_form_is_refused_and_changes_nothing(db_url: str, bad: str) -> None:
    maria, _ = _two()
    with session_scope() as s:
        customers.set_whatsapp_username(s, maria, HANDLE)
    with session_scope() as s, pytest.raises(InvalidInput):
        customers.set_whatsapp_username(s, maria, bad)
    assert _rows() == [(maria, HANDLE)]


def test_an_unknown_customer_is_refused(db_url: str) -> None:
    with session_scope() as s, pytest.raises(DomainError):
        customers.set_whatsapp_username(s, 999_999, HANDLE)
    assert _rows() == []


def test_no_lookup_finds_a_customer_by_the_username(db_url: str) -> None:
    maria, _ = _two()
    with session_scope() as s:
        customers.set_whatsapp_username(s, maria, HANDLE)
    with session_scope() as s:
        assert customers.find_by_whatsapp_id(s, "bsuid", HANDLE) is None
        assert customers.find_by_whatsapp_id(s, "lid", HANDLE) is None
        assert customers.find_by_whatsapp_id(s, "username", HANDLE) is None  # not a WhatsApp id kind
        assert customers.find_by_email(s, HANDLE) is None
        assert customers.find_by_email(s, f"@{HANDLE}") is None
        assert customers.search(s, HANDLE) == [] and customers.search(s, "padaria.") == []
        # the console's identity list (phone / BSUID / LID) does not list it as an identity
        assert [i.kind for i in identities.whatsapp_identities(s, maria)] == ["phone"]
        # privacy selectors: a conversation id naming the handle resolves nobody
        for value in (f"whatsapp:{HANDLE}", HANDLE, f"whatsapp:@{HANDLE}"):
            try:
                scope = privacy.resolve(s, "conversation", value)
            except DomainError:
                continue  # nothing held under that conversation id
            assert scope.customer is None and scope.ticket_ids == [], value


def test_the_username_is_exported_and_erased_with_the_customer(db_url: str) -> None:
    maria, joao = _two()
    with session_scope() as s:
        customers.set_whatsapp_username(s, maria, HANDLE)
        customers.set_whatsapp_username(s, joao, "joao.lima")
    with session_scope() as s:
        doc = privacy.export(s, "customer", str(maria))
    exported = [(c["kind"], c["value"]) for c in doc["customer"]["contacts"]]
    assert ("username", HANDLE) in exported and ("username", "joao.lima") not in exported
    with session_scope() as s:
        privacy.erase(s, "customer", str(maria))
    assert _rows() == [(joao, "joao.lima")]  # Maria's is gone, João's is untouched
