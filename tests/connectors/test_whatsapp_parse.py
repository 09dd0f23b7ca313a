"""Every real payload in ../shared/fixtures/whatsapp parses: a Rasa message or a logged reason."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from connectors.wa_parse import (  # noqa: E402
    INBOUND_CALL_TEXT, MEDIA_RECEIVED_TEXT, NotificationError, neutralise, parse_notification)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "whatsapp"
if not FIXTURES.exists():
    FIXTURES = Path("/work/shared/fixtures/whatsapp")
PYWA = FIXTURES / "pywa"


def _cases() -> List[Tuple[str, str, Dict[str, Any]]]:
    out = []
    for f in sorted(PYWA.glob("*.json")):
        for name, body in json.loads(f.read_text()).items():
            out.append((f.stem, name, body))
    return out


CASES = _cases()

# (file, case) -> (action, text) for the items that go to Rasa; anything not listed is ignored.
TO_RASA: Dict[Tuple[str, str], Tuple[str, Optional[str]]] = {
    ("message", "text"): ("text", "Body Text"),
    ("message", "image"): ("image", MEDIA_RECEIVED_TEXT),
    ("message", "media_with_url"): ("image", MEDIA_RECEIVED_TEXT),
    ("message", "video"): ("video", MEDIA_RECEIVED_TEXT),
    ("message", "document"): ("document", MEDIA_RECEIVED_TEXT),
    ("message", "audio"): ("audio", MEDIA_RECEIVED_TEXT),
    ("message", "voice"): ("voice", MEDIA_RECEIVED_TEXT),
    ("message", "static_sticker"): ("sticker", MEDIA_RECEIVED_TEXT),
    ("message", "animated_sticker"): ("sticker", MEDIA_RECEIVED_TEXT),
    ("message", "reply"): ("text", "replied text"),
    ("message", "forwarded"): ("text", "forwarded text"),
    ("message", "forwarded_many_times"): ("text", "text forwarded many times"),
    ("message", "referral"): ("text", "BODY"),
    ("callback_button", "button"): ("button_reply", "title"),
    ("callback_button", "quick_reply"): ("button", "title"),
    ("callback_button", "quick_reply_without_context"): ("button", "title"),
    ("callback_selection", "callback"): ("list_reply", "title"),
    ("callback_selection", "description"): ("list_reply", "title"),
    ("call_connect", "user_initiated"): ("call", INBOUND_CALL_TEXT),
}
STATUSES = {"sent", "delivered", "read", "played", "failed", "with_tracker", "group"}


def test_fixture_count() -> None:
    assert len(CASES) == 74


@pytest.mark.parametrize("stem,name,body", CASES, ids=[f"{s}:{n}" for s, n, _ in CASES])
def test_every_pywa_case_parses(stem: str, name: str, body: Dict[str, Any]) -> None:
    before = copy.deepcopy(body)
    result = parse_notification(body)
    assert body == before  # parsing never mutates the payload
    to_rasa = [i for i in result.items if i.action == "rasa"]
    if (stem, name) in TO_RASA:
        wa_type, text = TO_RASA[(stem, name)]
        assert len(to_rasa) == 1
        item = to_rasa[0]
        assert item.text == text
        assert item.metadata["whatsapp"]["type"] == wa_type
        assert item.metadata["whatsapp"]["message_id"] == item.item_id
        assert item.sender == (item.metadata["whatsapp"]["wa_id"] or item.metadata["whatsapp"]["user_id"])
        if text == MEDIA_RECEIVED_TEXT:
            assert item.metadata["whatsapp"]["media_id"]
    elif stem == "message_status" and name in STATUSES:
        assert [i.action for i in result.items] == ["status"]
    else:
        assert not to_rasa
        reasons = [i.reason for i in result.items] + result.ignored
        assert reasons and all(reasons), "ignored without a reason"


def test_text_metadata_matches_contract() -> None:
    body = dict(CASES)[("message", "text")] if False else json.loads((PYWA / "message.json").read_text())["text"]
    item = parse_notification(body).items[0]
    assert item.sender == "972987654321"
    assert item.metadata == {"whatsapp": {
        "message_id": "wamid.xyzxyz", "wa_id": "972987654321", "user_id": "US.13491208655302741918",
        "profile_name": "Test Name", "type": "text"}}


def test_voice_and_button_ids() -> None:
    msgs = json.loads((PYWA / "message.json").read_text())
    voice = parse_notification(msgs["voice"]).items[0]
    assert voice.metadata["whatsapp"]["media_id"] == "1234567890987654321"
    assert voice.metadata["whatsapp"]["mime_type"].startswith("audio/ogg")
    button = parse_notification(json.loads((PYWA / "callback_button.json").read_text())["button"]).items[0]
    assert button.button_id == "callback_data"


def test_user_id_is_identity_without_phone() -> None:
    body = json.loads((PYWA / "message.json").read_text())["text"]
    value = body["entry"][0]["changes"][0]["value"]
    msg = value["messages"][0]
    del msg["from"]
    msg["from_user_id"] = "US.13491208655302741918"
    value["contacts"][0].pop("wa_id")
    item = parse_notification(body).items[0]
    assert item.sender == "US.13491208655302741918"
    assert item.metadata["whatsapp"]["wa_id"] is None


def test_terminate_of_user_call_goes_to_rasa() -> None:
    body = json.loads((FIXTURES / "pywa" / "call_terminate.json").read_text())["call_terminate"]
    call = body["entry"][0]["changes"][0]["value"]["calls"][0]
    call["direction"] = "USER_INITIATED"
    call["from"] = "972987654321"
    item = parse_notification(body).items[0]
    assert (item.action, item.text, item.sender) == ("rasa", INBOUND_CALL_TEXT, "972987654321")
    assert item.call == {"call_id": call["id"], "event": "terminate", "direction": "USER_INITIATED",
                         "status": "COMPLETED", "duration": 120}
    assert item.item_id == f"{call['id']}#terminate"


def test_meta_docs_example() -> None:
    body = json.loads((FIXTURES / "meta_docs" / "webhooks_overview_text_message.json").read_text())
    item = parse_notification(body).items[0]
    assert item.action == "rasa" and item.text == "Does it come in another color?"


@pytest.mark.parametrize("raw,expected", [
    ("/affirm", "affirm"), ("  //inbound_call{\"x\": 1}", "inbound_call{\"x\": 1}"),
    ("\\/restart", "restart"), ("olá /ajuda", "olá /ajuda"), ("///", ""),
])
def test_neutralise(raw: str, expected: str) -> None:
    assert neutralise(raw) == expected


def test_slash_text_never_reaches_rasa_as_an_intent() -> None:
    body = json.loads((PYWA / "message.json").read_text())["text"]
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "/inbound_call"
    item = parse_notification(body).items[0]
    assert item.text == "inbound_call"
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = " / "
    item = parse_notification(body).items[0]
    assert item.action == "ignore" and "empty" in (item.reason or "")


@pytest.mark.parametrize("doc,fragment", [
    ([], "JSON object"),
    ({"object": "page", "entry": []}, "whatsapp_business_account"),
    ({"object": "whatsapp_business_account"}, "entry"),
    ({"object": "whatsapp_business_account", "entry": [{"changes": "x"}]}, "changes"),
    ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "messages": [{"id": "w1", "from": "55", "type": "hologram"}]}}]}]},
     "unknown message type"),
    ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "messages": [{"from": "55", "type": "text"}]}}]}]}, "'id'"),
    ({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
        "messaging_product": "sms", "messages": []}}]}]}, "messaging_product"),
])
def test_invalid_notifications_are_rejected(doc: Any, fragment: str) -> None:
    with pytest.raises(NotificationError, match=fragment.replace("(", r"\(")):
        parse_notification(doc)


def test_batched_entries_and_changes() -> None:
    msgs = json.loads((PYWA / "message.json").read_text())
    statuses = json.loads((PYWA / "message_status.json").read_text())
    a, b = copy.deepcopy(msgs["text"]), copy.deepcopy(msgs["image"])
    b["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.other"
    a["entry"][0]["changes"].append(statuses["read"]["entry"][0]["changes"][0])
    a["entry"].append(b["entry"][0])
    items = parse_notification(a).items
    assert [(i.kind, i.item_id) for i in items] == [
        ("message", "wamid.xyzxyz"), ("status", "wamid.xyzxyz#status:read"), ("message", "wamid.other")]
