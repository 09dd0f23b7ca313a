"""Identification: WhatsApp phone, website JWT, CNPJ; payloads never set identity."""
from __future__ import annotations

import time

import jwt

from actions.identification import ActionContinueAsProspect, ActionGreet, ActionIdentifyByCnpj

from .conftest import (
    JOAO_CNPJ, JWT_SECRET, MARIA_EMAIL, MARIA_PHONE, Demo, make_tracker, responses, run_action, slots_of,
)


def token(claims: dict[str, object], secret: str = JWT_SECRET) -> str:
    return jwt.encode({"exp": int(time.time()) + 600, **claims}, secret, algorithm="HS256")


def test_whatsapp_customer_greeted_by_name(db: Demo) -> None:
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender=MARIA_PHONE, channel="whatsapp"))
    slots = slots_of(events)
    assert slots["customer_id"] == str(db.maria_id)
    assert slots["customer_name"] == "Maria"
    assert slots["customer_products"] == ["erp"]
    assert messages[0]["response"] == "utter_greet_customer" and messages[0]["customer_name"] == "Maria"


def test_whatsapp_ninth_digit_variant_is_found(db: Demo) -> None:
    _, events = run_action(ActionGreet(), make_tracker("oi", sender="551187654321", channel="whatsapp"))
    assert slots_of(events)["customer_id"] == str(db.maria_id)


def test_phone_sender_id_on_another_channel_does_not_identify(db: Demo) -> None:
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender=MARIA_PHONE, channel="website"))
    assert "customer_id" not in slots_of(events)
    assert responses(messages) == ["utter_greet_visitor"]


def test_unknown_whatsapp_number_is_a_visitor(db: Demo) -> None:
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender="5531900001111", channel="whatsapp"))
    assert slots_of(events) == {"identity_checked": True}
    assert responses(messages) == ["utter_greet_visitor"]


def test_website_token_by_customer_id(db: Demo) -> None:
    meta = {"auth_token": token({"sub": str(db.maria_id), "name": "Maria"})}
    messages, events = run_action(ActionGreet(), make_tracker("oi", channel="website", metadata=meta))
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    assert messages[0]["customer_name"] == "Maria"


def test_website_token_by_email(db: Demo) -> None:
    meta = {"auth_token": token({"email": MARIA_EMAIL})}
    _, events = run_action(ActionGreet(), make_tracker("oi", channel="website", metadata=meta))
    assert slots_of(events)["customer_id"] == str(db.maria_id)


def test_forged_or_expired_token_does_not_identify(db: Demo) -> None:
    forged = token({"sub": str(db.maria_id)}, secret="wrong-secret-also-32-bytes-long-xxxxxx")
    expired = jwt.encode({"sub": str(db.maria_id), "exp": int(time.time()) - 10}, JWT_SECRET, algorithm="HS256")
    unsigned = jwt.encode({"sub": str(db.maria_id), "exp": int(time.time()) + 60}, None, algorithm="none")
    for bad in (forged, expired, unsigned, "not-a-jwt", 12345):
        messages, events = run_action(
            ActionGreet(), make_tracker("oi", channel="website", metadata={"auth_token": bad}))
        assert "customer_id" not in slots_of(events), bad
        assert responses(messages) == ["utter_greet_visitor"]


def test_metadata_claims_without_token_do_not_identify(db: Demo) -> None:
    meta = {"customer_id": str(db.maria_id), "sub": str(db.maria_id), "email": MARIA_EMAIL}
    _, events = run_action(ActionGreet(), make_tracker("oi", channel="website", metadata=meta))
    assert "customer_id" not in slots_of(events)


def test_valid_cnpj_is_an_unverified_claim(db: Demo) -> None:
    formatted = f"{JOAO_CNPJ[:2]}.{JOAO_CNPJ[2:5]}.{JOAO_CNPJ[5:8]}/{JOAO_CNPJ[8:12]}-{JOAO_CNPJ[12:]}"
    messages, events = run_action(ActionIdentifyByCnpj(), make_tracker(f"meu cnpj é {formatted}", "inform_cnpj"))
    slots = slots_of(events)
    assert slots["claimed_customer_id"] == str(db.joao_id) and slots["claimed_cnpj"] == formatted
    # The claim never sets the verified identity, and the answer shows nothing of the customer.
    assert not {"customer_id", "customer_name", "customer_products"} & set(slots)
    assert responses(messages) == ["utter_cnpj_noted"] and messages[0]["cnpj"] == formatted
    assert "João" not in str(messages) and "Lima" not in str(messages)


def test_registered_and_unknown_cnpj_get_the_same_answer(db: Demo) -> None:
    from .conftest import make_cnpj

    unknown = make_cnpj("999888770001")
    known_msgs, _ = run_action(ActionIdentifyByCnpj(), make_tracker(JOAO_CNPJ, "inform_cnpj"))
    unknown_msgs, events = run_action(ActionIdentifyByCnpj(), make_tracker(unknown, "inform_cnpj"))
    assert responses(known_msgs) == responses(unknown_msgs) == ["utter_cnpj_noted"]
    assert slots_of(events)["claimed_customer_id"] is None


def test_verified_customer_typing_a_cnpj_stays_verified(db: Demo) -> None:
    tracker = make_tracker(JOAO_CNPJ, "inform_cnpj", sender=MARIA_PHONE, channel="whatsapp")
    messages, events = run_action(ActionIdentifyByCnpj(), tracker)
    assert responses(messages) == ["utter_cnpj_already_verified"]
    slots = slots_of(events)
    assert slots["customer_id"] == str(db.maria_id) and "claimed_customer_id" not in slots


def test_cnpj_with_bad_check_digits_is_refused(db: Demo) -> None:
    bad = JOAO_CNPJ[:12] + ("00" if JOAO_CNPJ[12:] != "00" else "11")
    messages, events = run_action(ActionIdentifyByCnpj(), make_tracker(bad, "inform_cnpj"))
    assert events == []
    assert responses(messages) == ["utter_invalid_cnpj"]


def test_cnpj_by_payload_is_not_accepted(db: Demo) -> None:
    text = '/inform_cnpj{"cnpj": "%s"}' % JOAO_CNPJ
    ents = [{"entity": "cnpj", "value": JOAO_CNPJ}]
    messages, events = run_action(ActionIdentifyByCnpj(), make_tracker(text, "inform_cnpj", entities=ents))
    assert events == []
    assert responses(messages) == ["utter_cnpj_type_it"]


def test_continue_as_prospect(db: Demo) -> None:
    messages, events = run_action(ActionContinueAsProspect(), make_tracker("sou visitante", "continue_as_prospect"))
    assert responses(messages) == ["utter_prospect"]
    assert slots_of(events)["identity_checked"] is True


def test_bare_cnpj_missed_by_nlu_is_still_a_claim(db: Demo) -> None:
    from actions.guard import ActionFallback

    formatted = f"{JOAO_CNPJ[:2]}.{JOAO_CNPJ[2:5]}.{JOAO_CNPJ[5:8]}/{JOAO_CNPJ[8:12]}-{JOAO_CNPJ[12:]}"
    for text in (JOAO_CNPJ, formatted):
        messages, events = run_action(ActionFallback(), make_tracker(text, "nlu_fallback"))
        assert responses(messages) == ["utter_cnpj_noted"], text
        assert slots_of(events)["claimed_customer_id"] == str(db.joao_id)
    # other digits are not taken for a CNPJ
    messages, _ = run_action(ActionFallback(), make_tracker("123456789", "nlu_fallback"))
    assert responses(messages) == ["utter_rephrase"]
