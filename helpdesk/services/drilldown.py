"""The tickets and conversations behind each figure of the report (Relatórios → "Ver chamados").

A ``Figure`` names one figure of ``reports.Report`` (a headline count, a chart's bar or slice, a
bot figure, a documentation gap); ``drill`` selects the rows behind it with the same conditions
the figure was counted with, so its ``total`` equals the figure. ``csv`` and ``json_export`` write
the selected rows (CSV cells neutralised by the one export writer; JSON with full transcripts).
No Streamlit here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import String, and_, case, cast, distinct, func, literal, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql import ColumnElement

from helpdesk.errors import InvalidInput
from helpdesk.models import TYPE_LABELS, ConversationOutcome, Customer, KnowledgeQuery, Technician, Ticket
from helpdesk.services import metrics, transcripts
from helpdesk.services.customer_import import csv_text

if TYPE_CHECKING:
    from helpdesk.services.reports import Report

About = Literal["tickets", "conversations"]
TICKET_KINDS = ("chamados", "concluidos", "em_aberto", "dia", "modulo", "cliente", "tipo", "tecnico")
CONVERSATION_KINDS = ("conversas", "contidas", "verificadas", "duraveis", "ofertas", "avaliacao", "lacuna")
ROW_LIMIT = 500  # rows listed (and exported) per figure; ``total`` always counts them all


@dataclass(frozen=True)
class Figure:
    kind: str  # one of TICKET_KINDS or CONVERSATION_KINDS
    value: Any = None  # the bar/slice: a date, module, customer name, type, technician, rating, question

    @property
    def about(self) -> About:
        if self.kind in TICKET_KINDS:
            return "tickets"
        if self.kind in CONVERSATION_KINDS:
            return "conversations"
        raise InvalidInput(f"figure {self.kind!r}", "Recorte de relatório desconhecido.")


@dataclass(frozen=True)
class Row:
    """One ticket, conversation or (for a documentation gap) question behind a figure."""
    key: str  # ticket id, or conversation id
    at: datetime  # opened / started / asked
    columns: dict[str, Any]  # pt-BR column → value, as listed and exported
    ticket_id: int | None = None
    conversation_id: str | None = None


@dataclass
class Drill:
    figure: Figure
    about: About
    total: int
    unique_contacts: int | None
    unique_conversations: int
    rows: list[Row] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.rows)


def _in(col: Any, period: metrics.Period) -> ColumnElement[bool]:
    return and_(col >= period.start, col < period.end)


def _tag(prefix: str, col: Any) -> ColumnElement[Any]:
    return literal(prefix) + cast(col, String)


def _ticket_where(period: metrics.Period, f: Figure) -> list[ColumnElement[bool]]:
    where = [_in(Ticket.opened_at, period)]
    v = f.value
    if f.kind == "concluidos":
        where.append(Ticket.status == "concluido")
    elif f.kind == "em_aberto":
        where.append(Ticket.status != "concluido")
    elif f.kind == "dia":
        where.append(_in(Ticket.opened_at, metrics.Period.from_dates(v, v)))
    elif f.kind == "modulo":
        where.append(Ticket.module.is_(None) if v == metrics.NO_MODULE else Ticket.module == v)
    elif f.kind == "cliente":
        where.append(Ticket.customer_id.in_(select(Customer.id).where(Customer.legal_name == v)))
    elif f.kind == "tipo":
        where.append(Ticket.type == v)
    elif f.kind == "tecnico":
        where.append(Ticket.technician_id.in_(select(Technician.id).where(Technician.name == v)))
    return where


def _distinct(s: Session, expr: Any, where: list[ColumnElement[bool]]) -> int:
    """How many distinct non-null ``expr`` among the rows ``where`` selects. A GROUP BY in a
    subquery, not COUNT(DISTINCT): PostgreSQL hashes (in parallel) instead of sorting the period
    (1M tickets, a year: 0.3 s instead of 1.9 s)."""
    return int(s.scalar(select(func.count()).select_from(
        select(expr.label("k")).where(*where, expr.is_not(None)).group_by(expr).subquery())) or 0)


def _lead_contact() -> ColumnElement[Any]:
    """Who a ticket without a customer is from: the lead's phone, e-mail, conversation, or itself."""
    return func.coalesce(_tag("tel:", Ticket.contact_phone), _tag("email:", Ticket.contact_email),
                         _tag("conversa:", Ticket.conversation_id), _tag("chamado:", Ticket.id))


