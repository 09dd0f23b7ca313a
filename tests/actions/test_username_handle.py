"""The WhatsApp username handle on the action server (issue 15): stored, display-only, on the customer
this turn's attestation identified, only when the gateway signed it (``un``). It never identifies
anyone: a username-only turn whose BSUID is unknown stays anonymous even when the handle is stored
on a customer. Whatever a client writes (metadata, slots, a forged ``un``) is ignored."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from actions.identification import ActionGreet, store_username
from atende_contract import attestation

from .conftest import ATTESTATION_SECRET, JOAO_PHONE, MARIA_PHONE, Demo, make_tracker, responses, run_action, slots_of

BSUID = "BR.13491208655302741918"
UNKNOWN_BSUID = "BR.99999999999999999999"


def signed(conversation: str, subject: str, message_id: str, *, username: str | None = None,
           alt: tuple[str, ...] = ()) -> dict[str, Any]:
    """What the gateway attaches for a verified delivery (connectors/whatsapp/identity.attest)."""
    return attestation.sign(ATTESTATION_SECRET.encode(), channel="whatsapp", conversation_id=conversation,
                            subject=subject, message_id=message_id, alt=alt, username=username)


def turn(address: str, *, username: str | None = None, message_id: str = "m-1", subject: str | None = None,
         alt: tuple[str, ...] = (), metadata: dict[str, Any] | None = None, slots: dict[str, Any] | None = None,
         proof: Any = "sign") -> Any:
    conv = f"whatsapp:{address}"
    subject = subject or (f"phone:{address}" if address.isdigit() else f"bsuid:{address}")
    meta = dict(metadata or {})
    if proof == "sign":
        meta[attestation.METADATA_KEY] = signed(conv, subject, message_id, username=username, alt=alt)
    elif proof is not None:
        meta[attestation.METADATA_KEY] = proof
    return make_tracker("oi", "greet", sender=conv, channel="whatsapp", metadata=meta, slots=slots,
                        message_id=message_id)


def stored() -> list[tuple[int, str]]:
    from helpdesk.db import session_scope
    from helpdesk.models import Contact

    with session_scope() as s:
        return sorted((c.customer_id, c.value) for c in s.query(Contact).filter_by(kind="username"))


def test_the_signed_username_is_stored_for_the_customer_the_phone_identified(db: Demo) -> None:
    messages, events = run_action(ActionGreet(), turn(MARIA_PHONE, username="@Maria.Padaria"))
    assert responses(messages) == ["utter_greet_customer"]
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    assert stored() == [(db.maria_id, "maria.padaria")]
    # a later turn with the slots already set still records a change of handle (replaces it)
    run_action(ActionGreet(), turn(MARIA_PHONE, username="maria_souza", message_id="m-2",
                                   slots={"customer_id": str(db.maria_id)}))
    assert stored() == [(db.maria_id, "maria_souza")]
    # a turn without the field leaves it as it is
    run_action(ActionGreet(), turn(MARIA_PHONE, message_id="m-3"))
    assert stored() == [(db.maria_id, "maria_souza")]


def test_a_handle_signed_for_another_customer_moves_to_them(db: Demo) -> None:
    run_action(ActionGreet(), turn(MARIA_PHONE, username="padaria.central"))
    _, events = run_action(ActionGreet(), turn(JOAO_PHONE, username="padaria.central"))
    assert slots_of(events)["customer_id"] == str(db.joao_id)
    assert stored() == [(db.joao_id, "padaria.central")]


def test_a_username_only_turn_stores_it_on_the_customer_of_the_linked_bsuid(db: Demo) -> None:
    # seen once with the phone: the BSUID is linked; then only the BSUID, with the handle
    run_action(ActionGreet(), turn(MARIA_PHONE, alt=(f"bsuid:{BSUID}",)))
    _, events = run_action(ActionGreet(), turn(BSUID, username="maria.padaria", message_id="m-2"))
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    assert stored() == [(db.maria_id, "maria.padaria")]


def test_the_username_never_identifies_anyone(db: Demo) -> None:
    run_action(ActionGreet(), turn(MARIA_PHONE, username="maria.padaria"))
    # an unknown BSUID signed with Maria's handle: still an unknown username, asked who they are
    messages, events = run_action(ActionGreet(), turn(UNKNOWN_BSUID, username="maria.padaria", message_id="m-2"))
    assert responses(messages) == ["utter_greet_username", "utter_request_phone"]
    assert "customer_id" not in slots_of(events) or slots_of(events)["customer_id"] is None
    assert stored() == [(db.maria_id, "maria.padaria")]  # and the handle did not move to nobody
    # even a validly signed subject naming the handle is no identity kind: refused, anonymous
    as_subject = signed(f"whatsapp:{UNKNOWN_BSUID}", "username:maria.padaria", "m-3")
    _, events = run_action(ActionGreet(), turn(UNKNOWN_BSUID, message_id="m-3", proof=as_subject))
    assert slots_of(events).get("customer_id") is None
    assert stored() == [(db.maria_id, "maria.padaria")]


CLIENT_WRITTEN = {
    "metadata.whatsapp.username beside a real attestation": dict(
        address=JOAO_PHONE, metadata={"whatsapp": {"username": "intruso.x", "wa_id": JOAO_PHONE}}),
    "top-level metadata username": dict(address=JOAO_PHONE, metadata={"username": "intruso.x", "un": "intruso.x"}),
    "identity slots and a username slot": dict(address=JOAO_PHONE, slots={"username": "intruso.x",
                                                                          "whatsapp_username": "intruso.x"}),
}


@pytest.mark.parametrize("name", sorted(CLIENT_WRITTEN))
def test_a_client_written_username_is_ignored(db: Demo, name: str) -> None:
    kw = dict(CLIENT_WRITTEN[name])
    _, events = run_action(ActionGreet(), turn(kw.pop("address"), **kw))
    assert slots_of(events)["customer_id"] == str(db.joao_id)  # identified by the phone, as always
    assert stored() == []


def test_a_username_added_to_the_gateways_attestation_is_a_forgery(db: Demo) -> None:
    proof = signed(f"whatsapp:{JOAO_PHONE}", f"phone:{JOAO_PHONE}", "m-1")
    proof["un"] = "intruso.x"  # the client adds it: the signature no longer matches
    _, events = run_action(ActionGreet(), turn(JOAO_PHONE, proof=proof))
    assert slots_of(events).get("customer_id") is None and stored() == []
    # the REST channel with the gateway's metadata copied in: anonymous, nothing stored
    tracker = make_tracker("oi", "greet", sender="rest-7", channel="rest",
                           metadata={"whatsapp": {"username": "intruso.x", "wa_id": JOAO_PHONE}})
    _, events = run_action(ActionGreet(), tracker)
    assert slots_of(events).get("customer_id") is None and stored() == []


def test_a_malformed_username_is_ignored_and_the_customer_still_identified(
        db: Demo, caplog: pytest.LogCaptureFixture) -> None:
    from helpdesk.db import session_scope
    from helpdesk.services import customers

    run_action(ActionGreet(), turn(MARIA_PHONE, username="maria.padaria"))
    identity = attestation.Identity("whatsapp", f"whatsapp:{MARIA_PHONE}", "phone", MARIA_PHONE, "m-9", 0,
                                    (), "maria padaria<script>")
    with caplog.at_level(logging.WARNING, logger="actions.identification"), session_scope() as s:
        store_username(s, customers.find_by_phone(s, MARIA_PHONE), identity)
    assert stored() == [(db.maria_id, "maria.padaria")]  # nothing changed
    assert any("ignored a WhatsApp username" in r.getMessage() for r in caplog.records)
    # a website identity never stores one
    web = attestation.Identity("website", "web:s-1", "id", str(db.maria_id), "m-9", 0, (), "outro.handle")
    with session_scope() as s:
        store_username(s, customers.find_by_phone(s, MARIA_PHONE), web)
    assert stored() == [(db.maria_id, "maria.padaria")]
