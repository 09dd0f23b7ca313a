"""action_session_start: a new session after 60 idle minutes keeps a hand-off, re-identifies, and
drops stale dialogue state."""
from __future__ import annotations

import time
from typing import Any

import jwt

from actions.session import ActionSessionStart

from .conftest import JWT_SECRET, MARIA_PHONE, Demo, attestation_for, run_action, slots_of

MARIA_CONV = f"whatsapp:{MARIA_PHONE}"


def loop_of(events: list[dict[str, Any]]) -> Any:
    loops = [e.get("name") for e in events if e.get("event") == "active_loop"]
    return loops[-1] if loops else "unset"


def handoff_history(sender: str, number: int, channel: str = "whatsapp") -> list[dict[str, Any]]:
    """The previous session: a ticket was opened and handed off, then the customer went quiet."""
    return [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "o pdv travou", "input_channel": channel,
         "parse_data": {"intent": {"name": "report_problem"}}},
        {"event": "action", "name": "action_open_ticket"},
        {"event": "slot", "name": "active_ticket", "value": str(number)},
        {"event": "active_loop", "name": "action_handoff"},
    ]


def session_start(sender: str, *, slots: dict[str, Any] | None = None,
                  history: list[dict[str, Any]] | None = None,
                  metadata: dict[str, Any] | None = None, attest: str | None = None) -> list[dict[str, Any]]:
    """Run action_session_start; `attest` puts the connector's attestation of that subject in the
    metadata of the message that starts the session (as Rasa passes it: `session_started_metadata`)."""
    from rasa_sdk import Tracker

    from atende_contract import attestation

    events = list(history or [])
    all_slots = dict(slots or {})
    if attest is not None:
        metadata = {**(metadata or {}), attestation.METADATA_KEY: attestation_for(sender, attest, "m-new")}
    if metadata:
        all_slots["session_started_metadata"] = metadata
    latest = next((e for e in reversed(events) if e.get("event") == "user"), {})
    message = {"text": latest.get("text"), "intent": (latest.get("parse_data") or {}).get("intent") or {},
               "entities": [], "metadata": {}, "input_channel": latest.get("input_channel")}
    tracker = Tracker(sender, all_slots, message, events, False, None,
                      {"name": "action_handoff"} if slots and slots.get("active_ticket") else {}, "action_listen")
    _, out = run_action(ActionSessionStart(), tracker)
    return out


def open_ticket(db: Demo, conversation: str, customer_id: int | None) -> int:
    from helpdesk.db import session_scope
    from helpdesk.services import tickets

    with session_scope() as s:
        return int(tickets.open_ticket(s, customer_id=customer_id, channel="whatsapp", type="erro", module=None,
                                       description="o pdv travou", conversation_id=conversation).id)


def test_handoff_in_progress_survives_a_new_session(db: Demo) -> None:
    number = open_ticket(db, MARIA_CONV, db.maria_id)
    stale = {"active_ticket": str(number), "customer_id": str(db.maria_id), "customer_name": "Maria",
             "identity_checked": True, "awaiting": "resolved_check", "ticket_description": "velho",
             "requested_slot": "rating", "rating": "3", "last_question": "o pdv travou"}
    events = session_start(MARIA_CONV, slots=stale, history=handoff_history(MARIA_CONV, number),
                           attest=f"phone:{MARIA_PHONE}")
    assert events[0]["event"] == "session_started"
    assert (events[-1]["event"], events[-1]["name"]) == ("action", "action_listen")
    slots = slots_of(events)
    # the hand-off loop is active again, with its ticket
    assert loop_of(events) == "action_handoff" and slots["active_ticket"] == str(number)
    # identity looked up again from the attested WhatsApp number
    assert slots["customer_id"] == str(db.maria_id) and slots["customer_name"] == "Maria"
    # no stale yes/no question or form comes back
    assert not {"awaiting", "ticket_description", "requested_slot", "rating"} & set(slots)
    assert slots["last_question"] == "o pdv travou"


def test_no_open_ticket_means_no_handoff_and_a_fresh_start(db: Demo) -> None:
    events = session_start("whatsapp:5531900001111", attest="phone:5531900001111",
                           slots={"awaiting": "offer_ticket", "requested_slot": "ticket_module"},
                           history=[{"event": "user", "text": "oi", "input_channel": "whatsapp",
                                     "parse_data": {"intent": {"name": "greet"}}}])
    slots = slots_of(events)
    assert loop_of(events) == "unset"
    assert "active_ticket" not in slots and "awaiting" not in slots
    slots.pop("session_started_metadata")
    assert slots == {"identity_checked": True}  # an unregistered number: looked up, not found


