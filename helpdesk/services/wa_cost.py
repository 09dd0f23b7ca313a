"""What WhatsApp costs: the managers' prices per Meta pricing category (``whatsapp_prices``) and the
estimated cost of the messages the connector recorded (``whatsapp_pricing``, bot env, read-only;
atende_contract.tables), per period, day, category, customer and conversation.

A message is charged by Meta (atende_contract.wa_pricing.charged) or free (customer-service window,
free entry point, ``billable`` false); a charged message costs the price of its category whose
``valid_from`` is the latest at or before the message's time. A charged message whose category has
no price then (or that Meta did not categorise) is counted as *unpriced*: it adds nothing to the
estimate, and the report says how many there are. Prices are BRL per message, entered by a manager
(docs/whatsapp.md, "Cost"); Meta's invoice, in the account's currency, stays the reference.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from atende_contract import tables, wa_pricing
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound, PermissionDenied
from ..models import Contact, Customer, Technician, Ticket, WhatsAppPrice, utcnow
from ..phones import normalize_phone
from .metrics import Period

MAX_PRICE_BRL = Decimal("10")  # per message; Meta's rates in Brazil are cents of a real
PRICE_PLACES = 4  # whatsapp_prices.price_brl is NUMERIC(10, 4)
EARLIEST_VALID_FROM = date(2022, 1, 1)
MAX_FUTURE_DAYS = 366
NO_CUSTOMER = "sem cadastro"
UNKNOWN_CATEGORY = "sem categoria"
_PRICE_TEXT = re.compile(r"^\d{1,7}(?:[.,]\d+)?$")
_CENT = Decimal("0.01")


def category_label(category: str | None) -> str:
    if not category:
        return UNKNOWN_CATEGORY
    return wa_pricing.CATEGORY_LABELS.get(category, f"{category} (desconhecida)")


def brl(value: Decimal | None, places: int = 2) -> str:
    """``R$ 1.234,56`` (pt-BR); ``places`` 4 for per-message prices."""
    if value is None:
        return "—"
    q = Decimal(1).scaleb(-places)
    text_ = f"{value.quantize(q):,.{places}f}"
    return "R$ " + text_.replace(",", "_").replace(".", ",").replace("_", ".")


# ---- prices ----------------------------------------------------------------------------------------
def parse_price(raw: Any) -> Decimal:
    """A manager's price per message in BRL, as typed ("0,3125", "R$ 0.35"). InvalidInput (pt-BR)
    for text that is not a number, a negative value, more than 4 decimals or an absurd value."""
    if isinstance(raw, bool):
        raise InvalidInput(f"price {raw!r}", "Preço inválido.")
    if isinstance(raw, (int, Decimal)):
        textual = str(raw)
    elif isinstance(raw, float):
        textual = repr(raw)
    elif isinstance(raw, str):
        textual = raw
    else:
        raise InvalidInput(f"price {raw!r}", "Preço inválido.")
    cleaned = textual.strip().removeprefix("R$").strip().replace(" ", "")
    shown = textual.strip()[:30]
    if not cleaned:
        raise InvalidInput("empty price", "Informe o preço por mensagem, por exemplo 0,3125.")
    if cleaned.startswith("-"):
        raise InvalidInput(f"negative price {raw!r}", "O preço não pode ser negativo.")
    if not _PRICE_TEXT.match(cleaned):
        raise InvalidInput(f"bad price {raw!r}",
                           f"Preço inválido: \"{shown}\". Use só números, com vírgula nos centavos, "
                           "por exemplo 0,3125.")
    try:
        value = Decimal(cleaned.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise InvalidInput(f"bad price {raw!r}", "Preço inválido.") from None
    if value.as_tuple().exponent < -PRICE_PLACES:  # type: ignore[operator]
        raise InvalidInput(f"too many places {raw!r}", "Use no máximo 4 casas decimais no preço.")
    if value > MAX_PRICE_BRL:
        raise InvalidInput(f"absurd price {raw!r}",
                           f"Preço fora da realidade: {brl(value)} por mensagem. O máximo aceito é "
                           f"{brl(MAX_PRICE_BRL)} (as tarifas da Meta são centavos por mensagem).")
    return value.quantize(Decimal(1).scaleb(-PRICE_PLACES))


def _category(raw: Any) -> str:
    if not isinstance(raw, str) or raw not in wa_pricing.CATEGORIES:
        raise InvalidInput(f"unknown category {raw!r}", "Categoria de preço do WhatsApp desconhecida.")
    return raw


def _valid_from(raw: Any, today: date) -> datetime:
    if isinstance(raw, datetime):
        raw = raw.date()
    if not isinstance(raw, date):
        raise InvalidInput(f"bad date {raw!r}", "Informe a data a partir da qual o preço vale.")
    if raw < EARLIEST_VALID_FROM:
        raise InvalidInput(f"too early {raw}", f"Data muito antiga: {raw:%d/%m/%Y}. Use uma data a partir de "
                           f"{EARLIEST_VALID_FROM:%d/%m/%Y}.")
    if raw > today + timedelta(days=MAX_FUTURE_DAYS):
        raise InvalidInput(f"too late {raw}", f"Data muito distante: {raw:%d/%m/%Y}. Use no máximo um ano à frente.")
    return datetime.combine(raw, datetime.min.time())


def _manager(s: Session, technician_id: int) -> Technician:
    tech = s.get(Technician, technician_id)
    if tech is None or not tech.active or tech.role != "manager":
        raise PermissionDenied(f"technician {technician_id} may not set prices",
                               PermissionDenied.message_pt + " Só gestores configuram preços.")
    return tech


@dataclass(frozen=True)
class PriceRow:
    id: int
    category: str
    price_brl: Decimal
    valid_from: date
    created_by: str
    created_at: datetime


def set_price(s: Session, *, category: Any, price: Any, valid_from: Any, technician_id: int) -> PriceRow:
    """A manager's price per message for ``category`` from ``valid_from`` (a date, UTC) on. The
    same category and date again replaces that price (a correction); an earlier price stays for
    the messages before. Everything is validated before anything is written."""
    cat = _category(category)
    value = parse_price(price)
    start = _valid_from(valid_from, utcnow().date())
    tech = _manager(s, technician_id)
    row = s.scalar(select(WhatsAppPrice).where(WhatsAppPrice.category == cat, WhatsAppPrice.valid_from == start))
    if row is None:
        row = WhatsAppPrice(category=cat, valid_from=start)
        s.add(row)
    row.price_brl, row.created_by_id, row.created_at = value, tech.id, utcnow()
    s.flush()
    return PriceRow(row.id, cat, value, start.date(), tech.name, row.created_at)


def delete_price(s: Session, price_id: int, *, technician_id: int) -> None:
    _manager(s, technician_id)
    row = s.get(WhatsAppPrice, price_id)
    if row is None:
        raise NotFound(f"price {price_id}", "Preço não encontrado (já removido?).")
    s.delete(row)
    s.flush()


def prices(s: Session) -> list[PriceRow]:
    """Every price, by category then newest first."""
    rows = s.execute(select(WhatsAppPrice, Technician.name).outerjoin(
        Technician, Technician.id == WhatsAppPrice.created_by_id)).all()
    out = [PriceRow(p.id, p.category, Decimal(p.price_brl), p.valid_from.date(), name or "—", p.created_at)
           for p, name in rows]
    order = {c: i for i, c in enumerate(wa_pricing.CATEGORIES)}
    return sorted(out, key=lambda r: (order.get(r.category, 99), -r.valid_from.toordinal()))


class PriceBook:
    """The prices of each category by ``valid_from``, to price a message at its time."""

    def __init__(self, rows: Iterable[tuple[str, datetime, Decimal]]) -> None:
        by: dict[str, list[tuple[float, Decimal]]] = {}
        for cat, start, value in rows:
            by.setdefault(cat, []).append((start.replace(tzinfo=timezone.utc).timestamp(), Decimal(value)))
        self._starts = {c: [t for t, _ in sorted(v)] for c, v in by.items()}
        self._values = {c: [p for _, p in sorted(v)] for c, v in by.items()}

    @classmethod
    def load(cls, s: Session) -> "PriceBook":
        return cls(s.execute(select(WhatsAppPrice.category, WhatsAppPrice.valid_from, WhatsAppPrice.price_brl)).all())

    def price_at(self, category: str | None, at: float) -> Decimal | None:
        starts = self._starts.get(category or "")
        if not starts:
            return None
        i = bisect.bisect_right(starts, at) - 1
        return self._values[category or ""][i] if i >= 0 else None


# ---- the cost report ---------------------------------------------------------------------------------
@dataclass
class CostLine:
    """Messages of one slice (a day, a category, a customer, a conversation) and what they cost."""
    label: Any
    messages: int = 0
    charged: int = 0
    free: int = 0
    unknown: int = 0  # Meta said neither billable nor a pricing type
    unpriced: int = 0  # charged, but no price for its category at its time
    cost_brl: Decimal = field(default_factory=lambda: Decimal("0"))
    customer: str = ""  # for conversations: whose it is
    tickets: list[int] = field(default_factory=list)  # for conversations: their tickets

    def add(self, charged: bool | None, price: Decimal | None, n: int = 1) -> None:
        self.messages += n
        if charged is None:
            self.unknown += n
        elif not charged:
            self.free += n
        else:
            self.charged += n
            if price is None:
                self.unpriced += n
            else:
                self.cost_brl += price * n


@dataclass
class WaCost:
    available: bool  # whatsapp_pricing exists (the WhatsApp connector has run on this database)
    total: CostLine
    per_day: list[CostLine] = field(default_factory=list)
    per_category: list[CostLine] = field(default_factory=list)
    per_customer: list[CostLine] = field(default_factory=list)
    per_conversation: list[CostLine] = field(default_factory=list)
    unpriced_categories: list[str] = field(default_factory=list)  # charged categories lacking a price

    @classmethod
    def empty(cls) -> "WaCost":
        return cls(False, CostLine("total"))


def _has_table(s: Session, name: str) -> bool:
    return inspect(s.connection()).has_table(name)


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=timezone.utc).timestamp()


def _customers_of(s: Session, recipients: set[str], conversations: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(address -> customer name, conversation -> customer name): by the customer's phone, BSUID or
    LID contact, else by the customer of a ticket of that conversation."""
    keys: dict[str, tuple[str, str]] = {}
    for r in recipients:
        if r.isdigit():
            try:
                keys[r] = ("phone", normalize_phone(r))
            except InvalidInput:
                continue
        else:
            keys[r] = ("lid" if r.endswith("@lid") else "bsuid", r)
    by_contact: dict[tuple[str, str], str] = {}
    values = sorted({v for _k, v in keys.values()})
    for i in range(0, len(values), 500):
        for kind, value, name in s.execute(
                select(Contact.kind, Contact.value, Customer.legal_name).join(Customer, Customer.id == Contact.customer_id)
                .where(Contact.value.in_(values[i:i + 500]))).all():
            by_contact[(kind, value)] = name
    of_address = {r: by_contact[k] for r, k in keys.items() if k in by_contact}
    of_conversation: dict[str, str] = {}
    convs = sorted(conversations)
    for i in range(0, len(convs), 500):
        for conv, name in s.execute(
                select(Ticket.conversation_id, Customer.legal_name).join(Customer, Customer.id == Ticket.customer_id)
                .where(Ticket.conversation_id.in_(convs[i:i + 500])).order_by(Ticket.id)).all():
            of_conversation[conv] = name  # the latest ticket's customer wins
    return of_address, of_conversation


