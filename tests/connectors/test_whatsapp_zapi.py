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
        finally:
            gw.stop()
            rasa.stop()
