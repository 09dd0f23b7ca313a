"""An unknown customer behind a username shares their phone (issue 15 item 2): the gateway's parser
and attestation. Only Meta's signed contacts message with ``origin: contact_request``, from the
username-only sender itself, makes the gateway attest the phone; every other shape stays a claim.
Fixtures: fixtures/whatsapp_username (README names Meta's pages)."""
from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (bot env)

from connectors.whatsapp.identity import attest, conversation_id, verified_shared_phone  # noqa: E402
from connectors.whatsapp.outbound import render  # noqa: E402
from connectors.whatsapp.parse import NotificationError, parse_notification  # noqa: E402
from connectors.whatsapp.parse.contacts import SHARED_CONTACT_TEXT, same_number  # noqa: E402
from username_support import KEY, PHONE, fixture, verified_identity  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BSUID = "BR.13491208655302741918"


def message_of(doc: Dict[str, Any]) -> Dict[str, Any]:
    return doc["entry"][0]["changes"][0]["value"]["messages"][0]


def proof_of(item: Any, conversation_address: str | None = None) -> Any:
    """The worker's attestation for an item, verified back: (kind, value, alt)."""
    identity = verified_identity(item, conversation_address)
    return identity.kind, identity.value, identity.alt


def test_the_contact_request_answer_attests_the_phone_beside_the_bsuid() -> None:
    [item] = parse_notification(fixture("contacts_contact_request")).items
    assert (item.address, item.action, item.text) == (BSUID, "rasa", SHARED_CONTACT_TEXT)
    shared = item.metadata["whatsapp"]["shared_contact"]
    assert (shared["origin"], shared["phone"], shared["verified"]) == ("contact_request", PHONE, True)
    # exactly what a delivery with both `from` and `from_user_id` attests: the BSUID gets linked
    assert proof_of(item) == ("phone", PHONE, (("bsuid", BSUID),))
    # Meta's own example: phones[].phone only (no wa_id) -> the digits of the phone
    [bare] = parse_notification(fixture("contacts_contact_request_no_wa_id")).items
    assert proof_of(bare) == ("phone", PHONE, (("bsuid", BSUID),))
    # origin inside the contact (as a BSP shows it) is read when the message has none
    [inner] = parse_notification(fixture("contacts_origin_in_contact")).items
    assert proof_of(inner) == ("phone", "16505551234", (("bsuid", BSUID),))
    # the username-only text before it: the BSUID alone
    [text] = parse_notification(fixture("text_username_only")).items
    assert proof_of(text) == ("bsuid", BSUID, ())


def test_a_contact_card_of_someone_elses_number_stays_a_claim() -> None:
    [item] = parse_notification(fixture("contacts_other")).items
    shared = item.metadata["whatsapp"]["shared_contact"]
    assert (item.text, shared["verified"], shared["phone"]) == (SHARED_CONTACT_TEXT, False, "5521999990000")
    assert "origin 'other'" in shared["reason"]
    assert proof_of(item) == ("bsuid", BSUID, ())  # the phone is not attested


def _variant(mutate: Any) -> Dict[str, Any]:
    doc = copy.deepcopy(fixture("contacts_contact_request"))
    mutate(message_of(doc), doc["entry"][0]["changes"][0]["value"])
    return doc


