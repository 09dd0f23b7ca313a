"""Ticket lifecycle: novo → em atendimento → concluído, and reopen.

The service owns the timestamps (first response, resolution) and writes a TicketEvent for every
change and message, so the console can show who did what and when.

Who may act: a ticket that a technician holds is theirs. Another technician cannot reply to it,
close it or escalate it without first taking it over explicitly (``take_over``, recorded as an
``assigned`` event naming who it was taken from); managers can act on any ticket.

Size: the ticket's whole life cycle (open, assume, reply, escalate, resolve) with its events, kept
together because each step checks the same state rules.
"""
from __future__ import annotations

from typing import Any, Literal

from atende_contract import channels
from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from ..errors import AlreadyAssigned, IllegalTransition, InvalidInput, NotFound, UnknownCustomer
from ..models import (
    CHANNELS, PRIORITIES, STATUS_LABELS, TICKET_TYPES, Customer, Module, Technician, Ticket,
    TicketEvent, utcnow,
)
from ..phones import normalize_phone
from .customers import normalize_email

MAX_DESCRIPTION = 10_000
ACTIVE = ("novo", "em_atendimento")

# Allowed status changes; anything else raises IllegalTransition.
TRANSITIONS: dict[str, set[str]] = {
    "novo": {"em_atendimento"},
    "em_atendimento": {"concluido", "novo"},
    "concluido": {"em_atendimento"},
}


def _event(s: Session, ticket: Ticket, *, actor: str, kind: str, text: str = "",
           technician_id: int | None = None, data: dict[str, Any] | None = None) -> TicketEvent:
    ev = TicketEvent(ticket=ticket, actor=actor, kind=kind, text=text,
                     technician_id=technician_id, data=data or {}, at=utcnow())
    s.add(ev)
    ticket.updated_at = ev.at
    return ev


def _technician(s: Session, technician_id: int) -> Technician:
    tech = s.get(Technician, technician_id)
    if tech is None or not tech.active:
        raise NotFound(f"technician {technician_id} not found", "Técnico não encontrado.")
    return tech


def _holder_name(s: Session, technician_id: int | None) -> str:
    holder = s.get(Technician, technician_id) if technician_id else None
    return holder.name if holder else "outro técnico"


def _require_holder(s: Session, ticket: Ticket, tech: Technician, action_pt: str) -> None:
    """Refuse (AlreadyAssigned, nothing written) a technician acting on a ticket another one holds."""
    if tech.role == "manager" or ticket.technician_id is None or ticket.technician_id == tech.id:
        return
    raise AlreadyAssigned(
        f"ticket {ticket.id} is held by technician {ticket.technician_id}, not {tech.id}",
        f"O chamado {ticket.number} está com {_holder_name(s, ticket.technician_id)}. Para {action_pt}, "
        "use \"Assumir\" no chamado primeiro (fica registrado no histórico).")


def require_holder(s: Session, ticket_id: int, technician_id: int, action_pt: str = "responder") -> Ticket:
    """The ticket, if this technician may act on it now (a manager, its holder, or nobody holds it);
    AlreadyAssigned otherwise. Callers that talk to the customer check this before sending."""
    tech = _technician(s, technician_id)
    ticket = get(s, ticket_id)
    _require_holder(s, ticket, tech, action_pt)
    return ticket


def _check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"invalid {what} {value!r}; expected one of {allowed}",
                           f"Valor inválido para {what}: {value}.")
    return value


def _check_module(s: Session, module: str | None) -> str | None:
    if module in (None, ""):
        return None
    if s.scalar(select(Module.id).where(Module.code == module)) is None:
        raise InvalidInput(f"unknown module {module!r}", f"Módulo desconhecido: {module}.")
    return module


def get(s: Session, ticket_id: int) -> Ticket:
    ticket = s.scalar(select(Ticket).where(Ticket.id == ticket_id)
                      .options(selectinload(Ticket.events), selectinload(Ticket.customer)))
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} not found", "Chamado não encontrado.")
    return ticket


