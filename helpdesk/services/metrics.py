"""Reports for managers and counts for the queue, computed in SQL (GROUP BY and aggregates).

Nothing here loads ticket rows into Python: every function returns a handful of aggregated rows,
so a report costs the same whether the period holds ten tickets or a million. Works on SQLite and
PostgreSQL (the two differ only in date bucketing, durations and the median, see ``_dialect``).

Definitions (the console shows them next to the figures):
- A period is ``[start, end)`` in UTC; ticket figures cover tickets *opened* in the period.
- Resolution time: ``resolved_at - opened_at`` of the period's tickets that are concluded; the
  mean is exact, the median is exact to the minute (see ``_median_seconds``).
- Most problematic module: the module with the most tickets of type ``erro`` (ties: most tickets).
- Technician with the highest load: the most tickets assigned to them among the period's tickets.
- Bot figures cover conversations *started* in the period (``conversation_outcomes``) and questions
  asked in it (``knowledge_queries``). A conversation with a hand-off never counts as resolved by
  the bot, whatever its ``resolved_by_bot`` flag says.
- Bot resolution, three ways (``bot_resolution``): *contida* — no human involved (no hand-off);
  *verificada* — the customer said "sim" to "Isso resolveu?" (``resolved_by_bot``, no hand-off),
  the figure reported so far; *durável* — verified, and within ``window_days`` (default 7) after
  the conversation's last turn the same customer (or, for an anonymous conversation, the same
  conversation id) opened no ticket and had no conversation handed off to a person.

Size: every report figure's query lives here so that the figures and their drill-downs
(services/drilldown.py) share one definition of each condition; split by theme if it grows further.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Float, Integer, and_, case, cast, exists, func, literal_column, or_, select, text
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement

from ..errors import InvalidInput
from ..models import ConversationOutcome, Customer, KnowledgeQuery, Technician, Ticket, utcnow

MAX_PERIOD_DAYS = 3660
DURABLE_WINDOW_DAYS = 7
MAX_DURABLE_WINDOW_DAYS = 90
NO_MODULE = "sem módulo"


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive

    @classmethod
    def from_dates(cls, first: date, last: date) -> "Period":
        """Whole days from ``first`` to ``last`` inclusive. Raises InvalidInput when reversed."""
        if last < first:
            raise InvalidInput(f"period {first}..{last} reversed",
                               "Período inválido: a data final é anterior à inicial.")
        if (last - first).days > MAX_PERIOD_DAYS:
            raise InvalidInput("period too long", "Período longo demais (máximo de 10 anos).")
        return cls(datetime.combine(first, datetime.min.time()),
                   datetime.combine(last + timedelta(days=1), datetime.min.time()))


def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def _day(s: Session, col: Any) -> ColumnElement[Any]:
    return func.date(col) if _dialect(s) == "sqlite" else cast(col, Date)


def _seconds_between(s: Session, start: Any, end: Any) -> ColumnElement[Any]:
    if _dialect(s) == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.date_part(literal_column("'epoch'"), end - start)  # float8; EXTRACT is numeric (slow)


# The minute bucket of a ticket's resolution time. On PostgreSQL it is written exactly as in the
# extended statistics of migration 0002, so the planner knows it has a few thousand distinct values
# and aggregates it in parallel (without them it expects one group per row and runs single-threaded).
PG_RESOLUTION_MINUTE = "CAST(date_part('epoch', tickets.resolved_at - tickets.opened_at) / 60.0 AS INTEGER)"


def _resolution_minute(s: Session, secs: ColumnElement[Any]) -> ColumnElement[Any]:
    if _dialect(s) == "postgresql":
        return literal_column(PG_RESOLUTION_MINUTE)
    return cast(secs / 60.0, Integer)  # durations are never negative: truncation is floor


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _in_period(col: Any, period: Period) -> ColumnElement[bool]:
    return and_(col >= period.start, col < period.end)


# ---- tickets ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Top:
    label: str
    count: int


@dataclass(frozen=True)
class TicketSummary:
    total: int
    resolved: int
    open: int
    mean_resolution_h: float | None
    median_resolution_h: float | None
    top_customer: Top | None
    top_type: Top | None
    top_module: Top | None  # by tickets of type "erro"
    top_technician: Top | None


@dataclass(frozen=True)
class TicketTotals:
    total: int
    resolved: int
    mean_resolution_s: float | None
    median_resolution_s: float | None


def _median_seconds(s: Session, where: ColumnElement[bool], secs: ColumnElement[Any], n: int) -> float | None:
    """Median resolution time, to the minute, in one SQL pass on either engine.

    Durations are counted per whole minute (GROUP BY, which PostgreSQL runs in parallel, unlike
    percentile_cont's single-threaded sort), then a running sum over the buckets (a window
    function) finds the one or two middle ranks; ``n`` is the number of resolved tickets.
    """
    if n == 0:
        return None
    minute = _resolution_minute(s, secs)
    buckets = (select(minute.label("m"), func.count().label("n")).where(where).group_by(minute).subquery())
    running = select(buckets.c.m, func.sum(buckets.c.n).over(order_by=buckets.c.m).label("cum")).subquery()
    low_rank, high_rank = (n + 1) // 2, n // 2 + 1
    low, high = s.execute(select(func.min(case((running.c.cum >= low_rank, running.c.m), else_=None)),
                                 func.min(case((running.c.cum >= high_rank, running.c.m), else_=None)))).one()
    if low is None:
        return None
    if n % 2 or high is None:
        return float(low) * 60.0
    return (float(low) + float(high)) * 30.0


def ticket_totals(s: Session, period: Period) -> TicketTotals:
    """Count, concluded, mean (exact) and median (to the minute) resolution time, in seconds."""
    in_period = _in_period(Ticket.opened_at, period)
    secs = _seconds_between(s, Ticket.opened_at, Ticket.resolved_at)
    total, resolved, n_resolved, mean_s = s.execute(select(
        func.count(), func.coalesce(func.sum(case((Ticket.status == "concluido", 1), else_=0)), 0),
        func.count(Ticket.resolved_at), func.avg(cast(secs, Float)),
    ).where(in_period)).one()
    median_s = _median_seconds(s, and_(in_period, Ticket.resolved_at.is_not(None)), secs, int(n_resolved or 0))
    return TicketTotals(int(total or 0), int(resolved or 0), None if mean_s is None else float(mean_s), median_s)


def summarize(totals: TicketTotals, per_type: list[tuple[str, int]], per_module: list[tuple[str, int, int]],
              per_customer: list[tuple[str, int]], per_technician: list[tuple[str, int, int]]) -> TicketSummary:
    """The headline figures from the period's totals and breakdowns (a handful of aggregated rows)."""
    modules = [(m, n, e) for m, n, e in per_module if m != NO_MODULE and e > 0]
    top_module = min(modules, key=lambda r: (-r[2], -r[1], r[0])) if modules else None
    return TicketSummary(
        total=totals.total, resolved=totals.resolved, open=totals.total - totals.resolved,
        mean_resolution_h=None if totals.mean_resolution_s is None else totals.mean_resolution_s / 3600.0,
        median_resolution_h=None if totals.median_resolution_s is None else totals.median_resolution_s / 3600.0,
        top_customer=Top(*per_customer[0]) if per_customer else None,
        top_type=Top(*per_type[0]) if per_type else None,
        top_module=Top(top_module[0], top_module[2]) if top_module else None,
        top_technician=Top(per_technician[0][0], per_technician[0][1]) if per_technician else None,
    )


