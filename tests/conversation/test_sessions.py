"""Sessions expire after 60 idle minutes (domain.yml). Over REST with the real stack: a hand-off
survives the new session, and a customer coming back gets a fresh start, not a stale question or form.

Time is moved by ageing the conversation's stored events (the `events` table of Rasa's SQL tracker
store, in the stack's database) by two hours: exactly what Rasa sees after two idle hours.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.stack import Stack

from .conftest import Chat
from .test_journeys import events_of, finish_form, ticket_for

pytestmark = pytest.mark.integration

IDLE = 2 * 3600


def age(stack: Stack, sender: str, seconds: int = IDLE) -> None:
    """Make the conversation's stored events `seconds` older."""
    engine = sa.create_engine(stack.database_url)
    try:
        with engine.begin() as conn:
            done = conn.execute(sa.text(
                "UPDATE events SET timestamp = timestamp - :s, "
                "data = json_set(data, '$.timestamp', json_extract(data, '$.timestamp') - :s) "
                "WHERE sender_id = :id"), {"s": seconds, "id": sender}).rowcount
    finally:
        engine.dispose()
    assert done > 0


def sessions(chat: Chat) -> int:
    import requests

    from tests.support.stack import rasa_auth_headers

    resp = requests.get(f"{chat.stack.rasa_url}/conversations/{chat.conversation}/tracker",
                        params={"include_events": "ALL"}, headers=rasa_auth_headers(), timeout=60)
    assert resp.status_code == 200
    return sum(1 for e in resp.json()["events"] if e.get("event") == "session_started")


def test_handoff_survives_an_expired_session(stack: Stack, chat: Chat) -> None:
    finish_form(chat, chat.texts("quero falar com um atendente"))
    ticket = ticket_for(stack, chat.conversation)
    assert ticket is not None
    before = sessions(chat)
    age(stack, chat.conversation)
    # Two hours later the customer writes again: a new session, and the bot is still silent.
    assert chat.say("ainda esta travado, alguma novidade?") == []
    assert sessions(chat) == before + 1
    assert ("message_in", "ainda esta travado, alguma novidade?") in events_of(stack, ticket.id)
    assert chat.tracker()["active_loop"].get("name") == "action_handoff"
    # The technician's reply, two more idle hours later, still reaches the customer.
    age(stack, chat.conversation)
    relayed = chat.trigger("EXTERNAL_agent_reply", {"agent_text": "Já resolvi por aqui.", "agent_name": "Bruno"})
    assert [m.get("text") for m in relayed] == ["Bruno: Já resolvi por aqui."]
    closed = [m.get("text", "") for m in chat.trigger("EXTERNAL_ticket_closed", {"ticket_number": str(ticket.id)})]
    assert closed[0] == f"O chamado #{ticket.id} foi concluído." and "De 1 a 5" in closed[-1]
    assert any("Obrigado pela avaliação" in t for t in chat.texts("4"))


def test_returning_customer_gets_no_stale_question(stack: Stack, chat: Chat) -> None:
    texts = chat.texts("como faço sangria no pdv?")
    if not any("Isso resolveu?" in t for t in texts):
        pytest.skip("the demo documentation does not answer this question")
    age(stack, chat.conversation)
    # "sim" an hour later is not an answer to "Isso resolveu?" any more.
    texts = chat.texts("sim")
    assert texts == ["Certo! Como posso ajudar?"]
    assert chat.slots()["awaiting"] is None


def test_returning_customer_gets_no_stale_form(stack: Stack, chat: Chat) -> None:
    assert any("Descreva" in t for t in chat.texts("quero falar com um atendente"))
    age(stack, chat.conversation)
    texts = chat.texts("oi")
    assert any(t.startswith("Olá") for t in texts) and not any("Descreva" in t for t in texts)
    assert chat.tracker()["active_loop"] == {} or chat.tracker()["active_loop"].get("name") is None
    assert ticket_for(stack, chat.conversation) is None
