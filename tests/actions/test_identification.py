"""Identification: only a valid attestation for this turn identifies; CNPJ claims; payloads never set identity."""
from __future__ import annotations

import time

import jwt

from actions.identification import ActionContinueAsProspect, ActionGreet, ActionIdentifyByCnpj

from .conftest import (
    JOAO_CNPJ, JOAO_PHONE, JWT_SECRET, MARIA_EMAIL, MARIA_PHONE, Demo, attestation_for, make_tracker, responses,
    run_action, slots_of,
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


def test_forged_input_channel_without_attestation_is_anonymous(db: Demo) -> None:
    # What a REST client could write: the WhatsApp conversation id and input_channel "whatsapp".
    for sender in (f"whatsapp:{MARIA_PHONE}", MARIA_PHONE):
        tracker = make_tracker("oi", sender=sender, channel="rest")
        tracker.events[-1]["input_channel"] = "whatsapp"
        tracker.latest_message["input_channel"] = "whatsapp"
        messages, events = run_action(ActionGreet(), tracker)
        assert "customer_id" not in slots_of(events)
        assert responses(messages) == ["utter_greet_visitor"]


def test_unknown_whatsapp_number_is_a_visitor(db: Demo) -> None:
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender="5531900001111", channel="whatsapp"))
    assert slots_of(events) == {"identity_checked": True}
    assert responses(messages) == ["utter_greet_visitor"]


def test_website_subject_by_customer_id(db: Demo) -> None:
    tracker = make_tracker("oi", sender="web:s1", channel="website", attest=f"id:{db.maria_id}")
    messages, events = run_action(ActionGreet(), tracker)
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    assert messages[0]["customer_name"] == "Maria"


def test_website_subject_by_email(db: Demo) -> None:
    tracker = make_tracker("oi", sender="web:s1", channel="website", attest=f"email:{MARIA_EMAIL}")
    _, events = run_action(ActionGreet(), tracker)
    assert slots_of(events)["customer_id"] == str(db.maria_id)


def test_a_token_in_metadata_is_not_an_identity(db: Demo) -> None:
    # Even a valid token: only the connector verifies tokens, and it attests the subject.
    meta = {"auth_token": token({"sub": str(db.maria_id), "name": "Maria"})}
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender="web:s1", channel="website", metadata=meta))
    assert "customer_id" not in slots_of(events)
    assert responses(messages) == ["utter_greet_visitor"]


def test_attestations_that_do_not_prove_this_turn_are_refused(db: Demo) -> None:
    from atende_contract import attestation

    conv = f"whatsapp:{MARIA_PHONE}"
    good = attestation_for(conv, f"phone:{MARIA_PHONE}", "m-1")
    forged_sig = dict(good, sub=f"phone:{JOAO_PHONE}")
    cases = {
        "other key": attestation_for(conv, f"phone:{MARIA_PHONE}", "m-1", key="another-secret-that-is-32-bytes-long!!"),
        "edited subject": forged_sig,
        "other conversation": attestation_for(f"whatsapp:{JOAO_PHONE}", f"phone:{MARIA_PHONE}", "m-1"),
        "other message": attestation_for(conv, f"phone:{MARIA_PHONE}", "m-0"),
        "stale": attestation_for(conv, f"phone:{MARIA_PHONE}", "m-1", now=time.time() - 3600),
        "not a dict": "x",
    }
    for name, proof in cases.items():
        tracker = make_tracker("oi", sender=conv, channel="whatsapp",
                               metadata={attestation.METADATA_KEY: proof})
        messages, events = run_action(ActionGreet(), tracker)
        assert "customer_id" not in slots_of(events), name
        assert responses(messages) == ["utter_greet_visitor"], name
    # A website attestation never identifies a WhatsApp conversation (namespace = channel).
    web = attestation_for(conv, f"id:{db.maria_id}", "m-1", channel="website")
    tracker = make_tracker("oi", sender=conv, channel="website", metadata={attestation.METADATA_KEY: web})
    assert "customer_id" not in slots_of(run_action(ActionGreet(), tracker)[1])