def open_ticket(
    s: Session, *, customer_id: int | None, channel: str, type: str, module: str | None,
    description: str, conversation_id: str | None, priority: str = "normal", actor: str = "bot",
    contact_name: str | None = None, subject: str | None = None,
    contact_phone: str | None = None, contact_email: str | None = None,
    flags: dict[str, Any] | None = None,
) -> Ticket:
    """Open a ticket. A customer id that does not exist raises UnknownCustomer; nothing is written.

    `contact_phone` / `contact_email` (a lead's own contact) are normalised and validated
    (InvalidPhone / InvalidInput). `flags` (JSON-able, e.g. `{"unverified_contact": True}` or
    `{"contact_declined": True}`) are kept on the ticket's `created` event for technicians and reports.
    """
    _check_choice(channel, CHANNELS, "canal")
    _check_choice(type, TICKET_TYPES, "tipo")
    _check_choice(priority, PRIORITIES, "prioridade")
    module = _check_module(s, module)
    text = (description or "").strip()
    if not text:
        raise InvalidInput("empty description", "Descreva o problema para abrir o chamado.")
    text = text[:MAX_DESCRIPTION]
    phone = normalize_phone(contact_phone) if contact_phone not in (None, "") else None
    email = normalize_email(contact_email) if contact_email not in (None, "") else None
    if customer_id is not None and s.get(Customer, customer_id) is None:
        raise UnknownCustomer(f"customer {customer_id} does not exist")
    now = utcnow()
    ticket = Ticket(
        customer_id=customer_id, channel=channel, type=type, module=module, status="novo",
        priority=priority, conversation_id=conversation_id, description=text,
        subject=(subject or text.splitlines()[0])[:200], contact_name=(contact_name or "")[:160],
        contact_phone=phone, contact_email=email, opened_at=now, updated_at=now,
    )
    s.add(ticket)
    s.flush()
    _event(s, ticket, actor=actor, kind="created", text=text,
           data={"channel": channel, "type": type, "module": module, "priority": priority, **(flags or {})})
    s.flush()
    return ticket


def active_for_conversation(s: Session, conversation_id: str) -> Ticket | None:
    """The open ticket of a conversation; tickets opened before conversation ids were namespaced
    by channel (``whatsapp:5511...``) carry the bare id, and are found too."""
    forms = channels.legacy_forms(conversation_id)
    return s.scalar(select(Ticket).where(Ticket.conversation_id.in_(forms),
                                         Ticket.status.in_(ACTIVE))
                    .order_by(Ticket.id.desc()).limit(1))


def for_customer(s: Session, customer_id: int, limit: int = 5) -> list[Ticket]:
    return list(s.scalars(select(Ticket).where(Ticket.customer_id == customer_id)
                          .order_by(Ticket.id.desc()).limit(limit)))


def add_message(s: Session, ticket_id: int, *, author: str, text: str,
                direction: Literal["in", "out"], technician_id: int | None = None) -> TicketEvent:
    """Record a message on the ticket: "in" from the customer, "out" to the customer."""
    if direction not in ("in", "out"):
        raise InvalidInput(f"bad direction {direction!r}")
    body = (text or "").strip()
    if not body:
        raise InvalidInput("empty message", "A mensagem está vazia.")
    ticket = get(s, ticket_id)
    if direction == "out" and technician_id is not None:
        _require_holder(s, ticket, _technician(s, technician_id), "responder")
        if ticket.first_response_at is None:
            ticket.first_response_at = utcnow()
    ev = _event(s, ticket, actor=author, kind="message_in" if direction == "in" else "message_out",
                text=body[:MAX_DESCRIPTION], technician_id=technician_id)
    s.flush()
    return ev


def transition(s: Session, ticket_id: int, to_status: str, *, actor: str,
               technician_id: int | None = None, note: str = "") -> Ticket:
    ticket = get(s, ticket_id)
    if to_status not in TRANSITIONS.get(ticket.status, set()):
        raise IllegalTransition(
            f"ticket {ticket_id}: {ticket.status} -> {to_status} is not allowed",
            f"Não é possível passar o chamado de \"{STATUS_LABELS.get(ticket.status, ticket.status)}\" "
            f"para \"{STATUS_LABELS.get(to_status, to_status)}\".")
    previous = ticket.status
    ticket.status = to_status
    if to_status == "concluido":
        ticket.resolved_at = utcnow()
        if ticket.first_response_at is None:
            ticket.first_response_at = ticket.resolved_at
    elif previous == "concluido":
        ticket.resolved_at = None
    _event(s, ticket, actor=actor, kind="status", text=note, technician_id=technician_id,
           data={"from": previous, "to": to_status})
    s.flush()
    return ticket


