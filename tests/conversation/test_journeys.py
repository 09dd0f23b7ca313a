"""The journeys end to end over Rasa's REST channel: trained model, real action server, SQL tracker
store and the helpdesk database. (WhatsApp- and website-specific identity is covered in
tests/actions; the connectors' own tests cover their channels.)"""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.support.stack import Stack

from .conftest import Chat

pytestmark = pytest.mark.integration


def db(stack: Stack):  # type: ignore[no-untyped-def]
    from helpdesk.db import session_scope

    return session_scope(stack.database_url)


def ticket_for(stack: Stack, conversation: str) -> Any:
    from helpdesk.models import Ticket

    with db(stack) as s:
        return s.scalar(select(Ticket).where(Ticket.conversation_id == conversation).order_by(Ticket.id.desc()))


def events_of(stack: Stack, ticket_id: int) -> list[tuple[str, str]]:
    from helpdesk.models import TicketEvent

    with db(stack) as s:
        return [(e.kind, e.text) for e in s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
                                                    .order_by(TicketEvent.id))]


def outcome(stack: Stack, conversation: str) -> Any:
    from helpdesk.models import ConversationOutcome

    with db(stack) as s:
        return s.scalar(select(ConversationOutcome).where(ConversationOutcome.conversation_id == conversation)
                        .order_by(ConversationOutcome.id.desc()))


def a_customer(stack: Stack, index: int = 0) -> Any:
    from helpdesk.models import Customer

    with db(stack) as s:
        return list(s.scalars(select(Customer).order_by(Customer.id)))[index]


def fmt_cnpj(d: str) -> str:
    return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"


def accept_ticket(chat: Chat, first_reply: list[str]) -> list[str]:
    """From the bot's answer to a question, get to the ticket (through "Isso resolveu?" if answered)."""
    joined = " ".join(first_reply)
    if "Isso resolveu?" in joined:
        assert "Posso" not in joined
        joined = " ".join(chat.texts("não resolveu"))
        assert "abra um chamado" in joined
        return chat.texts("sim")
    if "abra um chamado" in joined:
        return chat.texts("sim")
    return first_reply


def finish_form(chat: Chat, replies: list[str]) -> list[str]:
    for _ in range(4):
        joined = " ".join(replies)
        if "Abri o chamado" in joined:
            return replies
        if "Descreva" in joined:
            replies = chat.texts("a impressora do caixa nao imprime o cupom")
        elif "módulo" in joined:
            replies = chat.texts("não sei")
        elif "tipo de atendimento" in joined:
            replies = chat.texts("erro")
        else:
            raise AssertionError(f"unexpected form step: {replies}")
    raise AssertionError(f"ticket not opened: {replies}")


def test_question_ticket_handoff_agent_reply_close_and_rating(stack: Stack, chat: Chat) -> None:
    assert any("Olá" in t for t in chat.texts("oi"))
    replies = finish_form(chat, accept_ticket(chat, chat.texts("como integro o sistema com a shopee?")))
    ticket = ticket_for(stack, chat.conversation)
    assert ticket is not None and f"#{ticket.id}" in " ".join(replies)
    assert ticket.channel == "web" and ticket.status == "novo"
    # Hand-off: the bot is silent and the message lands on the ticket.
    assert chat.say("mais um detalhe: acontece todo dia de manha") == []
    assert ("message_in", "mais um detalhe: acontece todo dia de manha") in events_of(stack, ticket.id)
    relayed = chat.trigger("EXTERNAL_agent_reply", {"agent_text": "Vou acessar sua máquina.", "agent_name": "Bruno"})
    assert [m.get("text") for m in relayed] == ["Bruno: Vou acessar sua máquina."]
    closed = [m.get("text", "") for m in chat.trigger("EXTERNAL_ticket_closed", {"ticket_number": str(ticket.id)})]
    assert closed[0] == f"O chamado #{ticket.id} foi concluído."
    assert "De 1 a 5" in closed[-1]
    assert any("Obrigado pela avaliação" in t for t in chat.texts("5"))
    row = outcome(stack, chat.conversation)
    assert row.handed_off is True and row.rating == 5 and row.resolved_by_bot is False
    # Back to the bot.
    assert chat.say("oi") != []