def ticket_summary(s: Session, period: Period) -> TicketSummary:
    return summarize(ticket_totals(s, period), tickets_per_type(s, period), tickets_per_module(s, period),
                     tickets_per_customer(s, period, limit=1), tickets_per_technician(s, period))


def tickets_per_day(s: Session, period: Period) -> list[tuple[date, int]]:
    day = _day(s, Ticket.opened_at).label("day")
    rows = s.execute(select(day, func.count()).where(_in_period(Ticket.opened_at, period))
                     .group_by(day).order_by(day)).all()
    return [(_as_date(d), int(c)) for d, c in rows]


def tickets_per_module(s: Session, period: Period) -> list[tuple[str, int, int]]:
    """(module code or "sem módulo", tickets, tickets of type erro), most tickets first."""
    n = func.count().label("n")
    errors = func.sum(case((Ticket.type == "erro", 1), else_=0)).label("errors")
    rows = s.execute(select(Ticket.module, n, errors).where(_in_period(Ticket.opened_at, period))
                     .group_by(Ticket.module).order_by(n.desc(), Ticket.module.is_(None), Ticket.module)).all()
    return [(m or NO_MODULE, int(c), int(e or 0)) for m, c, e in rows]


def tickets_per_type(s: Session, period: Period) -> list[tuple[str, int]]:
    n = func.count().label("n")
    rows = s.execute(select(Ticket.type, n).where(_in_period(Ticket.opened_at, period))
                     .group_by(Ticket.type).order_by(n.desc(), Ticket.type)).all()
    return [(t, int(c)) for t, c in rows]


def tickets_per_customer(s: Session, period: Period, limit: int = 10) -> list[tuple[str, int]]:
    """(razão social, tickets), most tickets first (ties by name); tickets without customer left out."""
    counts = (select(Ticket.customer_id.label("cid"), func.count().label("n"))
              .where(_in_period(Ticket.opened_at, period), Ticket.customer_id.is_not(None))
              .group_by(Ticket.customer_id).subquery())
    rows = s.execute(select(Customer.legal_name, counts.c.n).join(counts, counts.c.cid == Customer.id)
                     .order_by(counts.c.n.desc(), Customer.legal_name).limit(limit)).all()
    return [(name, int(c)) for name, c in rows]


