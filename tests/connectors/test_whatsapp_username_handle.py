"""The sender's WhatsApp username (Meta's ``contacts[].profile.username``) in the gateway: parsed in
its canonical form, signed inside the turn's attestation (``un``) beside whichever identity is
attested, never an address or an identity; one out of form is dropped with its reason logged and
the message is handled as without it. Fixtures: fixtures/whatsapp_username (README names the pages)."""
from __future__ import annotations

import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (bot env)

from connectors.whatsapp.identity import attest, conversation_id  # noqa: E402
from connectors.whatsapp.parse import parse_notification  # noqa: E402
from username_support import KEY, PHONE, fixture  # noqa: E402
from username_support import verified_identity as identity_of  # noqa: E402

BSUID = "BR.1502576394655843"


def contact_of(doc: Dict[str, Any]) -> Dict[str, Any]:
    return doc["entry"][0]["changes"][0]["value"]["contacts"][0]


def test_the_username_of_a_phone_sender_is_signed_beside_the_phone() -> None:
    [item] = parse_notification(fixture("text_phone_and_username")).items
    assert (item.address, item.action, item.text) == (PHONE, "rasa", "bom dia")
    assert item.metadata["whatsapp"]["username"] == "maria.padaria"  # canonical: no '@', lower case
    ident = identity_of(item)
    assert (ident.kind, ident.value, ident.alt, ident.username) == ("phone", PHONE, (("bsuid", BSUID),),
                                                                    "maria.padaria")


def test_the_username_of_a_username_only_sender_is_signed_beside_the_bsuid_never_as_the_address() -> None:
    [item] = parse_notification(fixture("text_username_only")).items
    assert item.address == "BR.13491208655302741918" and item.metadata["whatsapp"]["username"] == "ana.padaria"
    ident = identity_of(item)
    assert (ident.kind, ident.value, ident.username) == ("bsuid", "BR.13491208655302741918", "ana.padaria")
    assert "ana.padaria" not in json.dumps([ident.kind, ident.value, ident.alt])


def test_a_shared_contact_turn_carries_the_username_too() -> None:
    doc = fixture("contacts_contact_request")
    contact_of(doc).setdefault("profile", {})["username"] = "ana.padaria"
    [item] = parse_notification(doc).items
    ident = identity_of(item)
    assert ident.kind == "phone" and ident.username == "ana.padaria"


def test_without_a_username_the_attestation_has_no_field() -> None:
    doc = fixture("text_phone_and_username")
    del contact_of(doc)["profile"]["username"]
    [item] = parse_notification(doc).items
    assert "username" not in item.metadata["whatsapp"]
    conv = conversation_id(item.address)
    proof = attest(KEY, conv, item.address, item.item_id, BSUID)
    assert proof is not None and "un" not in proof
    assert identity_of(item).username is None


MALFORMED = {
    "too long": "a" * 36,
    "far too long": "a" * 10_000,
    "too short": "@ab",
    "space": "maria padaria",
    "markup": "<b>maria</b>",
    "markdown link": "[maria](http://mal.example)",
    "newline (log injection)": "maria\nERROR forged line",
    "non-English letter": "mariã",
    "two dots": "maria..padaria",
    "leading dot": ".maria",
    "no letter": "12345678",
    "two @": "@@maria",
    "a number": 12345,
    "a list": ["maria"],
    "an object": {"handle": "maria"},
    "true": True,
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_username_is_dropped_with_its_reason_and_the_turn_still_works(
        name: str, caplog: pytest.LogCaptureFixture) -> None:
    doc = fixture("text_phone_and_username")
    contact_of(doc)["profile"]["username"] = copy.deepcopy(MALFORMED[name])
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp.parse.identity"):
        result = parse_notification(doc)
    [item] = result.items  # the delivery is not refused: the message is handled
    assert (item.address, item.action, item.text) == (PHONE, "rasa", "bom dia")
    assert "username" not in item.metadata["whatsapp"]
    ident = identity_of(item)
    assert (ident.kind, ident.value, ident.username) == ("phone", PHONE, None)
    logged = [r.getMessage() for r in caplog.records if "dropped the username" in r.getMessage()]
    assert len(logged) == 1
    assert "\n" not in logged[0] and "forged" not in logged[0] and "mal.example" not in logged[0]


def test_the_attestation_refuses_a_username_out_of_form_even_if_the_caller_passes_one() -> None:
    # attest re-checks what it signs: a value that did not come through the parser is left out
    conv = conversation_id(PHONE)
    proof = attest(KEY, conv, PHONE, "wamid.x", BSUID, username="maria padaria")
    assert proof is not None and "un" not in proof
    proof = attest(KEY, conv, PHONE, "wamid.x", BSUID, username="@Maria.Padaria")
    assert proof is not None and proof["un"] == "maria.padaria"


def test_a_username_elsewhere_than_the_senders_profile_is_not_read() -> None:
    # contact-level username, a message-level one, and the profile of another contact
    doc = fixture("text_phone_and_username")
    value = doc["entry"][0]["changes"][0]["value"]
    del value["contacts"][0]["profile"]["username"]
    value["contacts"][0]["username"] = "maria.padaria"
    value["messages"][0]["username"] = "maria.padaria"
    value["contacts"].append({"profile": {"name": "Outro", "username": "outro.cliente"},
                              "wa_id": "5521999990000", "user_id": "BR.999"})
    [item] = parse_notification(doc).items
    assert "username" not in item.metadata["whatsapp"]
    assert identity_of(item).username is None