def test_identity_slot_carried_over_is_cleared_without_attestation(db: Demo) -> None:
    slots = {"customer_id": str(db.maria_id), "customer_name": "Maria", "customer_products": ["erp"],
             "identity_checked": True}
    # e.g. the website token expired: the connector no longer attests this turn.
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender="web:s1", channel="website", slots=slots))
    assert {k: v for k, v in slots_of(events).items()} == {
        "customer_id": None, "customer_name": None, "customer_products": None}
    assert responses(messages) == ["utter_greet_visitor"]


def test_a_bsuid_seen_with_the_phone_identifies_the_customer_behind_a_username(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.models import Contact

    bsuid = "BR.1a2b3c4d5e"
    # Meta sent both the phone and the user id: the connector attests the phone, with the BSUID.
    _, events = run_action(ActionGreet(), make_tracker("oi", sender=MARIA_PHONE, channel="whatsapp",
                                                       attest_alt=(f"bsuid:{bsuid}",)))
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    # Later only the BSUID comes (the customer adopted a username): still Maria, greeted by name.
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender=f"whatsapp:{bsuid}", channel="whatsapp",
                                                              attest=f"bsuid:{bsuid}"))
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    assert messages[0]["response"] == "utter_greet_customer" and messages[0]["customer_name"] == "Maria"
    # Seen later with João's phone (the BSUID's owner changed number hands): the link moves.
    run_action(ActionGreet(), make_tracker("oi", sender=JOAO_PHONE, channel="whatsapp",
                                           attest_alt=(f"bsuid:{bsuid}",)))
    with session_scope() as s:
        owners = [c.customer_id for c in s.query(Contact).filter_by(kind="bsuid", value=bsuid)]
    assert owners == [db.joao_id]


def test_an_unlinked_or_unattested_bsuid_is_a_visitor(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.models import Contact

    messages, events = run_action(ActionGreet(), make_tracker("oi", sender="whatsapp:BR.unknown1",
                                                              channel="whatsapp", attest="bsuid:BR.unknown1"))
    # unknown behind a username: asked who they are (tests/actions/test_username_identification.py)
    assert "customer_id" not in slots_of(events) and responses(messages) == ["utter_greet_username",
                                                                             "utter_request_phone"]
    # a BSUID only in client-writable metadata (not attested) links nothing
    run_action(ActionGreet(), make_tracker("oi", sender=MARIA_PHONE, channel="whatsapp",
                                           metadata={"whatsapp": {"user_id": "BR.forged99"}}))
    with session_scope() as s:
        assert s.query(Contact).filter_by(kind="bsuid").count() == 0


def test_a_changed_bsuid_continues_the_customer_of_the_first_one(db: Demo) -> None:
    """Meta's signed user_changed_user_id: the conversation began on the first BSUID, and the
    connector attests the new one with ``alt: bsuid:<first>``. The action server finds the customer
    by the first BSUID and links the new one; the first stays linked (Meta may still send it)."""
    from helpdesk.db import session_scope
    from helpdesk.models import Contact
    from helpdesk.services import customers

    first, new = "BR.first00001", "BR.second0002"
    with session_scope() as s:
        customers.link_whatsapp_id(s, db.maria_id, "bsuid", first)
    conv = f"whatsapp:{first}"
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender=conv, channel="whatsapp",
                                                              attest=f"bsuid:{new}", attest_alt=(f"bsuid:{first}",)))
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    assert messages[0]["response"] == "utter_greet_customer" and messages[0]["customer_name"] == "Maria"
    with session_scope() as s:
        linked = sorted(c.value for c in s.query(Contact).filter_by(kind="bsuid", customer_id=db.maria_id))
    assert linked == [first, new]
    # From now on the new BSUID alone identifies her (a conversation of its own).
    _, events = run_action(ActionGreet(), make_tracker("oi", sender=f"whatsapp:{new}", channel="whatsapp",
                                                       attest=f"bsuid:{new}"))
    assert slots_of(events)["customer_id"] == str(db.maria_id)