def tickets_per_technician(s: Session, period: Period) -> list[tuple[str, int, int]]:
    """(technician, tickets in the period, of which still open), highest load first."""
    counts = (select(Ticket.technician_id.label("tid"), func.count().label("n"),
                     func.sum(case((Ticket.status != "concluido", 1), else_=0)).label("open"))
              .where(_in_period(Ticket.opened_at, period), Ticket.technician_id.is_not(None))
              .group_by(Ticket.technician_id).subquery())
    rows = s.execute(select(Technician.name, counts.c.n, counts.c.open)
                     .join(counts, counts.c.tid == Technician.id)
                     .order_by(counts.c.n.desc(), Technician.name)).all()
    return [(name, int(c), int(o or 0)) for name, c, o in rows]


# ---- bot ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BotSummary:
    conversations: int
    resolved_by_bot: int
    handed_off: int
    offers_without_human: int
    questions: int
    answered_from_docs: int
    rated: int
    rating_avg: float | None

    @property
    def pct_resolved_by_bot(self) -> float | None:
        return None if not self.conversations else 100.0 * self.resolved_by_bot / self.conversations

    @property
    def pct_answered_from_docs(self) -> float | None:
        return None if not self.questions else 100.0 * self.answered_from_docs / self.questions


def bot_summary(s: Session, period: Period) -> BotSummary:
    o = ConversationOutcome
    no_human = o.handed_off.is_(False)
    conv, resolved, handed, offers, rated, avg = s.execute(select(
        func.count(),
        func.coalesce(func.sum(case((and_(o.resolved_by_bot.is_(True), no_human), 1), else_=0)), 0),
        func.coalesce(func.sum(case((o.handed_off.is_(True), 1), else_=0)), 0),
        func.coalesce(func.sum(case((and_(o.product_offered.is_(True), no_human), 1), else_=0)), 0),
        func.count(o.rating),
        func.avg(cast(o.rating, Float)),
    ).where(_in_period(o.started_at, period))).one()
    q = KnowledgeQuery
    questions, answered = s.execute(select(
        func.count(), func.coalesce(func.sum(case((q.answered.is_(True), 1), else_=0)), 0),
    ).where(_in_period(q.at, period))).one()
    return BotSummary(conversations=int(conv or 0), resolved_by_bot=int(resolved or 0),
                      handed_off=int(handed or 0), offers_without_human=int(offers or 0),
                      questions=int(questions or 0), answered_from_docs=int(answered or 0),
                      rated=int(rated or 0), rating_avg=None if avg is None else float(avg))


@dataclass(frozen=True)
class BotResolution:
    """Conversations started in the period, resolved by the bot in three senses (module docstring)."""
    conversations: int
    contained: int  # no human involved
    verified: int  # "sim" to "Isso resolveu?", no human involved
    durable: int  # verified, and no ticket or hand-off of the same customer within the window
    pending: int  # durable so far, but their window is not over yet (counted in ``durable``)
    window_days: int

    @property
    def gap(self) -> int:
        """Verified resolutions that came back within the window."""
        return self.verified - self.durable

    def pct(self, count: int) -> float | None:
        return None if not self.conversations else 100.0 * count / self.conversations


def _window_end_before(s: Session, at: Any, anchor: Any, days: int) -> ColumnElement[bool]:
    """``at <= anchor + days`` on either engine."""
    if _dialect(s) == "sqlite":
        return func.julianday(at) <= func.julianday(anchor) + float(days)
    return at <= anchor + timedelta(days=days)


def _check_window(window_days: int) -> None:
    if isinstance(window_days, bool) or not isinstance(window_days, int) \
            or not 1 <= window_days <= MAX_DURABLE_WINDOW_DAYS:
        raise InvalidInput(f"durable window {window_days!r}",
                           f"Janela inválida: informe de 1 a {MAX_DURABLE_WINDOW_DAYS} dias.")


def verified_condition() -> ColumnElement[bool]:
    """A verified bot resolution: "sim" to "Isso resolveu?" and no human involved."""
    o = ConversationOutcome
    return and_(o.resolved_by_bot.is_(True), o.handed_off.is_(False))