def _tickets_of(s: Session, conversations: set[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    convs = sorted(conversations)
    for i in range(0, len(convs), 500):
        for conv, tid in s.execute(select(Ticket.conversation_id, Ticket.id)
                                   .where(Ticket.conversation_id.in_(convs[i:i + 500])).order_by(Ticket.id)).all():
            out.setdefault(conv, []).append(tid)
    return out


def _by_cost(lines: Iterable[CostLine]) -> list[CostLine]:
    return sorted(lines, key=lambda x: (-x.cost_brl, -x.messages, str(x.label)))


def _day_number(s: Session) -> str:
    """SQL for the UTC day of ``recorded_at`` as days since the epoch (prices start at 00:00 UTC)."""
    if s.get_bind().dialect.name == "sqlite":
        return "CAST(recorded_at / 86400 AS INTEGER)"  # truncation is floor for times after 1970
    return "CAST(floor(recorded_at / 86400) AS INTEGER)"


def cost(s: Session, period: Period) -> WaCost:
    """Messages and estimated cost of the period (by the message's time, UTC days). The database
    groups the messages per address, conversation, pricing and day (a price starts at 00:00 UTC of
    its day, so a day's messages of one category share their price)."""
    if not _has_table(s, tables.WHATSAPP_PRICING):
        return WaCost.empty()
    book = PriceBook.load(s)
    day = _day_number(s)
    rows = s.execute(text(
        f"SELECT recipient, conversation, billable, category, pricing_type, {day} AS day, COUNT(*) AS n "
        f"FROM {tables.WHATSAPP_PRICING} WHERE recorded_at >= :a AND recorded_at < :b "
        f"GROUP BY recipient, conversation, billable, category, pricing_type, {day}"),
        {"a": _epoch(period.start), "b": _epoch(period.end)}).all()
    of_address, of_conversation = _customers_of(s, {r[0] for r in rows}, {r[1] for r in rows})
    total = CostLine("total")
    days: dict[int, CostLine] = {}
    cats: dict[str, CostLine] = {}
    custs: dict[str, CostLine] = {}
    convs: dict[str, CostLine] = {}
    prices_on: dict[tuple[str | None, int], Decimal | None] = {}
    unpriced: set[str] = set()
    epoch = date(1970, 1, 1)
    for recipient, conversation, billable, category, ptype, day_no, n in rows:
        day_no, n = int(day_no), int(n)
        charged = wa_pricing.charged(None if billable is None else bool(billable), ptype)
        price = None
        if charged:
            key = (category, day_no)
            if key not in prices_on:
                prices_on[key] = book.price_at(category, day_no * 86400.0)
            price = prices_on[key]
            if price is None:
                unpriced.add(category_label(category))
        who = of_address.get(recipient) or of_conversation.get(conversation) or NO_CUSTOMER
        day_line = days.get(day_no)
        if day_line is None:
            day_line = days[day_no] = CostLine(epoch + timedelta(days=day_no))
        cat_line = cats.get(category or "")
        if cat_line is None:
            cat_line = cats[category or ""] = CostLine(category)
        cust_line = custs.get(who)
        if cust_line is None:
            cust_line = custs[who] = CostLine(who)
        conv = convs.get(conversation)
        if conv is None:
            conv = convs[conversation] = CostLine(conversation, customer=who)
        for line in (total, day_line, cat_line, cust_line, conv):
            line.add(charged, price, n)
    tickets = _tickets_of(s, set(convs))
    for key, line in convs.items():
        line.tickets = tickets.get(key, [])
    order = {c: i for i, c in enumerate(wa_pricing.CATEGORIES)}
    return WaCost(True, total, per_day=[days[d] for d in sorted(days)],
                  per_category=sorted(cats.values(), key=lambda x: order.get(x.label or "", 99)),
                  per_customer=_by_cost(custs.values()), per_conversation=_by_cost(convs.values()),
                  unpriced_categories=sorted(unpriced))


def as_table(lines: Iterable[CostLine], label: str) -> list[dict[str, Any]]:
    """Rows for the console's tables (pt-BR headings)."""
    out = []
    for x in lines:
        name = (x.label.strftime("%d/%m/%Y") if isinstance(x.label, date)
                else category_label(x.label) if label == "Categoria" else str(x.label))
        row: dict[str, Any] = {label: name}
        if label == "Conversa":
            row["Cliente"] = x.customer
            row["Chamados"] = ", ".join(f"#{t}" for t in x.tickets) or "—"
        row.update({"Mensagens": x.messages, "Cobradas": x.charged, "Gratuitas": x.free,
                    "Sem preço": x.unpriced, "Custo estimado": brl(x.cost_brl)})
        out.append(row)
    return out
