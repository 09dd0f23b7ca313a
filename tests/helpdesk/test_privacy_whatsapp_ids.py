"""LGPD export and erasure reach a customer's WhatsApp rows kept under a BSUID or a Z-API LID (a
conversation without the phone), not only those under the phone (issue 15 item 1)."""
from __future__ import annotations

import json
import time

import sqlalchemy as sa

from helpdesk import privacy
from helpdesk.db import get_engine, session_scope
from helpdesk.services import customers

from .test_privacy import INBOX, foreign_tables  # noqa: F401 (the fixture: the connector's tables)

BSUID = "BR.1502576394655843"
LID = "81896604192873@lid"


def _inbox(item_id: str, sender: str, text: str) -> dict[str, object]:
    return {"item_id": item_id, "kind": "message", "sender": sender, "state": "done", "text": text,
            "data": json.dumps({"metadata": {}}), "attempts": 1, "received_at": time.time()}


def test_rows_under_a_linked_bsuid_or_lid_are_exported_and_erased(db_url: str, foreign_tables: None) -> None:  # noqa: F811
    with session_scope() as s:
        marta = customers.create(s, responsible_name="Marta Reis", legal_name="Reis Doces Ltda",
                                 cnpj="04252011000110", tax_regime="mei", phones=["+55 (11) 97777-6666"])
        other = customers.create(s, responsible_name="Otávio", legal_name="Otávio Ltda", cnpj="11444777000161",
                                 tax_regime="mei", phones=["+55 (21) 96666-5555"])
        customers.link_whatsapp_id(s, marta.id, "bsuid", BSUID)
        customers.link_whatsapp_id(s, marta.id, "lid", LID)
        marta_id, other_id = marta.id, other.id
    with get_engine().begin() as conn:
        conn.execute(INBOX.insert(), [_inbox("w1", BSUID, "escrevi pelo nome de usuário"),
                                      _inbox("w2", LID, "escrevi pela z-api sem número"),
                                      _inbox("w3", "5521966665555", "mensagem do outro cliente")])
    with session_scope() as s:
        scope = privacy.resolve(s, "customer", str(marta_id))
        assert {BSUID, LID} <= scope.wa_ids
        assert {f"whatsapp:{BSUID}", f"whatsapp:{LID}"} <= scope.conversations
        doc = privacy.export(s, "customer", str(marta_id))
    assert {r["item_id"] for r in doc["whatsapp_inbox"]} == {"w1", "w2"}
    with session_scope() as s:
        privacy.erase(s, "customer", str(marta_id))
    with get_engine().connect() as conn:
        left = conn.execute(sa.select(INBOX.c.item_id, INBOX.c.sender, INBOX.c.text).order_by(INBOX.c.item_id)).all()
    assert not [r for r in left if r.sender in (BSUID, LID) or (r.text or "").startswith("escrevi")]
    assert ("w3", "5521966665555", "mensagem do outro cliente") in left  # the other customer is untouched
    with session_scope() as s:
        assert privacy.resolve(s, "customer", str(other_id)).wa_ids.isdisjoint({BSUID, LID})