def test_request_human_form_validates_each_field(stack: Stack, chat: Chat) -> None:
    assert any("Descreva" in t for t in chat.texts("quero falar com um atendente"))
    assert any("mais de detalhe" in t for t in chat.texts("ok"))  # too short: asked again
    texts = chat.texts("o tef nao passa cartao de debito")  # the module comes with the description
    assert any("tipo de atendimento" in t for t in texts)
    assert any("Não entendi o tipo" in t for t in chat.texts("banana"))
    texts = chat.texts("instalação")
    ticket = ticket_for(stack, chat.conversation)
    assert ticket is not None and f"#{ticket.id}" in " ".join(texts)
    assert (ticket.module, ticket.type) == ("tef", "instalacao")
    assert ticket.description == "o tef nao passa cartao de debito"


def test_prospect_recommendation_and_sales_lead(stack: Stack, chat: Chat) -> None:
    chat.texts("boa tarde")
    assert any("Tudo bem" in t for t in chat.texts("nao sou cliente"))
    texts = chat.texts("quero automatizar o atendimento da minha empresa no whatsapp, o que vcs tem")
    assert any("Atende Omni" in t for t in texts)
    assert any("time comercial" in t for t in texts)
    # the lead form: name, then a phone or e-mail (validated; asked again politely when invalid)
    assert any("qual é o seu nome" in t for t in chat.texts("sim"))
    assert any("telefone (com DDD) ou e-mail" in t for t in chat.texts("Carla Mendes"))
    assert any("não parece válido" in t for t in chat.texts("carla@"))
    assert any("não parece válido" in t for t in chat.texts("11 1234"))
    assert ticket_for(stack, chat.conversation) is None  # nothing stored before the contact is valid
    texts = chat.texts("(11) 98765-4321")
    ticket = ticket_for(stack, chat.conversation)
    assert ticket.type == "comercial"
    assert (ticket.contact_name, ticket.contact_phone) == ("Carla Mendes", "5511987654321")
    assert f"#{ticket.id}" in " ".join(texts)
    assert outcome(stack, chat.conversation).product_offered is True


def test_prospect_lead_without_contact_is_stored_and_flagged(stack: Stack, chat: Chat) -> None:
    texts = chat.texts("qual sistema vcs indicam pra um mercadinho?")
    assert any("time comercial" in t for t in texts)
    chat.texts("quero sim")
    chat.texts("não quero informar")
    texts = chat.texts("prefiro não informar")
    ticket = ticket_for(stack, chat.conversation)
    assert ticket is not None and f"#{ticket.id}" in " ".join(texts)
    assert (ticket.contact_name, ticket.contact_phone, ticket.contact_email) == ("", None, None)
    assert "preferiu não informar" in ticket.description


def test_cnpj_is_only_a_claim_status_needs_verified_identity(stack: Stack, chat: Chat) -> None:
    from helpdesk.models import Ticket, TicketEvent

    customer = a_customer(stack, 0)
    with db(stack) as s:
        own = s.scalar(select(Ticket).where(Ticket.customer_id == customer.id).limit(1))
    texts = chat.texts(f"qual o status do chamado {own.id}?")
    assert any("WhatsApp cadastrado" in t and "entre na sua conta" in t for t in texts)
    texts = chat.texts(fmt_cnpj(customer.cnpj))
    assert any("Anotei o CNPJ" in t for t in texts)
    # A CNPJ is public: typing it shows nothing of the customer...
    for text in (fmt_cnpj(customer.cnpj) + " qual o status do chamado %d?" % own.id, f"e o chamado {own.id}?",
                 "quais sao meus chamados?"):
        texts = chat.texts(text)
        joined = " ".join(texts)
        assert f"Chamado #{own.id} " not in joined, text
        assert customer.responsible_name.split()[0] not in joined and customer.legal_name not in joined
    assert chat.slots()["customer_id"] is None
    # ...but the visitor may open a ticket for the company, marked as unverified.
    replies = finish_form(chat, chat.texts("quero falar com um atendente"))
    ticket = ticket_for(stack, chat.conversation)
    assert ticket is not None and f"#{ticket.id}" in " ".join(replies)
    assert ticket.customer_id == customer.id and "Contato não verificado" in ticket.description
    with db(stack) as s:
        created = s.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                     TicketEvent.kind == "created"))
        assert created.data["unverified_contact"] is True