def durable_conditions(s: Session, window_days: int = DURABLE_WINDOW_DAYS) -> list[ColumnElement[bool]]:
    """WHERE clauses over ``ConversationOutcome`` that select its durable bot resolutions: verified,
    and after the conversation started and up to ``window_days`` after its last turn, no ticket
    was opened for the same customer or on the same conversation id, and no other conversation of
    that customer or id was handed off (``bot_resolution``, the drill-down of the report)."""
    _check_window(window_days)
    o, later = ConversationOutcome, aliased(ConversationOutcome)

    def ticket_after(match: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(match, Ticket.opened_at >= o.started_at,
                              _window_end_before(s, Ticket.opened_at, o.updated_at, window_days))

    def handoff_after(match: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(match, later.id != o.id, later.handed_off.is_(True), later.started_at >= o.started_at,
                              _window_end_before(s, later.started_at, o.updated_at, window_days))

    # Each probe stands alone in the WHERE clause (not inside a CASE), so PostgreSQL can plan it as
    # an anti-join over the period's rows instead of one subplan per row (3.6 s -> 0.8 s for a year
    # of 300,000 conversations). ``x = NULL`` matches nothing: no customer, no probe by customer.
    return [
        verified_condition(),
        ~ticket_after(Ticket.customer_id == o.customer_id),
        ~ticket_after(Ticket.conversation_id == o.conversation_id),
        ~handoff_after(later.customer_id == o.customer_id),
        ~handoff_after(later.conversation_id == o.conversation_id),
    ]


def without_jit(s: Session) -> None:
    """For this transaction on PostgreSQL: the durable probes' estimated cost triggers JIT, whose
    compilation alone takes seconds while the plan runs in milliseconds."""
    if _dialect(s) == "postgresql":
        s.execute(text("SET LOCAL jit = off"))


def bot_resolution(s: Session, period: Period, *, window_days: int = DURABLE_WINDOW_DAYS,
                   now: datetime | None = None) -> BotResolution:
    """Contained, verified and durable bot resolutions of the conversations started in ``period``.

    Durable: ``durable_conditions``. Two statements: the counts, then the durable ones through
    four NOT EXISTS probes (by customer and by conversation id, for tickets and for hand-offs),
    each on an index of its table."""
    _check_window(window_days)
    o = ConversationOutcome
    no_human = o.handed_off.is_(False)
    verified = verified_condition()
    cutoff = (now or utcnow()) - timedelta(days=window_days)
    in_period = _in_period(o.started_at, period)
    conv, contained, n_verified = s.execute(select(
        func.count(),
        func.coalesce(func.sum(case((no_human, 1), else_=0)), 0),
        func.coalesce(func.sum(case((verified, 1), else_=0)), 0),
    ).where(in_period)).one()
    without_jit(s)
    n_durable, pending = s.execute(select(
        func.count(), func.coalesce(func.sum(case((o.updated_at > cutoff, 1), else_=0)), 0),
    ).where(in_period, *durable_conditions(s, window_days))).one()
    return BotResolution(conversations=int(conv or 0), contained=int(contained or 0), verified=int(n_verified or 0),
                         durable=int(n_durable or 0), pending=int(pending or 0), window_days=window_days)


def ratings(s: Session, period: Period) -> list[tuple[int, int]]:
    """(rating 1..5, conversations), every rating present even when zero."""
    o = ConversationOutcome
    rows = dict(s.execute(select(o.rating, func.count()).where(_in_period(o.started_at, period),
                                                                o.rating.is_not(None))
                          .group_by(o.rating)).all())
    return [(r, int(rows.get(r, 0))) for r in range(1, 6)]


def documentation_gaps(s: Session, period: Period, limit: int = 20) -> list[tuple[str, int, datetime]]:
    """Questions the documentation could not answer, grouped by their text (case and spaces folded)."""
    q = KnowledgeQuery
    key = func.lower(func.trim(q.question)).label("key")
    n = func.count().label("n")
    rows = s.execute(select(key, n, func.min(q.question), func.max(q.at))
                     .where(_in_period(q.at, period), q.answered.is_(False))
                     .group_by(key).order_by(n.desc(), key).limit(limit)).all()
    return [(str(example), int(c), last if isinstance(last, datetime) else datetime.fromisoformat(str(last)))
            for _key, c, example, last in rows]


# ---- queue --------------------------------------------------------------------------------------

def queue_counts(s: Session, *, type: str | None = None, module: str | None = None,
                 technician_id: int | None = None, customer_id: int | None = None,
                 channel: str | None = None) -> dict[str, int]:
    """Tickets per status under the queue's filters (all statuses, zero included)."""
    conds: list[ColumnElement[bool]] = []
    if type:
        conds.append(Ticket.type == type)
    if module:
        conds.append(Ticket.module == module)
    if technician_id is not None:
        conds.append(Ticket.technician_id == technician_id)
    if customer_id is not None:
        conds.append(Ticket.customer_id == customer_id)
    if channel:
        conds.append(Ticket.channel == channel)
    rows = dict(s.execute(select(Ticket.status, func.count()).where(*conds).group_by(Ticket.status)).all())
    return {st: int(rows.get(st, 0)) for st in ("novo", "em_atendimento", "concluido")}


