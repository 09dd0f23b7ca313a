"""LGPD over the real stack (issue #17 part 1): the WhatsApp privacy notice and the website consent.

The shared stack (tests/conftest.py) runs with the notice off so that the other journeys count the
answers they expect; the WhatsApp journeys here run on the session's second stack
(`variant_stack`), started with the notice on (version t1, a policy URL). The version change
restarts its action server, as an operator does to change the notice's text version or enable an
LLM, and the module puts the started settings back afterwards.

- WhatsApp, over the real signed webhook and the fake Graph API: the first contact gets the notice
  before the answer, the next message does not, a session that expired does not (once per person,
  not per session), and the first session after the version changed does.
- Website, over the real socket.io connector: the consent the widget sends with its messages is
  recorded once, with the server's clock; a forged one is dropped and the turn still works.
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from tests.support.sockets import close_now
from tests.support.stack import VARIANT_POLICY_URL, Stack

from .test_journeys import db
from .test_sessions import age
from .test_whatsapp_journeys import message, texts_to, wait_texts

pytestmark = pytest.mark.integration

POLICY = VARIANT_POLICY_URL  # "https://vendor.example/privacidade"


def _restart_actions(stack: Stack, **env: str) -> None:
    stack.actions.stop()
    stack.actions.env.update(env)
    stack.actions.start()
    stack.actions.wait_ready(180)


@pytest.fixture(scope="module")
def notice_on(variant_stack: Stack) -> Iterator[Stack]:
    stack = variant_stack
    assert (stack.actions.env["ATENDE_PRIVACY_NOTICE_ENABLED"], stack.actions.env["ATENDE_PRIVACY_NOTICE_VERSION"],
            stack.actions.env["ATENDE_PRIVACY_POLICY_URL"]) == ("1", "t1", POLICY)
    saved = dict(stack.actions.env)
    try:
        yield stack
    finally:
        if stack.actions.env != saved or not stack.actions.alive():
            stack.actions.stop()
            stack.actions.env.clear()
            stack.actions.env.update(saved)
            stack.actions.start()
            stack.actions.wait_ready(180)


def _rows(stack: Stack, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def _fresh_customer_phone(stack: Stack) -> tuple[str, str]:
    """A registered customer's new phone number, never used by another test: (first name, phone)."""
    from helpdesk.models import Contact, Customer

    phone = "5531944" + str(uuid.uuid4().int)[:6]
    with db(stack) as s:
        customer = s.scalar(sa.select(Customer).order_by(Customer.id.desc()).limit(1))
        s.add(Contact(customer_id=customer.id, kind="phone", value=phone, name="Teste aviso"))
        return customer.responsible_name.split()[0], phone


def _say(stack: Stack, phone: str, text: str, replies: int = 1) -> list[str]:
    before = len(texts_to(stack, phone))
    message(stack, phone, {"type": "text", "text": {"body": text}})
    wait_texts(stack, phone, before + replies)
    time.sleep(1.5)  # anything more (a notice sent twice) would arrive now
    return texts_to(stack, phone)[before:]


def _is_notice(text: str) -> bool:
    return text.startswith("Aviso de privacidade:")


def test_whatsapp_notice_once_per_person_and_again_for_a_new_version(notice_on: Stack) -> None:
    stack = notice_on
    first, phone = _fresh_customer_phone(stack)
    texts = _say(stack, phone, "oi", replies=2)
    assert len(texts) == 2 and _is_notice(texts[0]), texts
    assert "chamados" in texts[0] and "LGPD" in texts[0] and texts[0].endswith(f"Política de privacidade: {POLICY}")
    assert "inteligência artificial" not in texts[0]  # no LLM configured in this stack
    assert texts[1] == f"Olá, {first}! Como posso ajudar hoje?"  # the answer comes after the notice
    assert _rows(stack, "SELECT recipient, channel FROM privacy_notices WHERE conversation_id = :c "
                        "ORDER BY recipient", c=f"whatsapp:{phone}") == [
        (f"conversation:whatsapp:{phone}", "whatsapp"), (f"phone:{phone}", "whatsapp")]

    # the next message, and the next session of the same person: no notice
    assert not any(_is_notice(t) for t in _say(stack, phone, "oi"))
    age(stack, f"whatsapp:{phone}")
    assert not any(_is_notice(t) for t in _say(stack, phone, "oi"))

    # the operator changes the text version (and switches an LLM on): told again, once
    _restart_actions(stack, ATENDE_PRIVACY_NOTICE_VERSION="t2", OPENAI_API_KEY="sk-test-notice",
                     OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    age(stack, f"whatsapp:{phone}")
    texts = _say(stack, phone, "oi", replies=2)
    assert _is_notice(texts[0]) and "provedor de inteligência artificial configurado (127.0.0.1)" in texts[0]
    assert texts[1] == f"Olá, {first}! Como posso ajudar hoje?"
    assert not any(_is_notice(t) for t in _say(stack, phone, "oi"))
    versions = _rows(stack, "SELECT DISTINCT text_version FROM privacy_notices WHERE recipient = :r "
                            "ORDER BY text_version", r=f"phone:{phone}")
    assert versions == [("t1",), ("t2-ia",)]


def test_anonymous_whatsapp_sender_gets_it_once_per_conversation(notice_on: Stack) -> None:
    stack = notice_on
    phone = "5531955" + str(uuid.uuid4().int)[:6]  # nobody's number
    texts = _say(stack, phone, "oi", replies=2)
    assert _is_notice(texts[0]) and texts[1].startswith("Olá")
    assert not any(_is_notice(t) for t in _say(stack, phone, "bom dia"))


def test_website_turn_records_no_notice(notice_on: Stack) -> None:
    """The notice is WhatsApp's: the REST channel (and the website) get none."""
    import requests

    sender = f"notice-{uuid.uuid4().hex[:8]}"
    resp = requests.post(f"{notice_on.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": "oi"},
                         timeout=120)
    assert resp.status_code == 200
    assert not any(_is_notice(m.get("text", "")) for m in resp.json())
    assert _rows(notice_on, "SELECT id FROM privacy_notices WHERE conversation_id = :c", c=f"rest:{sender}") == []


