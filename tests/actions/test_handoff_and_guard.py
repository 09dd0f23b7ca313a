"""Hand-off loop, technician replies, ticket closing and rating; the bad-input guard and fallback."""
from __future__ import annotations

from typing import Any

import pytest

from actions.guard import ActionFallback, bad_input_response, is_emoji_only
from actions.handoff import ActionHandoff, ActionRecordRating, ActionRelayAgentReply, ActionTicketClosed
from actions.outcomes import ActionGoodbye

from .conftest import MARIA_PHONE, Demo, make_tracker, responses, run_action, slots_of


def open_ticket(conversation: str, customer_id: int | None = None) -> int:
    from helpdesk.db import session_scope
    from helpdesk.services import tickets

    with session_scope() as s:
        return int(tickets.open_ticket(s, customer_id=customer_id, channel="whatsapp", type="erro", module="pdv",
                                       description="PDV travado", conversation_id=conversation).id)


def ticket_events(ticket_id: int) -> list[tuple[str, str, str]]:
    from helpdesk.db import session_scope
    from helpdesk.services import tickets

    with session_scope() as s:
        return [(e.kind, e.actor, e.text) for e in tickets.get(s, ticket_id).events]


def loop_events(events: list[dict[str, Any]]) -> list[Any]:
    return [e.get("name") for e in events if e.get("event") == "active_loop"]


def test_customer_messages_go_to_the_ticket_silently(db: Demo) -> None:
    number = open_ticket(MARIA_PHONE, db.maria_id)
    tracker = make_tracker("segue o print do erro", "report_problem", sender=MARIA_PHONE, channel="whatsapp",
                           slots={"customer_name": "Maria", "active_ticket": str(number)}, active_loop="action_handoff")
    messages, events = run_action(ActionHandoff(), tracker)
    assert messages == [] and events == []
    assert ("message_in", "Maria", "segue o print do erro") in ticket_events(number)


def test_media_and_calls_during_hand_off_are_noted(db: Demo) -> None:
    number = open_ticket("5511900000001")
    media = make_tracker("/media_received", "media_received", sender="5511900000001", channel="whatsapp",
                         metadata={"whatsapp": {"type": "audio", "media_id": "m-1"}}, active_loop="action_handoff")
    call = make_tracker("/inbound_call", "inbound_call", sender="5511900000001", channel="whatsapp",
                        metadata={"call": {"event": "terminate", "missed": False, "duration": 125}},
                        active_loop="action_handoff")
    assert run_action(ActionHandoff(), media) == ([], [])
    assert run_action(ActionHandoff(), call) == ([], [])
    texts = [t for kind, _, t in ticket_events(number) if kind == "message_in"]
    assert texts == ["[audio recebido pelo WhatsApp: m-1]", "Ligação atendida pelo WhatsApp (duração 2 min 05 s)."]


def test_loop_activation_run_does_nothing(db: Demo) -> None:
    number = open_ticket("conv-act")
    tracker = make_tracker("o pdv trava", "report_problem", sender="conv-act", active_loop="action_handoff")
    tracker.events.append({"event": "action", "name": "action_open_ticket"})
    assert run_action(ActionHandoff(), tracker) == ([], [])
    assert [k for k, _, _ in ticket_events(number)] == ["created"]


def test_agent_reply_is_relayed(db: Demo) -> None:
    open_ticket("conv-agent")
    ents = [{"entity": "agent_text", "value": "Já estou acessando."}, {"entity": "agent_name", "value": "Bruno"}]
    for action, loop in ((ActionHandoff(), "action_handoff"), (ActionRelayAgentReply(), None)):
        tracker = make_tracker("EXTERNAL: EXTERNAL_agent_reply", "EXTERNAL_agent_reply", sender="conv-agent",
                               entities=ents, active_loop=loop)
        messages, events = run_action(action, tracker)
        assert messages[0]["response"] == "utter_agent_reply"
        assert (messages[0]["agent_name"], messages[0]["agent_text"]) == ("Bruno", "Já estou acessando.")
        assert events == []


