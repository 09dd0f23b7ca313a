"""Technician actions that leave the help desk through the bot: replying and closing a ticket.

Order of operations (documented in docs/console.md):
- Reply: validate → call Rasa → record. A reply is recorded as ``message_out`` only once Rasa has
  accepted it, so the ticket never claims that the customer got a message that did not leave. When
  Rasa fails, the attempt is recorded as a ``delivery_failed`` event (who, when, text, error) in the
  same unit of work and the caller gets ``delivered=False`` with a pt-BR message; nothing else
  changes (no first-response time).
- Close: the solution and the status change are committed first (they are facts of the help desk),
  then Rasa is told (``EXTERNAL_ticket_closed``) so the bot asks for a rating. When that call fails,
  the ticket stays closed and a ``bot_notify_failed`` event records it; the caller shows a warning.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..errors import IllegalTransition, InvalidInput, NotFound
from ..models import Technician, TicketEvent, utcnow
from . import tickets
from .rasa_client import AGENT_REPLY_INTENT, TICKET_CLOSED_INTENT, RasaClient, RasaUnavailable

BOT_CHANNELS = ("whatsapp", "web")
MAX_REPLY = 4096  # WhatsApp's limit for a text message body


@dataclass(frozen=True)
class ActionOutcome:
    ok: bool
    message_pt: str
    event_id: int | None = None


def _tech(s: Session, technician_id: int) -> Technician:
    tech = s.get(Technician, technician_id)
    if tech is None or not tech.active:
        raise NotFound(f"technician {technician_id} not found", "Técnico não encontrado.")
    return tech


def _failure_event(s: Session, ticket_id: int, tech: Technician, kind: str, text: str,
                   err: RasaUnavailable, intent: str) -> TicketEvent:
    ticket = tickets.get(s, ticket_id)
    ev = TicketEvent(ticket=ticket, actor=tech.name, technician_id=tech.id, kind=kind, text=text,
                     data={"intent": intent, "error": str(err)[:500]}, at=utcnow())
    s.add(ev)
    ticket.updated_at = ev.at
    s.flush()
    return ev


def can_reply(ticket_channel: str, conversation_id: str | None) -> bool:
    return ticket_channel in BOT_CHANNELS and bool(conversation_id)


def reply(s: Session, ticket_id: int, *, technician_id: int, text: str, client: RasaClient) -> ActionOutcome:
    """Send a technician's reply to the customer through Rasa and record it on the ticket."""
    tech = _tech(s, technician_id)
    body = (text or "").strip()
    if not body:
        raise InvalidInput("empty reply", "Escreva a resposta antes de enviar.")
    if len(body) > MAX_REPLY:
        raise InvalidInput("reply too long", f"A resposta passa de {MAX_REPLY} caracteres.")
    ticket = tickets.get(s, ticket_id)
    if ticket.status == "concluido":
        raise IllegalTransition(f"ticket {ticket_id} closed", "Chamado concluído: reabra-o para responder.")
    if ticket.status == "novo" or ticket.technician_id is None:
        raise IllegalTransition(f"ticket {ticket_id} not assumed", "Assuma o chamado antes de responder.")
    # Before anything leaves for the customer: a colleague's ticket needs an explicit "Assumir".
    tickets.require_holder(s, ticket_id, technician_id)
    if not can_reply(ticket.channel, ticket.conversation_id):
        raise InvalidInput(f"ticket {ticket_id} has no bot conversation",
                           "Este chamado não tem conversa com o cliente pelo WhatsApp ou pelo site.")
    conversation_id = ticket.conversation_id or ""
    try:
        client.agent_reply(conversation_id, agent_text=body, agent_name=tech.name)
    except RasaUnavailable as err:
        ev = _failure_event(s, ticket_id, tech, "delivery_failed", body, err, AGENT_REPLY_INTENT)
        return ActionOutcome(False, err.message_pt, ev.id)
    ev = tickets.add_message(s, ticket_id, author=tech.name, text=body, direction="out",
                             technician_id=technician_id)
    ev.data = {"via": "rasa", "channel": ticket.channel}
    s.flush()
    return ActionOutcome(True, "Resposta enviada ao cliente.", ev.id)


def resolve(s: Session, ticket_id: int, *, technician_id: int, solution: str, client: RasaClient,
            suggest_article: bool = False) -> ActionOutcome:
    """Register the solution and close the ticket (``suggest_article``: also a documentation
    candidate); then ask the bot to request a rating."""
    tech = _tech(s, technician_id)
    ticket = tickets.resolve(s, ticket_id, technician_id=technician_id, solution=solution,
                             suggest_article=suggest_article)
    s.commit()  # closing is a fact of the help desk; the bot notification is a consequence
    if not can_reply(ticket.channel, ticket.conversation_id):
        return ActionOutcome(True, f"Chamado {ticket.number} concluído.")
    try:
        client.ticket_closed(ticket.conversation_id or "", ticket_number=ticket.number)
    except RasaUnavailable as err:
        ev = _failure_event(s, ticket_id, tech, "bot_notify_failed", "", err, TICKET_CLOSED_INTENT)
        return ActionOutcome(False, f"Chamado {ticket.number} concluído, mas o assistente não foi avisado: "
                                    "o cliente não receberá o pedido de avaliação. " + err.message_pt, ev.id)
    return ActionOutcome(True, f"Chamado {ticket.number} concluído. O assistente vai pedir a avaliação ao cliente.")