def test_bad_cnpj_is_refused(stack: Stack, chat: Chat) -> None:
    texts = chat.texts("meu cnpj é 11.222.333/0001-00")
    assert texts == ["Esse CNPJ não é válido: os dígitos verificadores não conferem. Pode conferir e digitar de novo?"]
    assert chat.slots()["customer_id"] is None


def test_payload_cannot_set_identity(stack: Stack, chat: Chat) -> None:
    customer = a_customer(stack, 1)
    for payload in (f'/greet{{"customer_id": "{customer.id}", "customer_name": "Hacker"}}',
                    f'/ask_ticket_status{{"customer_id": "{customer.id}"}}',
                    f'/inform_cnpj{{"cnpj": "{customer.cnpj}", "customer_id": "{customer.id}"}}'):
        texts = chat.texts(payload)
        assert texts and all(customer.responsible_name not in t for t in texts)
        slots = chat.slots()
        assert slots["customer_id"] is None and slots["customer_name"] is None
        if not payload.startswith("/inform_cnpj"):
            # (the typed text of the inform_cnpj one holds a CNPJ: at most an unverified claim)
            assert slots["claimed_customer_id"] is None


@pytest.mark.parametrize("text", ["", "a" * 10_000, "🙂🙂🙂", "😂", "/media_received", "/inbound_call"])
def test_bad_input_gets_a_polite_answer_and_opens_nothing(stack: Stack, chat: Chat, text: str) -> None:
    texts = chat.texts(text)
    assert texts, "the bot must answer"
    assert all("Traceback" not in t and "Exception" not in t for t in texts)
    assert ticket_for(stack, chat.conversation) is None


def test_fallback_rephrase_then_offer_human(stack: Stack, chat: Chat) -> None:
    assert chat.texts("kkkkkkkk") == ["Desculpe, não entendi. Pode explicar de outro jeito?"]
    second = chat.texts("???")
    assert second == ["Ainda não consegui entender. Quer que eu abra um chamado para falar com um atendente?"]
    assert any("Descreva" in t for t in chat.texts("sim"))


def test_goodbye_after_resolution_records_resolved_by_bot(stack: Stack, chat: Chat) -> None:
    texts = chat.texts("como faço sangria no pdv?")
    if not any("Isso resolveu?" in t for t in texts):
        pytest.skip("the demo documentation does not answer this question")
    assert any("mais alguma coisa" in t for t in chat.texts("sim"))
    assert any("Até logo" in t for t in chat.texts("não"))
    row = outcome(stack, chat.conversation)
    assert row.answered_from_docs is True and row.resolved_by_bot is True


def test_problem_not_in_docs_opens_a_classified_ticket_at_once(stack: Stack, chat: Chat) -> None:
    texts = chat.texts("o pdv travou e agora o sistema nao abre, da erro E-1042")
    joined = " ".join(texts)
    if "Isso resolveu?" in joined:
        texts = chat.texts("nao resolveu")
        texts = chat.texts("sim")
    texts = finish_form(chat, texts)
    ticket = ticket_for(stack, chat.conversation)
    assert ticket is not None and f"#{ticket.id}" in " ".join(texts)
    assert ticket.type == "erro" and ticket.module == "pdv"
    assert "E-1042" in ticket.description