def _ticket_reach(s: Session, where: list[ColumnElement[bool]]) -> tuple[int, int]:
    contacts = _distinct(s, Ticket.customer_id, where) \
        + _distinct(s, _lead_contact(), [*where, Ticket.customer_id.is_(None)])
    return contacts, _distinct(s, Ticket.conversation_id, where)


def ticket_reach(s: Session, period: metrics.Period) -> tuple[int, int]:
    """(unique contacts, unique conversations) of the tickets opened in ``period``. A contact is the
    ticket's customer, else the lead's phone, e-mail or conversation."""
    return _ticket_reach(s, [_in(Ticket.opened_at, period)])


def _tickets(s: Session, period: metrics.Period, f: Figure, limit: int) -> Drill:
    where = _ticket_where(period, f)
    total = int(s.scalar(select(func.count()).select_from(Ticket).where(*where)) or 0)
    contacts, convs = _ticket_reach(s, where) if total else (0, 0)
    found = s.scalars(select(Ticket).options(selectinload(Ticket.customer), selectinload(Ticket.technician))
                      .where(*where).order_by(Ticket.opened_at, Ticket.id).limit(limit)).all()
    rows = [Row(key=str(t.id), at=t.opened_at, ticket_id=t.id, conversation_id=t.conversation_id, columns={
        "Nº": t.number, "Aberto em": t.opened_at, "Status": t.status, "Tipo": t.type, "Módulo": t.module or "",
        "Cliente": t.customer.legal_name if t.customer else "", "Contato": t.contact_name or "",
        "Técnico": t.technician.name if t.technician else "", "Canal": t.channel,
        "Conversa": t.conversation_id or "", "Assunto": t.subject}) for t in found]
    return Drill(f, "tickets", total, contacts, convs, rows)


def _conversations(s: Session, period: metrics.Period, f: Figure, window_days: int, limit: int) -> Drill:
    o = ConversationOutcome
    where = [_in(o.started_at, period)]
    if f.kind == "contidas":
        where.append(o.handed_off.is_(False))
    elif f.kind == "verificadas":
        where.append(metrics.verified_condition())
    elif f.kind == "duraveis":
        metrics.without_jit(s)
        where += metrics.durable_conditions(s, window_days)
    elif f.kind == "ofertas":
        where += [o.product_offered.is_(True), o.handed_off.is_(False)]
    elif f.kind == "avaliacao":
        where.append(o.rating == f.value)
    # One statement (the durable probes run once): conversations are far fewer than tickets, so
    # COUNT(DISTINCT) over the selected rows costs little.
    anonymous = case((o.customer_id.is_(None), o.conversation_id))
    total, customers, anonymous_n, convs = s.execute(select(
        func.count(), func.count(distinct(o.customer_id)), func.count(distinct(anonymous)),
        func.count(distinct(o.conversation_id))).where(*where)).one()
    total, contacts, convs = int(total or 0), int(customers or 0) + int(anonymous_n or 0), int(convs or 0)
    found = s.execute(select(o, Customer.legal_name).outerjoin(Customer, Customer.id == o.customer_id)
                      .where(*where).order_by(o.started_at, o.id).limit(limit)).all()
    rows = [Row(key=f"conversa:{c.id}", at=c.started_at, conversation_id=c.conversation_id, columns={
        "Conversa": c.conversation_id, "Início": c.started_at, "Última mensagem": c.updated_at,
        "Canal": c.channel or "", "Cliente": name or "", "Transferida": c.handed_off,
        "Resolvida pelo bot": c.resolved_by_bot, "Nota": "" if c.rating is None else c.rating})
        for c, name in found]
    return Drill(f, "conversations", total, contacts, convs, rows)


def _gap(s: Session, period: metrics.Period, f: Figure, limit: int) -> Drill:
    """The unanswered questions of one documentation gap (grouped as ``metrics.documentation_gaps``)."""
    q = KnowledgeQuery
    where = [_in(q.at, period), q.answered.is_(False),
             func.lower(func.trim(q.question)) == func.lower(func.trim(literal(str(f.value))))]
    total = int(s.scalar(select(func.count()).select_from(q).where(*where)) or 0)
    convs = _distinct(s, q.conversation_id, where)
    found = s.scalars(select(q).where(*where).order_by(q.at, q.id).limit(limit)).all()
    rows = [Row(key=f"pergunta:{k.id}", at=k.at, conversation_id=k.conversation_id,
                columns={"Pergunta": k.question, "Quando": k.at, "Conversa": k.conversation_id or ""})
            for k in found]
    return Drill(f, "conversations", total, None, convs, rows)