def test_a_bsuid_change_from_an_unlinked_or_mismatched_id_identifies_nobody(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.models import Contact

    conv = "whatsapp:BR.nobody0001"
    cases = {
        "first BSUID linked to nobody": ("bsuid:BR.newid00001", ("bsuid:BR.nobody0001",)),
        # a phone among the alternatives of a BSUID subject is not a number change: never followed
        "phone beside a BSUID subject": ("bsuid:BR.newid00002", (f"phone:{MARIA_PHONE}",)),
        "malformed first BSUID": ("bsuid:BR.newid00003", ("bsuid:-bad id",)),
    }
    for name, (subject, alt) in cases.items():
        messages, events = run_action(ActionGreet(), make_tracker("oi", sender=conv, channel="whatsapp",
                                                                  attest=subject, attest_alt=alt))
        assert "customer_id" not in slots_of(events), name
        assert responses(messages) == ["utter_greet_username", "utter_request_phone"], name  # unknown
    with session_scope() as s:
        assert s.query(Contact).filter_by(kind="bsuid").count() == 0


def test_a_changed_number_continues_the_customer_and_moves_the_phone(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.models import Contact

    new = "5511955554444"
    conv = f"whatsapp:{MARIA_PHONE}"  # the conversation of the first number goes on
    _, events = run_action(ActionGreet(), make_tracker("oi", sender=conv, channel="whatsapp",
                                                       attest=f"phone:{new}", attest_alt=(f"phone:{MARIA_PHONE}",)))
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    with session_scope() as s:
        phones = [c.value for c in s.query(Contact).filter_by(kind="phone", customer_id=db.maria_id)]
    assert phones == [new]
    # the old (recyclable) number no longer identifies her
    _, events = run_action(ActionGreet(), make_tracker("oi", sender=MARIA_PHONE, channel="whatsapp"))
    assert "customer_id" not in slots_of(events)


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


# ---- Z-API LID (contacts as `…@lid`, a stable chatLid) ------------------------------------------

LID = "81896604192873@lid"


def lid_links() -> list[tuple[int, str]]:
    from helpdesk.db import session_scope
    from helpdesk.models import Contact

    with session_scope() as s:
        return [(c.customer_id, c.value) for c in s.query(Contact).filter_by(kind="lid").order_by(Contact.id)]


def test_a_lid_seen_with_the_phone_identifies_the_customer_when_only_the_lid_comes(db: Demo) -> None:
    # Z-API sent phone and chatLid (token-checked webhook): the connector attests the phone, alt lid.
    _, events = run_action(ActionGreet(), make_tracker("oi", sender=MARIA_PHONE, channel="whatsapp",
                                                       attest_alt=(f"lid:{LID}",)))
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    assert lid_links() == [(db.maria_id, LID)]
    # Later Z-API hides the number: phone = chatLid = the LID, a conversation of its own.
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender=f"whatsapp:{LID}", channel="whatsapp",
                                                              attest=f"lid:{LID}"))
    assert slots_of(events)["customer_id"] == str(db.maria_id)
    assert messages[0]["response"] == "utter_greet_customer" and messages[0]["customer_name"] == "Maria"


def test_a_lid_in_an_unexpected_form_links_and_identifies_nobody(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.services import customers

    for bad in ("abc@lid", "1@lid@lid", "81896604192873@LID", "81896604192873", "81896604192873@s.whatsapp.net",
                "120363019502650977-group", "8189@lid.x"):
        _, events = run_action(ActionGreet(), make_tracker("oi", sender=MARIA_PHONE, channel="whatsapp",
                                                           attest_alt=(f"lid:{bad}",)))
        assert slots_of(events)["customer_id"] == str(db.maria_id), bad  # the phone still identifies her
    assert lid_links() == []
    # a malformed LID linked by some other path is still never taken as an identity
    with session_scope() as s:
        customers.link_whatsapp_id(s, db.maria_id, "lid", "1@lid@lid")
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender="whatsapp:1@lid@lid", channel="whatsapp",
                                                              attest="lid:1@lid@lid"))
    assert "customer_id" not in slots_of(events) and responses(messages) == ["utter_greet_visitor"]


