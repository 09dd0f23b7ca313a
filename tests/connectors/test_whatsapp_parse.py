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

from connectors.whatsapp.parse import (  # noqa: E402
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
        assert item.address == (item.metadata["whatsapp"]["wa_id"] or item.metadata["whatsapp"]["user_id"])
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
    assert item.address == "972987654321"
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
    assert item.address == "US.13491208655302741918"
    assert item.metadata["whatsapp"]["wa_id"] is None


def test_terminate_of_user_call_goes_to_rasa() -> None:
    body = json.loads((FIXTURES / "pywa" / "call_terminate.json").read_text())["call_terminate"]
    call = body["entry"][0]["changes"][0]["value"]["calls"][0]
    call["direction"] = "USER_INITIATED"
    call["from"] = "972987654321"
    item = parse_notification(body).items[0]
    assert (item.action, item.text, item.address) == ("rasa", INBOUND_CALL_TEXT, "972987654321")
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


# ---- malformed deliveries (security issue #12, item 9) ------------------------------------------
def _text_doc() -> Dict[str, Any]:
    return json.loads((PYWA / "message.json").read_text())["text"]


def _value(doc: Dict[str, Any]) -> Dict[str, Any]:
    return doc["entry"][0]["changes"][0]["value"]


def _set(path: str, new: Any) -> Any:
    """A text notification with the value at ``path`` (dots, from the change's value) replaced."""
    def build() -> Dict[str, Any]:
        doc = _text_doc()
        node: Any = _value(doc)
        *parents, last = path.split(".")
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = new
        return doc
    return build


def _status(**fields: Any) -> Any:
    return lambda: {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "statuses": [{"id": "wamid.s1", "status": "read", **fields}]}}]}]}


def _call(**fields: Any) -> Any:
    return lambda: {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "calls", "value": {
        "messaging_product": "whatsapp",
        "calls": [{"id": "wacid.c1", "event": "connect", "from": "5511", **fields}]}}]}]}


