"""Unknown WhatsApp customers behind a username (issue 15 item 2), on the action server: the bot
asks who they are (the CNPJ, or the phone through Meta's contact request); only the gateway's
attestation of a shared phone beside the BSUID identifies and links them. Typed digits, a shared
card the gateway did not attest, metadata and slots a client wrote identify no one."""
from __future__ import annotations

from typing import Any

import pytest

from actions.identification import ActionGreet, ActionIdentifyByCnpj, ActionPhoneClaim, ActionSharedContact

from .conftest import MARIA_CNPJ, MARIA_PHONE, Demo, make_tracker, responses, run_action, slots_of

BSUID = "BR.13491208655302741918"
CONV = f"whatsapp:{BSUID}"


def linked(kind: str = "bsuid") -> list[tuple[str, int]]:
    from helpdesk.db import session_scope
    from helpdesk.models import Contact

    with session_scope() as s:
        return sorted((c.value, c.customer_id) for c in s.query(Contact).filter_by(kind=kind))


def username_turn(text: str, intent: str, **kw: Any) -> Any:
    kw.setdefault("attest", f"bsuid:{BSUID}")
    return make_tracker(text, intent, sender=CONV, channel="whatsapp", **kw)


def test_an_unknown_username_is_asked_for_the_cnpj_or_the_phone_through_meta(db: Demo) -> None:
    messages, events = run_action(ActionGreet(), username_turn("oi", "greet"))
    assert responses(messages) == ["utter_greet_username", "utter_request_phone"]
    assert "customer_id" not in slots_of(events)
    # a phone sender or a linked BSUID is greeted as before; an anonymous REST visitor too
    messages, _ = run_action(ActionGreet(), make_tracker("oi", sender=MARIA_PHONE, channel="whatsapp"))
    assert responses(messages) == ["utter_greet_customer"]
    messages, _ = run_action(ActionGreet(), make_tracker("oi", sender="rest-1"))
    assert responses(messages) == ["utter_greet_visitor"]


def test_the_phone_shared_through_metas_request_links_the_bsuid(db: Demo) -> None:
    # the gateway attests phone:<shared> beside bsuid:<sender> (connectors/whatsapp/parse/contacts.py)
    tracker = username_turn("/shared_contact", "shared_contact", attest=f"phone:{MARIA_PHONE}",
                            attest_alt=(f"bsuid:{BSUID}",))
    messages, events = run_action(ActionSharedContact(), tracker)
    assert responses(messages) == ["utter_shared_contact_verified"]
    assert messages[0].get("customer_name") == "Maria"
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    assert linked() == [(BSUID, db.maria_id)]
    # next turn, only the BSUID: recognised
    messages, events = run_action(ActionGreet(), username_turn("oi", "greet", message_id="m-2"))
    assert responses(messages) == ["utter_greet_customer"] and slots_of(events)["customer_id"] == str(db.maria_id)


def test_a_proven_phone_that_is_no_customers_links_nothing(db: Demo) -> None:
    tracker = username_turn("/shared_contact", "shared_contact", attest="phone:5548991234567",
                            attest_alt=(f"bsuid:{BSUID}",))
    messages, events = run_action(ActionSharedContact(), tracker)
    assert responses(messages) == ["utter_shared_contact_unknown"]
    assert "customer_id" not in slots_of(events) and linked() == []