def _check(figure: Figure) -> None:
    """A figure from outside (a URL, a click) is checked before it reaches SQL."""
    v, bad = figure.value, InvalidInput(f"figure {figure!r}", "Recorte de relatório inválido.")
    if figure.kind == "dia" and not isinstance(v, date):
        raise bad
    if figure.kind == "avaliacao" and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 5):
        raise bad
    if figure.kind in ("modulo", "cliente", "tipo", "tecnico", "lacuna") and (not isinstance(v, str) or not v):
        raise bad


def drill(s: Session, period: metrics.Period, figure: Figure, *, window_days: int = metrics.DURABLE_WINDOW_DAYS,
          limit: int = ROW_LIMIT) -> Drill:
    """The rows behind ``figure`` in ``period`` (the first ``limit``, oldest first; ``total`` counts all)."""
    _check(figure)
    if figure.about == "tickets":
        return _tickets(s, period, figure, limit)
    if figure.kind == "lacuna":
        return _gap(s, period, figure, limit)
    return _conversations(s, period, figure, window_days, limit)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, bool):
        return "sim" if value else "não"
    return value


def csv(rows: list[Row]) -> str:
    """The rows as CSV (``;``), formula cells neutralised (subjects, names and questions are free text)."""
    header = list(rows[0].columns) if rows else ["Nº"]
    return csv_text(header, [[_cell(r.columns.get(h, "")) for h in header] for r in rows])


def transcript(s: Session, row: Row) -> list[transcripts.Entry]:
    """A ticket's conversation and events, or a conversation's messages."""
    if row.ticket_id is not None:
        ticket = s.get(Ticket, row.ticket_id)
        return transcripts.for_ticket(s, ticket) if ticket is not None else []
    return transcripts.conversation(s, row.conversation_id) if row.conversation_id else []


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date)) else value


def json_export(s: Session, rows: list[Row]) -> str:
    """The rows with their full transcripts, as JSON (times in ISO 8601, UTC)."""
    out = []
    for r in rows:
        entries = [{"em": e.at.isoformat(), "origem": e.source, "autor": e.author, "tipo": e.kind, "texto": e.text}
                   for e in transcript(s, r)]
        out.append({**{k: _plain(v) for k, v in r.columns.items()}, "transcricao": entries})
    return json.dumps(out, ensure_ascii=False, indent=2)


def drillable(r: "Report") -> list[tuple[Figure, str, int]]:
    """Every figure of the report that has rows behind it: (figure, pt-BR label, its count), in the
    page's order. The drill-down of each one (``drilldown.drill``) lists exactly that many rows."""
    sm, bot, res = r.summary, r.bot, r.resolution
    out: list[tuple[Figure, str, int]] = [
        (Figure("chamados"), "Chamados no período", sm.total),
        (Figure("concluidos"), "Chamados concluídos", sm.resolved),
        (Figure("em_aberto"), "Chamados em aberto", sm.open),
    ]
    out += [(Figure("dia", d), f"Chamados do dia {d.strftime('%d/%m/%Y')}", c) for d, c in r.per_day]
    out += [(Figure("modulo", m), f"Chamados do módulo {m}", c) for m, c, _e in r.per_module]
    out += [(Figure("cliente", n), f"Chamados do cliente {n}", c) for n, c in r.per_customer]
    out += [(Figure("tipo", t), f"Chamados do tipo {TYPE_LABELS.get(t, t)}", c) for t, c in r.per_type]
    out += [(Figure("tecnico", n), f"Chamados do técnico {n}", c) for n, c, _o in r.per_technician]
    out += [
        (Figure("conversas"), "Conversas com o assistente", res.conversations),
        (Figure("contidas"), "Conversas com resolução contida", res.contained),
        (Figure("verificadas"), "Conversas com resolução verificada", res.verified),
        (Figure("duraveis"), f"Conversas com resolução durável ({res.window_days} dias)", res.durable),
        (Figure("ofertas"), "Conversas com oferta de produto sem humano", bot.offers_without_human),
    ]
    out += [(Figure("avaliacao", rating), f"Conversas com nota {rating}", c) for rating, c in r.ratings]
    out += [(Figure("lacuna", q), f"Pergunta sem resposta: {q}", c) for q, c, _last in r.gaps]
    return out