# ---- website consent over the real socket.io connector ------------------------------------------

def _web_turn(stack: Stack, session_id: str, text: str, custom: dict[str, Any]) -> list[str]:
    import queue

    import socketio

    replies: "queue.Queue[dict[str, Any]]" = queue.Queue()
    confirmed: "queue.Queue[str]" = queue.Queue()
    sio = socketio.Client(reconnection=False)
    sio.on("session_confirm", lambda sid: confirmed.put(sid))
    sio.on("bot_uttered", lambda m: replies.put(m))
    sio.connect(f"{stack.rasa_url}?session_id={session_id}", headers={"Origin": "http://127.0.0.1"},
                transports=["polling"], socketio_path="/socket.io")
    try:
        sio.emit("session_request", {"session_id": session_id, "customData": custom})
        assert confirmed.get(timeout=30) == session_id
        sio.emit("user_uttered", {"message": text, "session_id": session_id, "customData": custom,
                                  "client_id": uuid.uuid4().hex[:12]})
        out = [replies.get(timeout=90)]
        time.sleep(1.0)
        while not replies.empty():
            out.append(replies.get_nowait())
        return [str(m.get("text") or "") for m in out]
    finally:
        close_now(sio)  # the polling client would wait ~25 s for its pending long-poll


def _consents(stack: Stack, conversation: str) -> list[tuple[Any, ...]]:
    return _rows(stack, "SELECT channel, text_version, policy_url, customer_id, received_at FROM privacy_consents "
                        "WHERE conversation_id = :c ORDER BY id", c=conversation)


GOOD_CONSENT = {"version": "web-2026-12", "policy_url": "https://vendor.example/privacidade"}


def test_website_consent_is_recorded_once_with_the_server_clock(stack: Stack) -> None:
    from datetime import datetime, timedelta, timezone

    session = uuid.uuid4().hex[:20]
    before = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=2)
    assert any(t.startswith("Olá") for t in _web_turn(stack, session, "oi", {"consent": GOOD_CONSENT}))
    rows = _consents(stack, f"web:{session}")
    assert [r[:4] for r in rows] == [("website", "web-2026-12", "https://vendor.example/privacidade", None)]
    received = rows[0][4] if isinstance(rows[0][4], datetime) else datetime.fromisoformat(str(rows[0][4]))
    assert before <= received <= datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=2)
    _web_turn(stack, session, "bom dia", {"consent": GOOD_CONSENT})
    assert len(_consents(stack, f"web:{session}")) == 1


def test_a_verified_visitors_consent_names_the_customer(stack: Stack) -> None:
    from atende_contract.webtoken import sign_token
    from helpdesk.models import Customer

    from tests.support.stack import WEBCHAT_SECRET

    with db(stack) as s:
        customer = s.scalar(sa.select(Customer).order_by(Customer.id).limit(1))
        cid = customer.id
    session = uuid.uuid4().hex[:20]
    token = sign_token(WEBCHAT_SECRET, sub=str(cid))
    _web_turn(stack, session, "oi", {"auth_token": token, "consent": GOOD_CONSENT})
    assert [r[3] for r in _consents(stack, f"web:{session}")] == [cid]


@pytest.mark.parametrize("forged", [
    {"version": "web-2026-12", "accepted_at": "1999-01-01T00:00:00Z"},
    {"version": "Concordo com tudo, pode usar meus dados"},
    {"version": "v" * 500},
    {"version": "web-2026-12", "policy_url": "http://phishing.example/p"},
    "web-2026-12",
])
def test_a_forged_consent_is_dropped_and_the_turn_still_works(stack: Stack, forged: Any) -> None:
    session = uuid.uuid4().hex[:20]
    assert any(t.startswith("Olá") for t in _web_turn(stack, session, "oi", {"consent": forged}))
    assert _consents(stack, f"web:{session}") == []
