"""WhatsApp end to end with the real assistant: signed webhook -> Rasa -> action server -> fake Graph API.

Uses the session-wide ``atende_stack`` fixture (tests/conftest.py): the project's trained model,
the action server over a demo database and the fake Graph API standing in for Meta.
"""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from connectors.whatsapp.signature import sign
from tests.support.stack import WHATSAPP_SECRET, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _post(stack: Stack, doc: dict[str, Any]) -> int:
    body = json.dumps(doc).encode()
    req = urllib.request.Request(f"{stack.rasa_url}/webhooks/whatsapp/webhook", data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "X-Hub-Signature-256": sign(body, WHATSAPP_SECRET)})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _value(wa_id: str, **kw: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "551140040000", "phone_number_id": "1122334455667"},
            "contacts": [{"profile": {"name": "Cliente E2E"}, "wa_id": wa_id}], **kw}


def _doc(field: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "WABA", "changes": [{"field": field, "value": value}]}]}


def _texts(stack: Stack, to: str, n: int, timeout: float = 90) -> list[str]:
    return stack.graph.wait_texts(to, n, timeout)


def test_text_message_gets_a_reply(atende_stack: Stack) -> None:
    to = "5511955550001"
    doc = _doc("messages", _value(to, messages=[{"from": to, "id": "wamid.e2e.text.1", "timestamp": "1",
                                                 "type": "text", "text": {"body": "oi"}}]))
    assert _post(atende_stack, doc) == 200
    replies = _texts(atende_stack, to, 1)
    assert replies and all(r.strip() for r in replies)
    assert atende_stack.graph.violations() == []


def test_missed_call_opens_a_ticket_and_tells_the_customer(atende_stack: Stack) -> None:
    to = "5511955550002"
    call = {"id": "wacid.e2e.missed", "from": to, "to": "551140040000", "event": "terminate",
            "timestamp": "1", "direction": "USER_INITIATED", "status": "FAILED"}
    assert _post(atende_stack, _doc("calls", _value(to, calls=[call]))) == 200
    replies = _texts(atende_stack, to, 1)
    match = [re.search(r"#(\d+)", r) for r in replies]
    numbers = [m.group(1) for m in match if m]
    assert numbers, replies
    engine = create_engine(atende_stack.database_url)
    with engine.connect() as c:
        rows = c.execute(text("select id, channel, conversation_id from tickets where conversation_id = :c"),
                         {"c": f"whatsapp:{to}"}).all()
    engine.dispose()
    assert [(str(r.id), r.channel) for r in rows] == [(numbers[0], "phone")]
    # a replay of the same delivery opens nothing more
    assert _post(atende_stack, _doc("calls", _value(to, calls=[call]))) == 200
    time.sleep(2)
    assert len(_texts(atende_stack, to, 1, timeout=1)) == len(replies)
