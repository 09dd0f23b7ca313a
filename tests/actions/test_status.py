"""Ticket status: customers see only their own tickets."""
from __future__ import annotations

from actions.status import ActionTicketStatus

from .conftest import JOAO_PHONE, MARIA_PHONE, Demo, make_tracker, responses, run_action, slots_of


def test_own_ticket_status(db: Demo) -> None:
    tracker = make_tracker(f"status do chamado #{db.maria_ticket}", "ask_ticket_status", sender=MARIA_PHONE,
                           channel="whatsapp")
    messages, _ = run_action(ActionTicketStatus(), tracker)
    assert messages[0]["response"] == "utter_ticket_status"
    assert messages[0]["ticket_number"] == str(db.maria_ticket)
    assert messages[0]["status"] == "novo"


def test_someone_elses_ticket_is_not_shown(db: Demo) -> None:
    tracker = make_tracker(f"e o chamado {db.joao_ticket}?", "ask_ticket_status", sender=MARIA_PHONE,
                           channel="whatsapp")
    messages, _ = run_action(ActionTicketStatus(), tracker)
    assert responses(messages) == ["utter_ticket_not_found"]
    assert "João" not in str(messages) and "Segredo" not in str(messages)


def test_nonexistent_ticket_gets_the_same_answer(db: Demo) -> None:
    tracker = make_tracker("chamado #999999", "ask_ticket_status", sender=JOAO_PHONE, channel="whatsapp")
    messages, _ = run_action(ActionTicketStatus(), tracker)
    assert responses(messages) == ["utter_ticket_not_found"]


def test_list_of_own_tickets(db: Demo) -> None:
    tracker = make_tracker("meus chamados", "ask_ticket_status", sender=JOAO_PHONE, channel="whatsapp")
    messages, _ = run_action(ActionTicketStatus(), tracker)
    numbers = [m["ticket_number"] for m in messages if m.get("response") == "utter_ticket_status"]
    assert numbers == [str(db.joao_ticket)]


def test_unidentified_visitor_is_told_how_to_verify(db: Demo) -> None:
    tracker = make_tracker(f"chamado {db.joao_ticket}", "ask_ticket_status", channel="website")
    messages, events = run_action(ActionTicketStatus(), tracker)
    assert responses(messages) == ["utter_verify_identity"]
    assert "customer_id" not in slots_of(events)


def test_cnpj_claim_does_not_show_the_companys_tickets(db: Demo) -> None:
    # A CNPJ typed in the chat (public data) is only a claim: no status, no list, no details.
    claim = {"claimed_customer_id": str(db.joao_id), "claimed_cnpj": "45.723.174/0001-xx", "identity_checked": True}
    for text in (f"status do chamado {db.joao_ticket}", "meus chamados"):
        tracker = make_tracker(text, "ask_ticket_status", channel="website", slots=claim)
        messages, _ = run_action(ActionTicketStatus(), tracker)
        assert responses(messages) == ["utter_verify_identity"], text
        assert "Segredo" not in str(messages) and str(db.joao_ticket) not in str(messages)


def test_unknown_whatsapp_number_with_a_claim_is_told_how_to_verify(db: Demo) -> None:
    claim = {"claimed_customer_id": str(db.joao_id), "identity_checked": True}
    tracker = make_tracker("meus chamados", "ask_ticket_status", sender="5531900001111", channel="whatsapp",
                           slots=claim)
    messages, _ = run_action(ActionTicketStatus(), tracker)
    assert responses(messages) == ["utter_verify_identity"]


def test_visitor_sees_the_ticket_opened_in_this_conversation(db: Demo) -> None:
    from helpdesk.db import session_scope
    from helpdesk.services import tickets

    with session_scope() as s:
        mine = tickets.open_ticket(s, customer_id=db.joao_id, channel="web", type="erro", module=None,
                                   description="aberto por um visitante", conversation_id="conv-visitor").id
    claim = {"claimed_customer_id": str(db.joao_id), "identity_checked": True}
    for text in (f"chamado {mine}", "e meu chamado?"):
        tracker = make_tracker(text, "ask_ticket_status", sender="conv-visitor", channel="website", slots=claim)
        messages, _ = run_action(ActionTicketStatus(), tracker)
        assert [m.get("ticket_number") for m in messages] == [str(mine)], text
    # ...but not the company's other tickets, even by number.
    tracker = make_tracker(f"chamado {db.joao_ticket}", "ask_ticket_status", sender="conv-visitor",
                           channel="website", slots=claim)
    messages, _ = run_action(ActionTicketStatus(), tracker)
    assert responses(messages) == ["utter_verify_identity"]


def test_payload_ticket_number_is_ignored_for_others(db: Demo) -> None:
    text = '/ask_ticket_status{"ticket_number": "%d", "customer_id": "%d"}' % (db.joao_ticket, db.joao_id)
    tracker = make_tracker(text, "ask_ticket_status", sender=MARIA_PHONE, channel="whatsapp",
                           entities=[{"entity": "ticket_number", "value": str(db.joao_ticket)}])
    messages, _ = run_action(ActionTicketStatus(), tracker)
    assert "Segredo" not in str(messages)
    assert str(db.joao_ticket) not in [m.get("ticket_number") for m in messages]