ATTACKS = {
    "no origin (a card shared before the request existed)": lambda m, v: m.pop("origin"),
    "origin in another case": lambda m, v: m.update(origin="CONTACT_REQUEST"),
    "origins disagree": lambda m, v: m["contacts"][0].update(origin="other"),
    "two contacts": lambda m, v: m["contacts"].append(copy.deepcopy(m["contacts"][0])),
    "two phones": lambda m, v: m["contacts"][0]["phones"].append({"phone": "+55 21 99999-0000", "type": "WORK"}),
    "no phone": lambda m, v: m["contacts"][0].update(phones=[]),
    "no contacts": lambda m, v: m.update(contacts=[]),
    "phone and wa_id differ": lambda m, v: m["contacts"][0]["phones"][0].update(wa_id="5521999990000"),
    "letters in the phone": lambda m, v: m["contacts"][0]["phones"][0].update(phone="+55 11 9876-ABCD", wa_id=None),
    "phone too short": lambda m, v: m["contacts"][0]["phones"][0].update(phone="12345", wa_id=None),
    "wa_id not digits": lambda m, v: m["contacts"][0]["phones"][0].update(wa_id="55119876x4321"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_shared_contact_that_proves_nothing_attests_only_the_bsuid(name: str) -> None:
    [item] = parse_notification(_variant(ATTACKS[name])).items
    shared = item.metadata["whatsapp"]["shared_contact"]
    assert item.action == "rasa" and shared["verified"] is False and shared["reason"], name
    assert proof_of(item) == ("bsuid", BSUID, ()), name


def test_a_shared_contact_from_another_bsuid_or_a_phone_sender_proves_nothing_for_this_one() -> None:
    # sent by another BSUID: it is that sender's item (their conversation), never the first one's
    other = _variant(lambda m, v: m.update(from_user_id="BR.99999999999999999999"))
    [item] = parse_notification(other).items
    assert item.address == "BR.99999999999999999999"
    wa = item.metadata["whatsapp"]
    assert verified_shared_phone(wa, BSUID) is None  # not attestable on the first BSUID's row
    # a row whose metadata names another BSUID than its address attests nothing more
    forged = dict(wa, user_id=BSUID)
    assert verified_shared_phone(forged, "BR.99999999999999999999") is None
    # a sender with a phone (from): a shared card is ignored, as before
    with_phone = _variant(lambda m, v: m.update({"from": "5511900000001"}))
    [ignored] = parse_notification(with_phone).items
    assert ignored.action == "ignore" and "phone is known" in ignored.reason
    # the sender contact carries the wa_id: the same
    with_wa_id = _variant(lambda m, v: v["contacts"][0].update(wa_id="5511900000001"))
    assert parse_notification(with_wa_id).items[0].action == "ignore"


def test_the_gateway_metadata_alone_never_makes_a_proof() -> None:
    """verified_shared_phone reads what the parser wrote in the inbox row; anything else is nothing."""
    good = {"user_id": BSUID, "shared_contact": {"verified": True, "phone": PHONE}}
    assert verified_shared_phone(good, BSUID) == PHONE
    for bad in (None, "x", {}, {**good, "shared_contact": {"verified": "true", "phone": PHONE}},
                {**good, "shared_contact": {"verified": True, "phone": "+5511987654321"}},
                {**good, "shared_contact": {"verified": True, "phone": ["5511987654321"]}},
                {**good, "wa_id": "5511900000001"}, {**good, "user_id": None}):
        assert verified_shared_phone(bad, BSUID) is None, bad
    assert verified_shared_phone(good, PHONE) is None  # a phone conversation: nothing to prove
    assert verified_shared_phone(good, "65998849469@lid") is None  # Z-API: no such message
    # a phone is never attested on a phone or LID address, whatever the caller passes
    proof = attest(KEY, conversation_id(PHONE), PHONE, "wamid.A", shared_phone="5521999990000")
    assert proof["sub"] == f"phone:{PHONE}"
    proof = attest(KEY, conversation_id("1@lid"), "1@lid", "wamid.B", shared_phone="5521999990000")
    assert proof["sub"] == "lid:1@lid"


def test_after_a_bsuid_change_the_shared_phone_vouches_for_both_bsuids() -> None:
    [item] = parse_notification(fixture("contacts_contact_request")).items
    assert proof_of(item, conversation_address="BR.1111") == ("phone", PHONE, (("bsuid", BSUID), ("bsuid", "BR.1111")))


@pytest.mark.parametrize("bad", [
    lambda m: m.update(origin=5),
    lambda m: m.update(contacts={"phones": []}),
    lambda m: m["contacts"][0].update(phones={"phone": PHONE}),
    lambda m: m["contacts"][0]["phones"][0].update(phone=5511987654321),
    lambda m: m["contacts"][0]["phones"][0].update(wa_id=["5511987654321"]),
    lambda m: m["contacts"][0].update(origin=["contact_request"]),
])
def test_a_malformed_contacts_message_is_rejected_whole(bad: Any) -> None:
    doc = copy.deepcopy(fixture("contacts_contact_request"))
    bad(message_of(doc))
    with pytest.raises(NotificationError):
        parse_notification(doc)


def test_the_request_goes_out_as_metas_interactive_request_contact_info() -> None:
    domain = yaml.safe_load((REPO / "domain.yml").read_text(encoding="utf-8"))
    [variant] = domain["responses"]["utter_request_phone"]
    [out] = render({"custom": variant["custom"]})
    expected = fixture("request_contact_info_send")
    assert out.body == {k: v for k, v in expected.items() if k not in ("messaging_product", "recipient_type", "recipient")}
    assert len(out.body["interactive"]["body"]["text"]) <= 1024


def test_brazils_ninth_digit_is_the_same_number() -> None:
    assert same_number("5511987654321", "551187654321") and same_number("551187654321", "5511987654321")
    assert not same_number("5511987654321", "5511987654320")
    assert not same_number("16505551234", "1650555123")