def test_ticket_closed_while_idle_keeps_its_number_for_the_notice(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.services import tickets, technicians

    number = open_ticket(db, MARIA_PHONE, db.maria_id)
    with session_scope() as s:
        tech = technicians.create(s, name="Bruno", email="bruno@x.com", password="senha-forte-123")
        tickets.assume(s, number, tech.id)
        tickets.resolve(s, number, technician_id=tech.id, solution="ok")
    events = session_start(MARIA_PHONE, slots={"active_ticket": str(number)},
                           history=handoff_history(MARIA_PHONE, number))
    assert loop_of(events) == "unset"
    assert slots_of(events)["active_ticket"] == str(number)


def test_cnpj_claim_does_not_carry_over(db: Demo) -> None:
    events = session_start("web-9",
                           slots={"claimed_customer_id": str(db.joao_id), "claimed_cnpj": "x", "identity_checked": True},
                           history=[{"event": "user", "text": "oi", "input_channel": "website",
                                     "parse_data": {"intent": {"name": "greet"}}}])
    slots = slots_of(events)
    assert "claimed_customer_id" not in slots and "customer_id" not in slots


def test_website_subject_of_the_new_session_identifies(db: Demo) -> None:
    events = session_start("web:s10", attest=f"id:{db.maria_id}",
                           history=[{"event": "user", "text": "oi", "input_channel": "website",
                                     "parse_data": {"intent": {"name": "greet"}}}])
    slots = slots_of(events)
    assert slots["customer_id"] == str(db.maria_id)
    assert set(slots["session_started_metadata"]) == {"atende_attestation"}


def test_a_token_or_stale_slots_do_not_identify_the_new_session(db: Demo) -> None:
    token = jwt.encode({"sub": str(db.maria_id), "exp": int(time.time()) + 600}, JWT_SECRET, algorithm="HS256")
    events = session_start("web:s11", metadata={"auth_token": token},
                           slots={"customer_id": str(db.maria_id), "customer_name": "Maria"},
                           history=[{"event": "user", "text": "oi", "input_channel": "website",
                                     "parse_data": {"intent": {"name": "greet"}}}])
    assert "customer_id" not in slots_of(events)
    # an attestation of another conversation (copied from elsewhere) neither
    events = session_start("web:s12", metadata={"atende_attestation": attestation_for(
        "web:s11", f"id:{db.maria_id}", "m-new")})
    assert "customer_id" not in slots_of(events)


def test_first_session_of_a_new_conversation_needs_nothing(db: Demo) -> None:
    events = session_start("brand-new", history=[])
    assert [e["event"] for e in events] == ["session_started", "action"]


def test_phone_sender_on_another_channel_is_not_identified(db: Demo) -> None:
    events = session_start(MARIA_PHONE,
                           history=[{"event": "user", "text": "oi", "input_channel": "rest",
                                     "parse_data": {"intent": {"name": "greet"}}}])
    assert "customer_id" not in slots_of(events)


def test_after_the_new_session_the_handoff_loop_puts_messages_on_the_ticket(db: Demo) -> None:
    """The tracker as Rasa has it after the new session: SessionStarted, our events, a new message."""
    from rasa_sdk import Tracker

    from actions.handoff import ActionHandoff
    from helpdesk.db import session_scope
    from helpdesk.services import tickets

    # A ticket opened before conversation ids were namespaced keeps the bare phone: still found.
    number = open_ticket(db, MARIA_PHONE, db.maria_id)
    started = session_start(MARIA_CONV, slots={"active_ticket": str(number)},
                            history=handoff_history(MARIA_CONV, number), attest=f"phone:{MARIA_PHONE}")
    message = {"text": "alguma novidade?", "intent": {"name": "ask_question"}, "entities": [], "metadata": {},
               "input_channel": "whatsapp"}
    events = [*handoff_history(MARIA_CONV, number), *started,
              {"event": "user", "text": "alguma novidade?", "input_channel": "whatsapp",
               "parse_data": {"intent": {"name": "ask_question"}}}]
    assert started[0]["event"] == "session_started" and loop_of(started) == "action_handoff"
    tracker = Tracker(MARIA_CONV, slots_of(started), message, events, False, None, {"name": loop_of(started)},
                      "action_listen")
    messages, out = run_action(ActionHandoff(), tracker)
    assert messages == [] and out == []  # silent, still in hand-off
    with session_scope() as s:
        assert [(e.kind, e.text) for e in tickets.get(s, number).events][-1] == ("message_in", "alguma novidade?")