def test_ticket_closed_ends_the_loop(db: Demo) -> None:
    number = open_ticket("conv-close")
    tracker = make_tracker("EXTERNAL", "EXTERNAL_ticket_closed", sender="conv-close", active_loop="action_handoff",
                           entities=[{"entity": "ticket_number", "value": str(number)}])
    messages, events = run_action(ActionHandoff(), tracker)
    assert messages[0]["response"] == "utter_ticket_closed" and messages[0]["ticket_number"] == str(number)
    assert loop_events(events) == [None]
    messages, events = run_action(ActionTicketClosed(), tracker)
    assert messages[0]["ticket_number"] == str(number) and slots_of(events)["active_ticket"] is None


def test_ticket_closed_in_the_console_is_noticed_on_the_next_message(db: Demo) -> None:
    tracker = make_tracker("oi, e ai?", "greet", sender="conv-gone", active_loop="action_handoff",
                           slots={"active_ticket": "42"})
    messages, events = run_action(ActionHandoff(), tracker)
    assert responses(messages) == ["utter_ticket_closed"] and loop_events(events) == [None]


def test_rating_is_recorded(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.models import ConversationOutcome
    from sqlalchemy import select

    messages, events = run_action(ActionRecordRating(), make_tracker("5", "rate", sender="conv-rate",
                                                                      slots={"rating": "5"}))
    assert responses(messages) == ["utter_thanks_rating"] and slots_of(events) == {"rating": None}
    with session_scope() as s:
        assert s.scalar(select(ConversationOutcome.rating).where(ConversationOutcome.conversation_id == "conv-rate")) == 5
    messages, _ = run_action(ActionRecordRating(), make_tracker("x", "rate", sender="conv-skip", slots={"rating": "skip"}))
    assert responses(messages) == ["utter_rating_skipped"]


def test_goodbye_records_resolution_only_after_an_answer(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.services import outcomes

    history = [{"event": "slot", "name": "awaiting", "value": "resolved_check"}]
    tracker = make_tracker("nao", "deny", sender="conv-bye", slots={"awaiting": "anything_else"}, history=history)
    messages, events = run_action(ActionGoodbye(), tracker)
    assert responses(messages) == ["utter_goodbye"] and slots_of(events) == {"awaiting": None}
    with session_scope() as s:
        assert outcomes.current(s, "conv-bye", create=False).resolved_by_bot is True


@pytest.mark.parametrize("text,expected", [
    ("", "utter_empty_message"), ("\n\t ", "utter_empty_message"), ("x" * 10_000, "utter_message_too_long"),
    ("😀", "utter_emoji_only"), ("👍🏽🎉", "utter_emoji_only"), ("ok", None), ("erro 404 😀", None),
])
def test_bad_input_response(text: str, expected: str | None) -> None:
    assert bad_input_response(text) == expected


def test_emoji_detection() -> None:
    assert is_emoji_only("🙂 🙂") and not is_emoji_only("???") and not is_emoji_only("")


def test_fallback_rephrase_once_then_offer_a_human(db: Demo) -> None:
    messages, events = run_action(ActionFallback(), make_tracker("blorp", "nlu_fallback"))
    assert responses(messages) == ["utter_rephrase"] and events == []
    history = [{"event": "action", "name": "action_listen"},
               {"event": "user", "text": "blorp", "parse_data": {"intent": {"name": "nlu_fallback"}}}]
    messages, events = run_action(ActionFallback(), make_tracker("fnord", "nlu_fallback", history=history))
    assert responses(messages) == ["utter_offer_human"] and slots_of(events)["awaiting"] == "offer_ticket"


def test_fallback_explains_emoji_and_empty(db: Demo) -> None:
    assert responses(run_action(ActionFallback(), make_tracker("🙃🙃", "nonsense"))[0]) == ["utter_emoji_only"]
    assert responses(run_action(ActionFallback(), make_tracker("", "nlu_fallback"))[0]) == ["utter_empty_message"]