def assume(s: Session, ticket_id: int, technician_id: int) -> Ticket:
    """Assign an open ticket to a technician. Atomic: of two at once, one wins, the other gets
    AlreadyAssigned."""
    tech = _technician(s, technician_id)
    ticket = get(s, ticket_id)
    if ticket.status == "concluido":
        raise IllegalTransition(f"ticket {ticket_id} is closed", "Este chamado já está concluído.")
    if ticket.technician_id == technician_id:
        return ticket
    result = s.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.technician_id.is_(None), Ticket.status.in_(ACTIVE))
        .values(technician_id=technician_id, status="em_atendimento", updated_at=utcnow(),
                row_version=Ticket.row_version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        s.expire(ticket)
        holder = s.get(Technician, ticket.technician_id) if ticket.technician_id else None
        raise AlreadyAssigned(
            f"ticket {ticket_id} already held by {ticket.technician_id}",
            f"O chamado #{ticket_id} já foi assumido por {holder.name if holder else 'outro técnico'}.")
    s.expire(ticket)
    previous = "novo"
    _event(s, ticket, actor=tech.name, kind="assigned", technician_id=technician_id,
           data={"technician_id": technician_id})
    _event(s, ticket, actor=tech.name, kind="status", technician_id=technician_id,
           data={"from": previous, "to": "em_atendimento"})
    s.flush()
    return ticket


def take_over(s: Session, ticket_id: int, technician_id: int, *, from_technician_id: int) -> Ticket:
    """The explicit "Assumir" of a ticket that ``from_technician_id`` holds (the holder the
    technician saw). Atomic: if the ticket changed hands meanwhile, AlreadyAssigned names the
    current holder and nothing is written. Recorded as ``assigned`` with who took it from whom."""
    tech = _technician(s, technician_id)
    ticket = get(s, ticket_id)
    if ticket.status == "concluido":
        raise IllegalTransition(f"ticket {ticket_id} is closed", "Este chamado já está concluído.")
    if ticket.technician_id == technician_id:
        return ticket
    if ticket.technician_id is None:
        return assume(s, ticket_id, technician_id)
    result = s.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.technician_id == from_technician_id, Ticket.status.in_(ACTIVE))
        .values(technician_id=technician_id, status="em_atendimento", updated_at=utcnow(),
                row_version=Ticket.row_version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        s.expire(ticket)
        raise AlreadyAssigned(
            f"ticket {ticket_id} no longer held by {from_technician_id} (now {ticket.technician_id})",
            f"O chamado #{ticket_id} mudou de mãos: agora está com {_holder_name(s, ticket.technician_id)}.")
    previous_status = ticket.status
    s.expire(ticket)
    from_name = _holder_name(s, from_technician_id)
    _event(s, ticket, actor=tech.name, kind="assigned", technician_id=technician_id,
           text=f"assumido de {from_name}",
           data={"technician_id": technician_id, "from_technician_id": from_technician_id,
                 "from_technician": from_name, "take_over": True})
    if previous_status != "em_atendimento":
        _event(s, ticket, actor=tech.name, kind="status", technician_id=technician_id,
               data={"from": previous_status, "to": "em_atendimento"})
    s.flush()
    return ticket


def resolve(s: Session, ticket_id: int, *, technician_id: int, solution: str,
            suggest_article: bool = False) -> Ticket:
    """Register the solution and close the ticket (concluído); ``suggest_article``: the solution also
    becomes a documentation candidate (services/articles.py)."""
    tech = _technician(s, technician_id)
    text = (solution or "").strip()
    if not text:
        raise InvalidInput("empty solution", "Descreva a solução antes de concluir.")
    ticket = get(s, ticket_id)
    if ticket.status == "novo":
        raise IllegalTransition(f"ticket {ticket_id} not assumed",
                                "Assuma o chamado antes de registrar a solução.")
    _require_holder(s, ticket, tech, "concluir o chamado")
    ticket.solution = text[:MAX_DESCRIPTION]
    if ticket.technician_id is None:
        ticket.technician_id = technician_id
    _event(s, ticket, actor=tech.name, kind="solution", text=ticket.solution, technician_id=technician_id)
    if suggest_article:
        from . import articles

        articles.suggest(s, ticket, technician_id=technician_id)
    return transition(s, ticket_id, "concluido", actor=tech.name, technician_id=technician_id)


def reopen(s: Session, ticket_id: int, *, actor: str, reason: str, technician_id: int | None = None) -> Ticket:
    ticket = get(s, ticket_id)
    if ticket.status != "concluido":
        raise IllegalTransition(f"ticket {ticket_id} is not closed", "Só é possível reabrir chamados concluídos.")
    return transition(s, ticket_id, "em_atendimento", actor=actor, technician_id=technician_id,
                      note=(reason or "").strip())


def escalate(s: Session, ticket_id: int, *, technician_id: int, level: int,
             to_technician_id: int | None, reason: str) -> Ticket:
    tech = _technician(s, technician_id)
    if level not in (1, 2, 3):
        raise InvalidInput(f"bad level {level}", "Nível de escalonamento inválido (1 a 3).")
    if not (reason or "").strip():
        raise InvalidInput("reason required", "Informe o motivo do escalonamento.")
    ticket = get(s, ticket_id)
    if ticket.status == "concluido":
        raise IllegalTransition(f"ticket {ticket_id} is closed", "Este chamado já está concluído.")
    _require_holder(s, ticket, tech, "escalar o chamado")
    target = _technician(s, to_technician_id) if to_technician_id is not None else None
    previous_level, previous_tech = ticket.level, ticket.technician_id
    ticket.level = level
    ticket.technician_id = target.id if target else None
    if ticket.status == "novo" and target is not None:
        ticket.status = "em_atendimento"
    elif target is None:
        ticket.status = "novo"
    _event(s, ticket, actor=tech.name, kind="escalated", text=reason.strip(), technician_id=technician_id,
           data={"from_level": previous_level, "to_level": level, "from_technician_id": previous_tech,
                 "to_technician_id": target.id if target else None})
    s.flush()
    return ticket


def record_system_update(s: Session, ticket_id: int, *, technician_id: int, version: str,
                         notes: str = "") -> TicketEvent:
    tech = _technician(s, technician_id)
    if not (version or "").strip():
        raise InvalidInput("version required", "Informe a versão instalada.")
    ticket = get(s, ticket_id)
    ev = _event(s, ticket, actor=tech.name, kind="system_update", text=(notes or "").strip(),
                technician_id=technician_id, data={"version": version.strip()})
    s.flush()
    return ev


def change_fields(s: Session, ticket_id: int, *, technician_id: int, type: str | None = None,
                  module: str | None = None, priority: str | None = None) -> Ticket:
    tech = _technician(s, technician_id)
    ticket = get(s, ticket_id)
    changes: dict[str, Any] = {}
    if type is not None and type != ticket.type:
        changes["type"] = [ticket.type, _check_choice(type, TICKET_TYPES, "tipo")]
    if module is not None and (module or None) != ticket.module:
        changes["module"] = [ticket.module, _check_module(s, module)]
    if priority is not None and priority != ticket.priority:
        changes["priority"] = [ticket.priority, _check_choice(priority, PRIORITIES, "prioridade")]
    for key, (_old, new) in changes.items():
        setattr(ticket, key, new)
    if changes:
        _event(s, ticket, actor=tech.name, kind="fields_changed", technician_id=technician_id, data=changes)
        s.flush()
    return ticket


def list_tickets(s: Session, *, status: str | list[str] | None = None, type: str | None = None,
                 module: str | None = None, technician_id: int | None = None,
                 customer_id: int | None = None, channel: str | None = None,
                 limit: int = 200) -> list[Ticket]:
    """Tickets matching the filters, oldest first."""
    stmt = select(Ticket).options(selectinload(Ticket.customer), selectinload(Ticket.technician))
    if status:
        stmt = stmt.where(Ticket.status.in_([status] if isinstance(status, str) else status))
    if type:
        stmt = stmt.where(Ticket.type == type)
    if module:
        stmt = stmt.where(Ticket.module == module)
    if technician_id is not None:
        stmt = stmt.where(Ticket.technician_id == technician_id)
    if customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    if channel:
        stmt = stmt.where(Ticket.channel == channel)
    return list(s.scalars(stmt.order_by(Ticket.opened_at, Ticket.id).limit(limit)))
