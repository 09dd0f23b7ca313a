"""The Z-API provider (WHATSAPP_PROVIDER=zapi) behind the same connector: its webhook on the gateway
(real process), the whole path Z-API callback -> gateway -> Rasa -> a reply at a fake Z-API, and
Z-API's statuses on the outbox rows."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whatsapp_rasa import Gateway, RasaServer, tiny_model  # noqa: E402

from fake_graph import FakeGraph, FakeZapi  # noqa: E402

from connectors.whatsapp.parse import NotificationError, parse_callback  # noqa: E402
from connectors.whatsapp.providers.zapi import to_zapi  # noqa: E402

pytestmark = pytest.mark.timeout(300)

TOKEN = "zapi-webhook-secret"


def received(phone: str, mid: str, **kind: Any) -> Dict[str, Any]:
    return {"isStatusReply": False, "instanceId": "INST1", "messageId": mid, "phone": phone, "fromMe": False,
            "momment": int(time.time() * 1000), "status": "RECEIVED", "chatName": "Cliente Z", "senderName": "Cliente Z",
            "isGroup": False, "type": "ReceivedCallback", **kind}


LID_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "zapi_lid"  # see its README (sources)
LID = "999999999999999@lid"
KEY = b"zapi-lid-test-attestation-key-0123456789"


def lid_fixture(name: str) -> Dict[str, Any]:
    return json.loads((LID_FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def attested(rasa: RasaServer, conversation: str, message_id: str) -> Any:
    """(kind, value, alt) of the attestation Rasa received with that message."""
    from atende_contract import attestation
    from whatsapp_rasa import ATTESTATION_SECRET

    _, tracker = rasa.get(f"/conversations/{conversation}/tracker")
    [event] = [e for e in tracker["events"] if e["event"] == "user" and e.get("message_id")
               and e["metadata"].get("whatsapp", {}).get("message_id") == message_id]
    verdict = attestation.verify(ATTESTATION_SECRET.encode(), event["metadata"][attestation.METADATA_KEY],
                                 conversation_id=conversation, channel="whatsapp", message_id=event["message_id"])
    assert verdict.ok, verdict.reason
    return verdict.identity.kind, verdict.identity.value, verdict.identity.alt


def proof_of(item: Any) -> Any:
    """The attestation the worker signs for an item (connectors/whatsapp/worker.py), verified back."""
    from atende_contract import attestation
    from connectors.whatsapp.identity import attest, conversation_id

    conv = conversation_id(item.address)
    wa = item.metadata["whatsapp"]
    proof = attest(KEY, conv, item.address, item.item_id, wa.get("user_id"), lid=wa.get("lid"))
    verdict = attestation.verify(KEY, proof, conversation_id=conv, channel="whatsapp", message_id=item.item_id)
    assert verdict.ok, verdict.reason
    return verdict.identity.kind, verdict.identity.value, verdict.identity.alt


def test_lid_callbacks_from_zapi_docs() -> None:
    both = parse_callback(lid_fixture("received_phone_and_lid")).items[0]
    assert (both.address, both.action, both.text) == ("554499999999", "rasa", "Oi, o PDV travou")
    assert (both.metadata["whatsapp"]["wa_id"], both.metadata["whatsapp"]["lid"]) == ("554499999999", LID)
    assert proof_of(both) == ("phone", "554499999999", (("lid", LID),))  # links the LID to the customer
    sender = parse_callback(lid_fixture("received_phone_and_sender_lid")).items[0]
    assert proof_of(sender) == ("phone", "5544999999999", (("lid", "81896604192873@lid"),))
    only = parse_callback(lid_fixture("received_lid_only")).items[0]
    assert (only.address, only.action, only.metadata["whatsapp"]["wa_id"]) == (LID, "rasa", None)
    assert proof_of(only) == ("lid", LID, ())
    null = parse_callback(lid_fixture("received_lid_only_chatlid_null")).items[0]
    assert (null.address, null.action, null.metadata["whatsapp"]["lid"]) == ("65998849469@lid", "rasa",
                                                                            "65998849469@lid")
    group = parse_callback(lid_fixture("received_group_participant_lid")).items[0]
    assert (group.action, group.metadata["whatsapp"]["lid"]) == ("ignore", None)  # a participant is not the chat
    [status] = parse_callback(lid_fixture("status_read_lid")).items
    assert (status.address, status.action, status.status["status"]) == (LID, "status", "read")
    # replies to a LID-only conversation (queued with recipient = the LID) go to phone = the LID
    from connectors.whatsapp.identity import recipient_fields
    assert to_zapi({**recipient_fields(LID), "type": "text", "text": {"body": "oi"}}) == (
        "send-text", {"phone": LID, "message": "oi"})
    assert to_zapi({**recipient_fields("554499999999"), "type": "text", "text": {"body": "oi"}})[1]["phone"] == (
        "554499999999")


def test_a_lid_in_an_unexpected_form_is_never_a_lid() -> None:
    base = lid_fixture("received_phone_and_lid")
    # within the id bounds but not digits@lid: dropped with its reason; the message goes on by phone
    for bad in ("1@lid@lid", "81896604192873", "81896604192873@s.whatsapp.net", "120363019502650977-group",
                "8189@lid.x", "0@lid.lid", "1234@lidx"):
        for key in ("chatLid", "senderLid"):
            doc = {**base, "chatLid": None, "senderLid": None, key: bad}
            result = parse_callback(doc)
            [item] = result.items
            assert (item.address, item.action, item.metadata["whatsapp"]["lid"]) == ("554499999999", "rasa", None)
            assert any("is not a LID" in note for note in result.ignored), (key, bad)
            assert proof_of(item) == ("phone", "554499999999", ())
    # out of the id bounds: the item is skipped with its reason (nothing stored), never a crash
    for bad in ("81896604192873@LID", " 81896604192873@lid", "8" * 70 + "@lid", "a@lid"):
        result = parse_callback({**base, "chatLid": bad})
        assert result.items == [] and "skipped" in result.ignored[0], bad
    # a sender that is neither a phone nor a LID is stored as ignored, with its reason
    for phone in ("1@lid@lid", "5511@lid.x", "81896604192873@s.whatsapp.net"):
        [item] = parse_callback({**base, "phone": phone}).items
        assert item.action == "ignore" and "neither a phone nor a LID" in str(item.reason), phone
    # a LID-form phone with a malformed chatLid keeps the phone's LID
    [item] = parse_callback({**base, "phone": LID, "chatLid": "1@lid@lid"}).items
    assert (item.address, item.metadata["whatsapp"]["lid"]) == (LID, LID)


def test_a_lid_claimed_in_a_field_the_client_controls_is_not_read() -> None:
    base = {**lid_fixture("received_phone_and_lid"), "chatLid": None, "senderLid": None}
    forged = "123456789012345@lid"
    # names, the text and a shared contact card are written by the customer; participantLid is a
    # group member's: none of them is the contact's LID
    docs = [
        {**base, "senderName": forged, "chatName": forged},
        {**base, "text": {"message": forged}},
        {**base, "participantLid": forged, "participantPhone": "5511900000000"},
        {**{k: v for k, v in base.items() if k != "text"},
         "contact": {"displayName": "Outro", "vCard": f"BEGIN:VCARD\nTEL;waid={forged}:+55\nEND:VCARD",
                     "phones": [forged]}},
    ]
    for doc in docs:
        [item] = parse_callback(doc).items
        assert item.metadata["whatsapp"]["lid"] is None, doc
        if item.action == "rasa":
            assert proof_of(item) == ("phone", "554499999999", ()), doc
    # a message from the business number itself (fromMe) or a group never attests the contact's LID
    for extra in ({"fromMe": True}, {"isGroup": True}):
        [item] = parse_callback({**base, "senderLid": forged, **extra}).items
        assert item.action == "ignore" and item.metadata["whatsapp"]["lid"] is None


def test_a_lid_only_message_from_an_unknown_contact_is_its_own_conversation() -> None:
    doc = {**lid_fixture("received_lid_only"), "chatLid": "65998849469@lid", "phone": "65998849469@lid"}
    [item] = parse_callback(doc).items
    assert (item.address, item.action) == ("65998849469@lid", "rasa")
    from connectors.whatsapp.identity import conversation_id
    assert conversation_id(item.address) == "whatsapp:65998849469@lid"
    assert proof_of(item) == ("lid", "65998849469@lid", ())  # nothing beside it: no phone to link to


def rows(db: Path, sql: str) -> List[Any]:
    with sqlite3.connect(db, timeout=30) as c:
        return c.execute(sql).fetchall()


def test_callbacks_become_the_same_inbox_items() -> None:
    text = parse_callback(received("5511988887777", "M1", text={"message": "/affirm oi"})).items[0]
    assert (text.item_id, text.address, text.action, text.text) == ("M1", "5511988887777", "rasa", "affirm oi")
    assert text.metadata["whatsapp"]["type"] == "text" and text.metadata["whatsapp"]["provider"] == "zapi"
    button = parse_callback(received("5511988887777", "M2", buttonsResponseMessage={
        "buttonId": "ab12.1", "message": "Não"})).items[0]
    assert (button.button_id, button.text) == ("ab12.1", "Não")
    row = parse_callback(received("5511988887777", "M3", listResponseMessage={
        "selectedRowId": "ab12.4", "title": "Fiscal", "message": "Fiscal"})).items[0]
    assert row.button_id == "ab12.4" and row.metadata["whatsapp"]["type"] == "list_reply"
    voice = parse_callback(received("5511988887777", "M4", audio={"ptt": True, "audioUrl": "https://x/a.ogg",
                                                                   "mimeType": "audio/ogg"})).items[0]
    assert voice.text == "/media_received" and voice.metadata["whatsapp"]["type"] == "voice"
    mine = parse_callback({**received("5511988887777", "M5", text={"message": "eco"}), "fromMe": True}).items[0]
    assert mine.action == "ignore"
    group = parse_callback({**received("5511988887777", "M6", text={"message": "g"}), "isGroup": True}).items[0]
    assert group.action == "ignore"
    st = parse_callback({"type": "MessageStatusCallback", "status": "READ", "ids": ["A", "B"],
                         "phone": "5511988887777", "momment": 1}).items
    assert [(i.item_id, i.action, i.status["status"]) for i in st] == [
        ("A#status:read", "status", "read"), ("B#status:read", "status", "read")]
    assert parse_callback({"type": "DisconnectedCallback"}).items == []
    for bad in ([], {"type": "Nope"}, {"type": "ReceivedCallback", "phone": "1"},
                {"type": "MessageStatusCallback", "status": "READ", "ids": "A"}):
        with pytest.raises(NotificationError):
            parse_callback(bad)


def test_graph_bodies_become_zapi_requests() -> None:
    assert to_zapi({"to": "5511", "type": "text", "text": {"body": "oi"}}) == ("send-text", {"phone": "5511", "message": "oi"})
    path, body = to_zapi({"to": "5511", "type": "interactive", "interactive": {"type": "button", "body": {"text": "Q?"},
                          "action": {"buttons": [{"type": "reply", "reply": {"id": "r.1", "title": "Sim"}}]}}})
    assert (path, body["buttonList"]) == ("send-button-list", {"buttons": [{"id": "r.1", "label": "Sim"}]})
    path, body = to_zapi({"to": "5511", "type": "interactive", "interactive": {"type": "list", "body": {"text": "Q?"},
                          "action": {"button": "Ver opções", "sections": [{"title": "Opções", "rows": [
                              {"id": "r.1", "title": "A", "description": "Alpha"}]}]}}})
    assert path == "send-option-list" and body["optionList"]["options"] == [{"id": "r.1", "title": "A", "description": "Alpha"}]


@pytest.fixture()
def zapi() -> Iterator[FakeZapi]:
    with FakeZapi() as z:
        yield z


def zapi_env(z: FakeZapi) -> Dict[str, str]:
    return {"WHATSAPP_PROVIDER": "zapi", "ZAPI_INSTANCE_ID": z.instance_id, "ZAPI_INSTANCE_TOKEN": z.instance_token,
            "ZAPI_CLIENT_TOKEN": z.client_token, "ZAPI_BASE_URL": z.base_url, "ZAPI_WEBHOOK_TOKEN": TOKEN}


def post_zapi(gw: Gateway, doc: Any, token: str = TOKEN) -> Any:
    import urllib.error
    import urllib.request
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    url = f"{gw.url}/webhooks/whatsapp/zapi" + (f"?token={token}" if token else "")
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_zapi_webhook_bad_input_changes_nothing(tmp_path: Path, zapi: FakeZapi) -> None:
    db = tmp_path / "atende.db"
    gw = Gateway(tmp_path, db, extra_env=zapi_env(zapi)).start()
    try:
        good = received("5511911110000", "ZGOOD", text={"message": "oi"})
        assert post_zapi(gw, good) == (200, {"status": "ok", "items": 1, "new": 1})
        assert post_zapi(gw, good) == (200, {"status": "ok", "items": 1, "new": 0})  # replay: no-op
        assert post_zapi(gw, good, token="")[0] == 401
        assert post_zapi(gw, good, token="wrong")[0] == 403
        assert post_zapi(gw, b"{nope")[0] == 400
        assert post_zapi(gw, {"type": "Nope"})[0] == 400
        assert post_zapi(gw, received("5511911110000", "ZBIG", text={"message": "x" * (3 * 1024 * 1024)}))[0] == 413
        assert rows(db, "select item_id from whatsapp_inbox") == [("ZGOOD",)]
    finally:
        gw.stop()
    off = Gateway(tmp_path / "off", tmp_path / "off.db").start()  # no ZAPI_WEBHOOK_TOKEN
    try:
        assert post_zapi(off, received("5511911110000", "ZOFF", text={"message": "oi"}))[0] == 503
    finally:
        off.stop()


def test_whole_path_through_zapi(tmp_path: Path, zapi: FakeZapi) -> None:
    db = tmp_path / "atende.db"
    with FakeGraph() as graph:  # must stay silent: the provider is Z-API
        rasa = RasaServer(tmp_path / "rasa", graph.base_url, db, extra_env=zapi_env(zapi))
        gw = Gateway(tmp_path / "gw", db, [f"{rasa.url}/webhooks/whatsapp/wake"], extra_env=zapi_env(zapi)).start()
        rasa.start(tiny_model())
        try:
            phone = "5511922223333"
            zapi.inject(429, times=1)  # rate limited once: retried
            assert post_zapi(gw, received(phone, "ZM1", text={"message": "oi"}))[0] == 200
            got = zapi.wait_messages(phone, 1)
            assert got == [("send-button-list", "Olá! Sou o assistente de teste. Posso ajudar?")]
            first = [r for r in zapi.sent() if r.body.get("phone") == phone][0]
            deny_id = first.body["buttonList"]["buttons"][1]["id"]
            assert [b["label"] for b in first.body["buttonList"]["buttons"]] == ["Sim", "Não"]
            assert post_zapi(gw, received(phone, "ZM2", buttonsResponseMessage={"buttonId": deny_id,
                                                                                "message": "Não"}))[0] == 200
            assert zapi.wait_messages(phone, 2)[1] == ("send-text", "Tudo bem, sem problemas.")
            assert post_zapi(gw, {"type": "MessageStatusCallback", "status": "READ", "ids": [first.wamid],
                                  "phone": phone, "momment": 1})[0] == 200
            deadline = time.time() + 20
            sql = f"select status from whatsapp_outbox where wamid='{first.wamid}'"
            while time.time() < deadline and rows(db, sql) != [("read",)]:
                time.sleep(0.1)
            assert rows(db, sql) == [("read",)]
            reads = [r.body for r in zapi.requests if r.path.endswith("/read-message")]
            assert {"phone": phone, "messageId": "ZM1"} in reads
            assert [r for r in zapi.requests if r.violations] == []
            assert len([r for r in zapi.requests if r.status == 429]) == 1
            assert graph.requests == []
            _, tracker = rasa.get(f"/conversations/whatsapp:{phone}/tracker")
            intents = [e["parse_data"]["intent"]["name"] for e in tracker["events"] if e["event"] == "user"]
            assert intents[-1] == "deny"

            # Z-API @lid: the phone with its chatLid, then the same contact with the number hidden.
            both, only = lid_fixture("received_phone_and_lid"), lid_fixture("received_lid_only")
            assert post_zapi(gw, both)[0] == 200
            assert len(zapi.wait_messages(both["phone"], 1)) == 1  # answered at its phone
            assert attested(rasa, f"whatsapp:{both['phone']}", both["messageId"]) == (
                "phone", both["phone"], (("lid", LID),))
            assert post_zapi(gw, only)[0] == 200
            # the LID-only contact is answered at phone = the LID, as Z-API expects
            assert len(zapi.wait_messages(LID, 1)) == 1
            assert attested(rasa, f"whatsapp:{LID}", only["messageId"]) == ("lid", LID, ())
            assert {"phone": LID, "messageId": only["messageId"]} in [
                r.body for r in zapi.requests if r.path.endswith("/read-message")]
            lid_send = [r for r in zapi.sent() if r.body.get("phone") == LID][0]
            assert post_zapi(gw, {**lid_fixture("status_read_lid"), "ids": [lid_send.wamid]})[0] == 200
            sql = f"select recipient, status from whatsapp_outbox where wamid='{lid_send.wamid}'"
            deadline = time.time() + 20
            while time.time() < deadline and rows(db, sql) != [(LID, "read")]:
                time.sleep(0.1)
            assert rows(db, sql) == [(LID, "read")]
            # a LID-only message from an unknown contact is answered too (the bot asks who they are)
            stranger = {**lid_fixture("received_lid_only_chatlid_null"), "messageId": "3EB0STRANGER01"}
            assert post_zapi(gw, stranger)[0] == 200
            assert len(zapi.wait_messages("65998849469@lid", 1)) == 1
            assert attested(rasa, "whatsapp:65998849469@lid", "3EB0STRANGER01") == ("lid", "65998849469@lid", ())
            assert [r for r in zapi.requests if r.violations] == []
        finally:
            gw.stop()
            rasa.stop()
