"""The WhatsApp channel inside a real `rasa run` (tiny fixture model) against the fake Graph API."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atende_contract import attestation  # noqa: E402
from whatsapp_rasa import ATTESTATION_SECRET, RasaServer, notification, text_notification, tiny_model  # noqa: E402

from fake_graph import FakeGraph  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraph]:
    with FakeGraph() as g:
        yield g


@pytest.fixture(scope="module")
def rasa(graph: FakeGraph, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaServer]:
    wd = tmp_path_factory.mktemp("wa-rasa")
    srv = RasaServer(wd, graph.base_url, wd / "atende.db").start(tiny_model())
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _clean(graph: FakeGraph) -> None:
    graph.reset()


_n = [0]


def wamid() -> str:
    _n[0] += 1
    return f"wamid.test{_n[0]}.{time.time_ns()}"


def phone() -> str:
    _n[0] += 1
    return f"55119{_n[0]:08d}"


def post(rasa: RasaServer, doc: Dict[str, Any]) -> Any:
    status, body = rasa.post(json.dumps(doc).encode())
    assert status == 200, body
    return body


def db(rasa: RasaServer, sql: str, *args: Any) -> List[Any]:
    with sqlite3.connect(rasa.db_path, timeout=30) as c:
        return c.execute(sql, args).fetchall()


def texts_to(graph: FakeGraph, to: str) -> List[str]:
    return graph.texts_to(to)


def wait_texts(graph: FakeGraph, to: str, n: int, timeout: float = 20.0) -> List[str]:
    return graph.wait_texts(to, n, timeout)


def last_user_event(rasa: RasaServer, sender: str) -> Dict[str, Any]:
    _, tracker = rasa.get(f"/conversations/whatsapp:{sender}/tracker")
    return [e for e in tracker["events"] if e["event"] == "user"][-1]


def test_verify_handshake(rasa: RasaServer) -> None:
    ok = rasa.get("/webhooks/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444")
    assert ok == (200, 1158201444)
    assert rasa.get("/webhooks/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")[0] == 403
    assert rasa.get("/webhooks/whatsapp/webhook?hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1")[0] == 403
    assert rasa.get("/webhooks/whatsapp/webhook?hub.mode=subscribe")[0] == 400


def test_text_gets_buttons_read_receipt_and_typing(rasa: RasaServer, graph: FakeGraph) -> None:
    to, mid = phone(), wamid()
    assert post(rasa, text_notification(to, mid, "oi")) == {"status": "ok", "items": 1, "new": 1}
    assert wait_texts(graph, to, 1) == ["Olá! Sou o assistente de teste. Posso ajudar?"]
    sent = [r for r in graph.sent() if r.body.get("to") == to][0].body
    assert sent["interactive"]["type"] == "button"
    assert [b["reply"]["title"] for b in sent["interactive"]["action"]["buttons"]] == ["Sim", "Não"]
    reads = [r.body for r in graph.reads() if r.body["message_id"] == mid]
    assert reads == [{"messaging_product": "whatsapp", "status": "read", "message_id": mid,
                      "typing_indicator": {"type": "text"}}]
    assert graph.violations() == []
    user = last_user_event(rasa, to)
    assert user["input_channel"] == "whatsapp" and user["message_id"] == mid
    # The signed delivery's sender is attested for this conversation and message only.
    proof = attestation.verify(ATTESTATION_SECRET.encode(), user["metadata"][attestation.METADATA_KEY],
                               conversation_id=f"whatsapp:{to}", channel="whatsapp", message_id=mid,
                               now=user["timestamp"])
    assert proof.ok and proof.identity.subject == f"phone:{to}"
    assert not attestation.verify(ATTESTATION_SECRET.encode(), user["metadata"][attestation.METADATA_KEY],
                                  conversation_id=f"web:{to}", channel="website", message_id=mid,
                                  now=user["timestamp"]).ok
    assert user["metadata"]["whatsapp"]["wa_id"] == to and user["metadata"]["whatsapp"]["profile_name"] == "Cliente Teste"


def test_the_senders_username_is_signed_into_the_turns_attestation(rasa: RasaServer, graph: FakeGraph) -> None:
    # Meta's contacts[].profile.username: the worker signs it (un) beside the sender's phone
    to, mid = phone(), wamid()
    doc = text_notification(to, mid, "oi")
    doc["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["username"] = "@Cliente.Teste"
    post(rasa, doc)
    wait_texts(graph, to, 1)
    user = last_user_event(rasa, to)
    proof = attestation.verify(ATTESTATION_SECRET.encode(), user["metadata"][attestation.METADATA_KEY],
                               conversation_id=f"whatsapp:{to}", channel="whatsapp", message_id=mid,
                               now=user["timestamp"])
    assert proof.ok and proof.identity.subject == f"phone:{to}" and proof.identity.username == "cliente.teste"


def test_button_reply_maps_to_the_payload_and_foreign_ids_are_text(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    post(rasa, text_notification(to, wamid(), "oi"))
    wait_texts(graph, to, 1)
    sent = [r for r in graph.sent() if r.body.get("to") == to][0]
    deny_id = sent.body["interactive"]["action"]["buttons"][1]["reply"]["id"]

    def reply(rid: str, title: str) -> Dict[str, Any]:
        return notification("messages", {"contacts": [{"profile": {"name": "C"}, "wa_id": to}], "messages": [{
            "context": {"from": "551140040000", "id": sent.wamid}, "from": to, "id": wamid(), "timestamp": "1",
            "type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": rid, "title": title}}}]})

    post(rasa, reply(deny_id, "Não"))
    assert wait_texts(graph, to, 2)[1] == "Tudo bem, sem problemas."
    assert last_user_event(rasa, to)["parse_data"]["intent"]["name"] == "deny"
    post(rasa, reply("/affirm", "xyz"))  # an id this connector never sent: plain text
    assert wait_texts(graph, to, 3)[2] == "Desculpe, não entendi."


def test_user_slash_commands_are_neutralised(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    post(rasa, text_notification(to, wamid(), '/affirm{"ticket": "1"}'))
    assert wait_texts(graph, to, 1) == ["Desculpe, não entendi."]
    user = last_user_event(rasa, to)
    assert user["text"].startswith("affirm") and user["parse_data"]["intent"]["name"] != "affirm"


def test_list_for_five_options(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    post(rasa, text_notification(to, wamid(), "ajuda"))
    wait_texts(graph, to, 1)
    body = [r for r in graph.sent() if r.body.get("to") == to][0].body
    rows = body["interactive"]["action"]["sections"][0]["rows"]
    assert body["interactive"]["type"] == "list" and len(rows) == 5
    assert rows[4]["title"] == "Outro módulo com um nom…"
    assert rows[4]["description"] == "Outro módulo com um nome bem comprido mesmo"
    assert graph.violations() == []


def test_media_is_acknowledged_with_its_id(rasa: RasaServer, graph: FakeGraph) -> None:
    to, mid = phone(), wamid()
    post(rasa, notification("messages", {"contacts": [{"profile": {"name": "C"}, "wa_id": to}], "messages": [{
        "from": to, "id": mid, "timestamp": "1", "type": "audio",
        "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "MEDIA123", "voice": True}}]}))
    assert wait_texts(graph, to, 1) == ["Recebemos seu arquivo, obrigado."]
    user = last_user_event(rasa, to)
    assert user["parse_data"]["intent"]["name"] == "media_received"
    assert user["metadata"]["whatsapp"]["type"] == "voice" and user["metadata"]["whatsapp"]["media_id"] == "MEDIA123"


def _call(to: str, call_id: str, event: str, **extra: Any) -> Dict[str, Any]:
    return notification("calls", {"contacts": [{"profile": {"name": "C"}, "wa_id": to}], "calls": [{
        "id": call_id, "from": to, "to": "551140040000", "event": event, "timestamp": "1",
        "direction": "USER_INITIATED", **extra}]})


def test_calls_answered_and_missed(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    post(rasa, _call(to, "wacid.A", "connect", session={"sdp": "x", "sdp_type": "offer"}))
    post(rasa, _call(to, "wacid.A", "terminate", status="COMPLETED", duration=42))
    post(rasa, _call(to, "wacid.B", "terminate", status="FAILED"))
    assert wait_texts(graph, to, 3) == ["Recebemos sua ligação pelo WhatsApp."] * 3
    _, tracker = rasa.get(f"/conversations/whatsapp:{to}/tracker")
    users = [e for e in tracker["events"] if e["event"] == "user"]
    assert [u["parse_data"]["intent"]["name"] for u in users] == ["inbound_call"] * 3
    assert [u["metadata"]["call"] for u in users] == [
        {"call_id": "wacid.A", "event": "connect", "missed": False, "duration": None},
        {"call_id": "wacid.A", "event": "terminate", "missed": False, "duration": 42},
        {"call_id": "wacid.B", "event": "terminate", "missed": True, "duration": None}]
    assert graph.reads() == [] or all(r.body["message_id"].startswith("wamid") for r in graph.reads())


def test_statuses_recorded_and_never_backwards(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    post(rasa, text_notification(to, wamid(), "sim"))
    wait_texts(graph, to, 1)
    out = [r for r in graph.sent() if r.body.get("to") == to][0].wamid

    def status(st: str) -> Dict[str, Any]:
        return notification("messages", {"statuses": [{"id": out, "status": st, "timestamp": "1", "recipient_id": to}]})

    for st in ("sent", "read", "delivered"):
        post(rasa, status(st))
    post(rasa, text_notification(to, wamid(), "não"))  # same sender queue: statuses applied before it
    wait_texts(graph, to, 2)
    time.sleep(0.3)
    assert db(rasa, "select status from whatsapp_outbox where wamid=?", out) == [("read",)]


def _send_state(rasa: RasaServer, to: str) -> List[Any]:
    return db(rasa, "select send_state, status, error_code, needs_template, attempts from whatsapp_outbox "
                    "where recipient=? order by id", to)


def _wait_state(rasa: RasaServer, to: str, n: int, timeout: float = 20) -> List[Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = _send_state(rasa, to)
        if len(rows) >= n and all(r[0] in ("accepted", "rejected") for r in rows):
            return rows
        time.sleep(0.05)
    return _send_state(rasa, to)


def test_131047_is_recorded_for_the_console_and_not_retried(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    graph.inject(code=131047, http_status=400)
    post(rasa, text_notification(to, wamid(), "sim"))
    assert _wait_state(rasa, to, 1) == [("rejected", "failed", 131047, 1, 1)]
    assert len([r for r in graph.requests if r.body.get("to") == to]) == 1


@pytest.mark.parametrize("inject,expected_requests", [
    ({"code": 130429, "times": 2}, 3),
    ({"code": 131056, "times": 1}, 2),
    ({"code": 0, "http_status": 503, "times": 2}, 3),
    ({"delay_s": 2.0, "times": 1}, 2),  # longer than WHATSAPP_GRAPH_TIMEOUT_S=1.5
])
def test_retryable_errors_are_retried_with_backoff(rasa: RasaServer, graph: FakeGraph, inject: Dict[str, Any],
                                                   expected_requests: int) -> None:
    to = phone()
    graph.inject(**inject)
    post(rasa, text_notification(to, wamid(), "sim"))
    rows = _wait_state(rasa, to, 1)
    assert rows[0][:2] == ("accepted", None) and rows[0][4] == expected_requests
    assert len([r for r in graph.requests if r.body.get("to") == to]) == expected_requests
    assert wait_texts(graph, to, 1) == ["Confirmado, obrigado!"]


def test_other_4xx_is_not_retried(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    graph.inject(code=131026, http_status=400)
    post(rasa, text_notification(to, wamid(), "sim"))
    assert _wait_state(rasa, to, 1) == [("rejected", "failed", 131026, 0, 1)]


def test_messages_from_one_sender_are_processed_in_order(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    words = ["sim", "não"] * 8
    for w in words:
        post(rasa, text_notification(to, wamid(), w))
    expected = ["Confirmado, obrigado!" if w == "sim" else "Tudo bem, sem problemas." for w in words]
    assert wait_texts(graph, to, len(words), timeout=60) == expected


def test_trigger_intent_with_latest_output_channel_reaches_whatsapp(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    post(rasa, text_notification(to, wamid(), "sim"))
    wait_texts(graph, to, 1)
    req = urllib.request.Request(f"{rasa.url}/conversations/whatsapp:{to}/trigger_intent?output_channel=latest",
                                 data=json.dumps({"name": "deny", "entities": {}}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
    assert wait_texts(graph, to, 2) == ["Confirmado, obrigado!", "Tudo bem, sem problemas."]


# ---- bad input: the right status, and nothing changes ------------------------------------------

def _counts(rasa: RasaServer) -> tuple:
    return (db(rasa, "select count(*) from whatsapp_inbox")[0][0], db(rasa, "select count(*) from whatsapp_outbox")[0][0])


def test_bad_input_changes_nothing(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    good = json.dumps(text_notification(to, wamid(), "sim")).encode()
    unknown_type = text_notification(to, wamid(), "x")
    unknown_type["entry"][0]["changes"][0]["value"]["messages"][0]["type"] = "hologram"
    big = json.dumps({**text_notification(to, wamid(), "x"), "pad": "a" * (3 * 1024 * 1024)}).encode()
    before = _counts(rasa)
    cases = [
        (b"{not json", "auto", None, 400),
        (json.dumps({"object": "page", "entry": [{"id": "1", "messaging": []}]}).encode(), "auto", None, 400),
        (json.dumps(unknown_type).encode(), "auto", None, 400),
        (big, "auto", None, 413),
        (good, None, None, 401),
        (good, "auto", "another-secret", 403),
        (good, "sha256=" + "0" * 64, None, 403),
        (good, "garbage", None, 403),
    ]
    for body, sig, secret, expected in cases:
        status, answer = rasa.post(body, signature=sig, secret=secret)
        assert status == expected, (expected, answer)
        assert "error" in answer
    time.sleep(0.5)
    assert _counts(rasa) == before
    assert [r for r in graph.requests if r.body.get("to") == to] == []


def test_replayed_delivery_is_a_noop(rasa: RasaServer, graph: FakeGraph) -> None:
    to = phone()
    body = json.dumps(text_notification(to, wamid(), "sim")).encode()
    assert rasa.post(body)[1]["new"] == 1
    wait_texts(graph, to, 1)
    before = _counts(rasa)
    for _ in range(3):
        assert rasa.post(body) == (200, {"status": "ok", "items": 1, "new": 0})
    time.sleep(1.0)
    assert _counts(rasa) == before
    assert texts_to(graph, to) == ["Confirmado, obrigado!"]


def test_without_app_secret_the_webhook_answers_503(graph: FakeGraph, tmp_path: Path) -> None:
    srv = RasaServer(tmp_path, graph.base_url, tmp_path / "atende.db", app_secret=None).start(tiny_model())
    try:
        body = json.dumps(text_notification(phone(), wamid(), "oi")).encode()
        assert srv.post(body, signature="sha256=" + "0" * 64)[0] == 503
        assert srv.post(body, signature=None)[0] == 503
        assert db(srv, "select count(*) from whatsapp_inbox") == [(0,)]
    finally:
        srv.stop()