MALFORMED = {
    "entry not a list": lambda: {"object": "whatsapp_business_account", "entry": {"changes": []}},
    "changes item not an object": lambda: {"object": "whatsapp_business_account", "entry": [{"changes": [[]]}]},
    "value.messages a string": _set("messages", "oi"),
    "value.contacts an object": _set("contacts", {"wa_id": "972987654321"}),
    "message not an object": _set("messages.0", "wamid.x"),
    "message.text a string": _set("messages.0.text", "oi"),
    "message.text.body an int": _set("messages.0.text.body", 42),
    "message.from an int": _set("messages.0.from", 972987654321),
    "message.from_user_id a list": _set("messages.0.from_user_id", ["US.1"]),
    "message.context a list": _set("messages.0.context", ["wamid.y"]),
    "message.image a string": _set("messages.0.image", "https://x"),
    "message.interactive.button_reply a string": _set("messages.0.interactive", {"type": "button_reply",
                                                                                 "button_reply": "sim"}),
    "message.button a list": _set("messages.0.button", ["sim"]),
    "message.system a string": _set("messages.0.system", "changed"),
    "message.errors an int": _set("messages.0.errors", 131051),
    "message.errors[0].code a string": _set("messages.0.errors", [{"code": "131051"}]),
    "contacts[0].wa_id a list": _set("contacts.0.wa_id", ["972987654321"]),
    "contacts[0].user_id a number": _set("contacts.0.user_id", 5),
    "contacts[0].profile a string": _set("contacts.0.profile", "Maria"),
    "contacts[0].profile.name an object": _set("contacts.0.profile.name", {"first": "Maria"}),
    "value.errors an int": _set("errors", 5),
    "value.statuses an object": _set("statuses", {"id": "wamid.s1"}),
    "statuses[0].recipient_id an object": _status(recipient_id={"wa_id": "5511"}),
    "statuses[0].errors an int": _status(errors=7),
    "statuses[0].errors[0] a string": _status(errors=["boom"]),
    "statuses[0].timestamp a list": _status(timestamp=[1]),
    "statuses[0].biz_opaque_callback_data a number": _status(biz_opaque_callback_data=7),
    "value.calls an object": lambda: {"object": "whatsapp_business_account", "entry": [{"changes": [{
        "field": "calls", "value": {"messaging_product": "whatsapp", "calls": {"id": "wacid.c1"}}}]}]},
    "calls[0].duration a list": _call(duration=[60]),
    "calls[0].duration a float": _call(duration=60.0),
    "calls[0].from a number": _call(**{"from": 5511}),
    "calls[0].direction a bool": _call(direction=True),
    "a lone surrogate in the text": _set("messages.0.text.body", "oi \ud800"),
    "a lone surrogate in a key": _set("messages.0.\udc00", 1),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_wrong_types_anywhere_are_malformed(name: str) -> None:
    with pytest.raises(NotificationError):
        parse_notification(MALFORMED[name]())


def test_null_optional_values_are_absent() -> None:
    doc = _text_doc()
    msg = _value(doc)["messages"][0]
    msg["context"] = None
    _value(doc)["contacts"][0]["profile"] = None
    item = parse_notification(doc).items[0]
    assert item.action == "rasa" and item.metadata["whatsapp"]["profile_name"] is None


@pytest.mark.parametrize("key,bad", [
    ("from", "9" * 65), ("from", "+972987654321"), ("from", "972 98765"), ("from", "٩٧٢٩٨٧"),
    ("from", "97²"), ("from", "972\n"), ("from_user_id", "US." + "1" * 70), ("from_user_id", "US.1/2"),
    ("from_user_id", "whatsapp:US.1"), ("id", "wamid." + "x" * 200), ("id", "wamid x"),
])
def test_out_of_bounds_ids_skip_only_their_item(key: str, bad: str) -> None:
    doc = _text_doc()
    msgs = _value(doc)["messages"]
    extra = dict(msgs[0], id="wamid.second")
    extra[key] = bad
    msgs.append(extra)
    result = parse_notification(doc)
    assert [i.item_id for i in result.items] == ["wamid.xyzxyz"]
    assert any("skipped" in r and "out of bounds" in r for r in result.ignored)
    assert all(len(r) < 300 for r in result.ignored)


def test_bounded_ids_are_accepted() -> None:
    doc = _text_doc()
    msg = _value(doc)["messages"][0]
    del msg["from"]
    msg["from_user_id"] = "BR.1234567890_abc-" + "9" * 46  # 64 characters
    _value(doc)["contacts"] = []
    item = parse_notification(doc).items[0]
    assert item.address == msg["from_user_id"] and len(item.address) == 64


def test_status_and_call_ids_are_bounded() -> None:
    assert parse_notification(_status(recipient_id="x" * 65)()).items == []
    assert parse_notification(_status(recipient_user_id="US.1?")()).items == []
    assert parse_notification(_status(status="r" * 33)()).items == []
    assert parse_notification(_status(recipient_id="fowefinoewcnw")()).items[0].address == "fowefinoewcnw"
    assert parse_notification(_status()()).items[0].address == "unknown"
    assert parse_notification(_call(**{"from": "5511" * 20})()).items == []
    assert parse_notification(_call(event="e" * 33)()).items == []


def test_the_placeholder_sender_of_a_fixture_is_skipped() -> None:
    """pywa's revoke example names its sender '<WHATSAPP_USER_PHONE_NUMBER>': not a phone."""
    result = parse_notification(json.loads((PYWA / "deleted_message.json").read_text())["revoke"])
    assert result.items == [] and "skipped" in result.ignored[0]


@pytest.mark.parametrize("duration,expected", [(120, 120), ("42", 42), ("²", None), ("٤٢", None), (-5, None),
                                               (10 ** 30, None), ("1" * 20, None)])
def test_call_duration(duration: Any, expected: Optional[int]) -> None:
    item = parse_notification(_call(duration=duration, event="terminate")())
    assert item.items[0].call["duration"] == expected


def test_reply_titles_never_reach_rasa_as_intents() -> None:
    doc = json.loads((FIXTURES / "pywa" / "callback_button.json").read_text())["button"]
    reply = _value(doc)["messages"][0]["interactive"]["button_reply"]
    reply["title"] = "///"
    reply["id"] = "x" * 300  # longer than any id of ours (and than the column): not mapped
    item = parse_notification(doc).items[0]
    assert (item.text, item.button_id) == ("?", None)
    reply["title"], reply["id"] = "\x00/affirm", "ab12.1"
    item = parse_notification(doc).items[0]
    assert (item.text, item.button_id) == ("affirm", "ab12.1")


@pytest.mark.parametrize("doc", [
    {"type": "ReceivedCallback", "messageId": "Z1", "phone": "5511", "text": {"message": 5}},
    {"type": "ReceivedCallback", "messageId": "Z1", "phone": "5511", "text": "oi"},
    {"type": "ReceivedCallback", "messageId": "Z1", "phone": ["5511"], "text": {"message": "oi"}},
    {"type": "ReceivedCallback", "messageId": "Z1", "phone": "5511", "fromMe": "no", "text": {"message": "oi"}},
    {"type": "ReceivedCallback", "messageId": "Z1", "phone": "5511", "chatLid": 5, "text": {"message": "oi"}},
    {"type": "ReceivedCallback", "messageId": "Z1", "phone": "5511", "image": {"imageUrl": ["x"]}},
    {"type": "ReceivedCallback", "messageId": "Z1", "phone": "5511", "listResponseMessage": {"title": 1}},
    {"type": "ReceivedCallback", "messageId": "Z1", "phone": "5511", "text": {"message": "\ud800"}},
    {"type": "MessageStatusCallback", "status": "READ", "ids": ["A"], "phone": 5511},
    {"type": "MessageStatusCallback", "status": "READ", "ids": ["A"], "momment": [1]},
])
def test_malformed_zapi_callbacks(doc: Dict[str, Any]) -> None:
    from connectors.whatsapp.parse import parse_callback
    with pytest.raises(NotificationError):
        parse_callback(doc)


def test_zapi_ids_are_bounded() -> None:
    from connectors.whatsapp.parse import parse_callback
    base = {"type": "ReceivedCallback", "messageId": "Z1", "phone": "5511988887777", "text": {"message": "oi"}}
    assert parse_callback({**base, "senderLid": "81896604192873@lid"}).items[0].address == "5511988887777"
    group = parse_callback({**base, "phone": "120363019502650977-group", "isGroup": True}).items[0]
    assert group.action == "ignore"
    for bad in ({"phone": "9" * 65}, {"phone": "+5511"}, {"chatLid": "x" * 80}, {"messageId": "Z 1"}):
        result = parse_callback({**base, **bad})
        assert result.items == [] and "skipped" in result.ignored[0], bad
    st = parse_callback({"type": "MessageStatusCallback", "status": "READ", "ids": ["A", "B" * 200], "phone": "5511"})
    assert [i.item_id for i in st.items] == ["A#status:read"]


def test_a_number_change_becomes_an_alias_of_the_conversation() -> None:
    """pywa's system.json (Meta's `user_changed_number`): the old number's conversation goes on."""
    doc = json.loads((PYWA / "system.json").read_text())
    [item] = parse_notification(doc["phone_number_change"]).items
    assert (item.action, item.address, item.metadata["new_wa_id"]) == ("alias", "972987654321", "972912345678")
    # an identity change (security code) is only recorded
    [other] = parse_notification(doc["identity_change"]).items
    assert other.action == "ignore"
    # a new number that is not a phone is not an alias
    bad = json.loads(json.dumps(doc["phone_number_change"]))
    bad["entry"][0]["changes"][0]["value"]["messages"][0]["system"]["wa_id"] = "x" * 10
    assert parse_notification(bad).items[0].action == "ignore"


def test_number_change_aliases_chain_to_the_first_conversation(tmp_path: Path) -> None:
    from connectors.whatsapp.store import Store, make_engine

    store = Store(make_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    store.create_tables()
    assert store.conversation_of("5511900000002") is None
    assert store.set_alias("5511900000002", "5511900000001") == "5511900000001"
    assert store.set_alias("5511900000003", "5511900000002") == "5511900000001"  # chains collapse
    assert store.conversation_of("5511900000003") == "5511900000001"
    assert store.current_address("5511900000001") == "5511900000003"
    assert store.current_address("5511977777777") == "5511977777777"


def _bsuid_change(**system: Any) -> Dict[str, Any]:
    """Meta's `user_changed_user_id` system message as its reference describes it (no contacts
    array; system.previous_user_id beside the new id)."""
    msg = {"from_user_id": "BR.2222", "id": "wamid.UCUI1", "timestamp": "1", "type": "system",
           "system": {"body": "User changed", "type": "user_changed_user_id", **system}}
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}, "messages": [msg]}}]}]}