ATTACKS = {
    # what the gateway sends when the card proves nothing (origin other, someone else's number,
    # another BSUID's card...): the BSUID alone
    "unverified card (gateway attests the BSUID only)": dict(attest=f"bsuid:{BSUID}"),
    # the gateway's shared_contact metadata copied into a message by a client (REST, no proof)
    "client-written shared_contact metadata": dict(attest=None, channel="rest", sender="rest-9", metadata={
        "whatsapp": {"user_id": BSUID, "shared_contact": {"verified": True, "phone": MARIA_PHONE}}}),
    # the same metadata on the WhatsApp conversation, beside the BSUID's real attestation
    "forged metadata beside the BSUID's attestation": dict(metadata={
        "whatsapp": {"user_id": BSUID, "wa_id": MARIA_PHONE,
                     "shared_contact": {"verified": True, "phone": MARIA_PHONE}}}),
    # the identity slots a client might try to carry
    "identity slots set by the client": dict(slots={"customer_id": "1", "customer_name": "Maria"}),
    # an attestation of the phone signed for another conversation (replayed)
    "phone attestation of another conversation": dict(attest=None, metadata={"atende_attestation": None}),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_shared_contact_without_the_gateways_proof_identifies_no_one(db: Demo, name: str) -> None:
    kw = dict(ATTACKS[name])
    sender = kw.pop("sender", CONV)
    channel = kw.pop("channel", "whatsapp")
    if name == "phone attestation of another conversation":
        from .conftest import attestation_for

        kw["metadata"] = {"atende_attestation": attestation_for(f"whatsapp:{MARIA_PHONE}", f"phone:{MARIA_PHONE}",
                                                                 "m-1", alt=(f"bsuid:{BSUID}",))}
    if "attest" not in kw:
        kw["attest"] = f"bsuid:{BSUID}"
    tracker = make_tracker("/shared_contact", "shared_contact", sender=sender, channel=channel, **kw)
    messages, events = run_action(ActionSharedContact(), tracker)
    assert responses(messages)[0] == "utter_shared_contact_unverified", name
    assert slots_of(events).get("customer_id") is None, name
    assert linked() == [], name


def test_typed_phone_digits_are_a_claim_that_only_guides(db: Demo) -> None:
    for text in (f"meu número é +{MARIA_PHONE}", "meu celular é (11) 98765-4321", "5511987654321"):
        messages, events = run_action(ActionPhoneClaim(), username_turn(text, "inform_phone"))
        # the same answer for a customer's number and anyone's: no lookup, no identity
        assert responses(messages) == ["utter_phone_typed_whatsapp", "utter_request_phone"], text
        assert slots_of(events).get("customer_id") is None and linked() == []
    messages, _ = run_action(ActionPhoneClaim(), username_turn("meu número é 48 99123-4567", "inform_phone"))
    assert responses(messages) == ["utter_phone_typed_whatsapp", "utter_request_phone"]
    # on the website (or REST): no WhatsApp request, the same claim answer
    messages, events = run_action(ActionPhoneClaim(), make_tracker(f"meu número é {MARIA_PHONE}", "inform_phone"))
    assert responses(messages) == ["utter_phone_typed"] and slots_of(events).get("customer_id") is None
    # a phone typed as a "/inform_phone" payload with entities or slots changes nothing either
    messages, events = run_action(ActionPhoneClaim(), username_turn(
        '/inform_phone{"customer_id": "1"}', "inform_phone", slots={"customer_id": "1"}))
    assert slots_of(events).get("customer_id") is None and linked() == []


def test_the_cnpj_stays_an_unverified_claim_for_a_username(db: Demo) -> None:
    messages, events = run_action(ActionIdentifyByCnpj(), username_turn(f"o cnpj é {MARIA_CNPJ}", "inform_cnpj"))
    assert responses(messages) == ["utter_cnpj_noted"]
    slots = slots_of(events)
    assert slots["claimed_customer_id"] == str(db.maria_id) and slots.get("customer_id") is None
    assert linked() == []  # a claim links nothing


def test_a_malformed_or_bad_attestation_on_a_shared_contact_is_anonymous(db: Demo) -> None:
    for metadata in ({"atende_attestation": "garbage"}, {"atende_attestation": {"v": 1, "sub": "phone:1"}},
                     {"atende_attestation": [1, 2]}):
        tracker = make_tracker("/shared_contact", "shared_contact", sender=CONV, channel="whatsapp",
                               metadata=metadata)
        messages, events = run_action(ActionSharedContact(), tracker)
        assert responses(messages) == ["utter_shared_contact_unverified", "utter_request_phone"]
        assert slots_of(events).get("customer_id") is None
    assert linked() == []