def test_a_lid_claimed_where_a_client_writes_links_nothing(db: Demo) -> None:
    # metadata a REST client (or the customer's text) may carry: never attested, so never linked
    for meta in ({"whatsapp": {"lid": LID, "provider": "zapi"}}, {"chatLid": LID, "senderLid": LID}):
        run_action(ActionGreet(), make_tracker(f"meu lid é {LID}", sender=MARIA_PHONE, channel="whatsapp",
                                               metadata=meta))
    assert lid_links() == []
    # a REST turn on the LID's conversation id, without the connector's attestation: anonymous
    tracker = make_tracker("oi", sender=f"whatsapp:{LID}", channel="rest",
                           metadata={"whatsapp": {"lid": LID}})
    messages, events = run_action(ActionGreet(), tracker)
    assert "customer_id" not in slots_of(events) and responses(messages) == ["utter_greet_visitor"]


def test_a_lid_only_message_from_an_unknown_contact_is_a_visitor(db: Demo) -> None:
    messages, events = run_action(ActionGreet(), make_tracker("oi", sender="whatsapp:65998849469@lid",
                                                              channel="whatsapp", attest="lid:65998849469@lid"))
    assert slots_of(events) == {"identity_checked": True}
    assert responses(messages) == ["utter_greet_visitor"]
    assert lid_links() == []  # a LID alone proves no phone: nothing to link it to


# ---- tickets.identified_by ---------------------------------------------------------------------

def test_each_ticket_records_which_identity_identified_it(db: Demo) -> None:
    from actions.tickets import ActionOpenTicket
    from helpdesk.db import session_scope
    from helpdesk.models import Ticket
    from helpdesk.services import customers

    with session_scope() as s:
        customers.link_whatsapp_id(s, db.maria_id, "bsuid", "BR.maria00001")
        customers.link_whatsapp_id(s, db.maria_id, "lid", LID)
    slots = {"ticket_description": "PDV não abre", "ticket_module": "pdv", "ticket_type": "erro"}
    claim = {**slots, "claimed_customer_id": str(db.joao_id), "claimed_cnpj": "45.723.174/0001-99",
             "identity_checked": True}
    cases = [
        (make_tracker("erro", sender=MARIA_PHONE, channel="whatsapp", slots=slots), "phone", db.maria_id),
        (make_tracker("erro", sender="whatsapp:BR.maria00001", channel="whatsapp", attest="bsuid:BR.maria00001",
                      slots=slots), "bsuid", db.maria_id),
        (make_tracker("erro", sender=f"whatsapp:{LID}", channel="whatsapp", attest=f"lid:{LID}", slots=slots),
         "lid", db.maria_id),
        (make_tracker("erro", sender="web:s9", channel="website", attest=f"id:{db.maria_id}", slots=slots),
         "website_token", db.maria_id),
        (make_tracker("erro", sender="web:s10", channel="website", attest=f"email:{MARIA_EMAIL}", slots=slots),
         "website_token", db.maria_id),
        (make_tracker("erro", sender="web:s11", channel="website", slots=claim), "claim", db.joao_id),
        (make_tracker("erro", sender="web:s12", channel="website", slots=slots), None, None),
        # a verified slot carried over without this turn's attestation proves nothing
        (make_tracker("erro", sender="web:s13", channel="website",
                      slots={**slots, "customer_id": str(db.maria_id)}), None, None),
    ]
    for tracker, expected, customer in cases:
        run_action(ActionOpenTicket(), tracker)
        with session_scope() as s:
            [ticket] = s.query(Ticket).filter_by(conversation_id=tracker.sender_id).all()
            assert (ticket.identified_by, ticket.customer_id) == (expected, customer), tracker.sender_id


def test_identified_by_refuses_values_outside_its_vocabulary(db: Demo) -> None:
    import pytest

    from helpdesk.db import session_scope
    from helpdesk.errors import InvalidInput
    from helpdesk.models import Ticket
    from helpdesk.services import identities

    for bad in ("5511987654321", "BR.maria00001", "token", ""):
        with pytest.raises(InvalidInput):
            with session_scope() as s:
                identities.set_identified_by(s, db.maria_ticket, bad)
    with session_scope() as s:
        assert s.get(Ticket, db.maria_ticket).identified_by is None
