"""The demo's WhatsApp cost (issue #15 item 4): managers' prices per Meta category and six weeks of
priced messages of demo customers, so the report's "Custo do WhatsApp" section is not empty;
deterministic, and ``reset`` removes the demo's rows of the connector's table and only those."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from atende_contract import tables, wa_pricing
from helpdesk import demo
from helpdesk.db import session_scope
from helpdesk.models import Customer, Ticket, WhatsAppPrice
from helpdesk.services import reports, wa_cost
from helpdesk.services.metrics import Period

TODAY = datetime(2026, 11, 20, 15, 0)


def _period() -> Period:
    return Period.from_dates(TODAY.date() - timedelta(days=60), TODAY.date() + timedelta(days=1))


def _rows(s: sa.orm.Session) -> list[sa.Row]:
    return list(s.execute(sa.select(demo.WA_PRICING).order_by(demo.WA_PRICING.c.wamid)).all())


def test_the_declared_table_is_the_contract() -> None:
    assert set(demo.WA_PRICING.c.keys()) == set(tables.WHATSAPP_PRICING_COLUMNS)
    assert demo.WA_PRICING.name == tables.WHATSAPP_PRICING
    assert set(demo.DEMO_WA_PRICES) <= set(wa_pricing.CATEGORIES)


def test_demo_prices_and_priced_messages_fill_the_cost_section(db_url: str) -> None:
    with session_scope() as s:
        # the connector already ran here: one of its own rows must survive the demo's reset
        demo.WA_PRICING.create(s.connection(), checkfirst=True)
        s.execute(demo.WA_PRICING.insert().values(
            wamid="wamid.REAL1", recipient="5548991230457", conversation="whatsapp:5548991230457", billable=True,
            category="utility", pricing_model="PMP", pricing_type="regular", reason=None,
            recorded_at=demo._epoch(TODAY - timedelta(days=1))))
        counts = demo.load(s, months=1, today=TODAY)
    assert counts["whatsapp_priced_messages"] > 200
    with session_scope() as s:
        first = _rows(s)
        prices = {(p.category, p.valid_from.date()): p.price_brl for p in s.scalars(sa.select(WhatsAppPrice))}
        assert prices[("utility", demo.DEMO_WA_PRICES_FROM)] == Decimal("0.0400")
        assert prices[("marketing", (TODAY - timedelta(days=14)).date())] == Decimal("0.3750")  # a raise, from a date
        cost = wa_cost.cost(s, _period())
        assert cost.available and cost.total.messages == len(first)
        assert cost.total.charged > 0 and cost.total.free > cost.total.charged  # mostly inside the window
        assert cost.total.cost_brl > 0 and cost.total.unpriced == 0  # every charged category has a price
        cats = {x.label for x in cost.per_category}
        assert {"service", "utility"} <= cats
        customers = {x.label for x in cost.per_customer}
        assert len(customers - {wa_cost.NO_CUSTOMER}) >= 5  # found by their phone contacts
        # every conversation the demo priced is its WhatsApp tickets' conversation: the table names
        # the tickets, all of the customer it shows (the connector's own row has none)
        lines = [x for x in cost.per_conversation if x.label != "whatsapp:5548991230457"]
        assert len(lines) >= 5 and all(x.tickets for x in lines)
        for x in lines:
            owners = s.execute(sa.select(Customer.legal_name, Ticket.channel, Ticket.conversation_id)
                               .join(Customer, Customer.id == Ticket.customer_id)
                               .where(Ticket.id.in_(x.tickets))).all()
            assert set(owners) == {(x.customer, "whatsapp", x.label)}
        # an open ticket in a live conversation would hand it off to a technician: the demo's
        # customers (the phone the journeys and the README use) must still reach the bot
        open_live = s.scalars(sa.select(Ticket.id).where(Ticket.conversation_id.like("whatsapp:%"),
                                                         Ticket.status != "concluido")).all()
        assert open_live == []
        table = wa_cost.as_table(cost.per_conversation, "Conversa")
        assert [r["Chamados"] for r in table if r["Conversa"] == "whatsapp:5548991230457"] == ["—"]
        assert all(r["Chamados"].startswith("#") for r in table if r["Conversa"] != "whatsapp:5548991230457")
        assert all(r.wamid.startswith(demo.DEMO_WAMID_PREFIX) for r in first if r.wamid != "wamid.REAL1")
        assert max(r.recorded_at for r in first) < demo._epoch(TODAY)  # never after the demo's "now"
        assert f"whatsapp_custo;mensagens;{len(first)}" in reports.to_csv(reports.build(s, _period()))
        demo.reset(s)
    with session_scope() as s:
        assert [r.wamid for r in _rows(s)] == ["wamid.REAL1"]  # the connector's own row is not the demo's
        assert not s.scalars(sa.select(WhatsAppPrice)).all()
        demo.load(s, months=1, today=TODAY)
    with session_scope() as s:
        assert _rows(s) == first  # deterministic and idempotent with reset