def test_a_bsuid_change_becomes_an_alias_and_bad_ones_are_recorded(tmp_path: Path) -> None:
    from connectors.whatsapp.identity import attest
    from connectors.whatsapp.store import Store, make_engine

    [item] = parse_notification(_bsuid_change(user_id="BR.2222", previous_user_id="BR.1111")).items
    assert (item.action, item.metadata["new_wa_id"], item.metadata["previous_address"]) == ("alias", "BR.2222", "BR.1111")
    store = Store(make_engine(f"sqlite:///{tmp_path / 'b.db'}"))
    store.create_tables()
    assert store.set_alias("BR.2222", "BR.1111") == "BR.1111"
    assert store.conversation_of("BR.2222") == "BR.1111"
    # the new BSUID's turns attest the first one beside it, so the action server relinks the customer
    proof = attest(b"k" * 32, "whatsapp:BR.1111", "BR.2222", "wamid.X", previous_wa_id="BR.1111")
    assert proof is not None and "bsuid:BR.1111" in json.dumps(proof)
    # unknown forms: an ignored item with its reason (stored once, never retried), never a crash
    for bad in ({"previous_user_id": "BR.1111", "user_id": "no spaces allowed"}, {"user_id": "BR.2222"},
                {"user_id": "BR.2222", "previous_user_id": "BR.2222"}, {"user_id": "BR.2", "previous_user_id": "x" * 500}):
        [ignored] = parse_notification(_bsuid_change(**bad)).items
        assert ignored.action == "ignore" and "BSUID change" in ignored.reason, bad
    # a wrong JSON type is a malformed notification (400, nothing stored)
    with pytest.raises(NotificationError):
        parse_notification(_bsuid_change(user_id=5, previous_user_id="BR.1111"))
    # on a phone conversation the change is only recorded: the next message links the new BSUID
    doc = _bsuid_change(user_id="BR.2222", previous_user_id="BR.1111")
    doc["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "5511900000001"
    assert parse_notification(doc).items[0].action == "ignore"
