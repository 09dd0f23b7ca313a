from __future__ import annotations

from sqlalchemy import func, inspect, select

from helpdesk import demo
from helpdesk.db import downgrade, get_engine, session_scope, upgrade
from helpdesk.models import Base, ConversationOutcome, Customer, Machine, Technician, Ticket
from helpdesk.services import technicians


def test_demo_loads_a_realistic_data_set(db_url: str) -> None:
    with session_scope() as s:
        counts = demo.load(s)
    with session_scope() as s:
        assert demo.is_loaded(s)
        assert counts["customers"] >= 30 and s.scalar(select(func.count()).select_from(Customer)) >= 30
        assert s.scalar(select(func.count()).select_from(Technician)) >= 3
        assert s.scalar(select(func.count()).select_from(Machine).where(Machine.anydesk_code != "")) >= 30
        first, last = s.execute(select(func.min(Ticket.opened_at), func.max(Ticket.opened_at))).one()
        assert (last - first).days >= 170
        types = dict(s.execute(select(Ticket.type, func.count()).group_by(Ticket.type)).all())
        assert set(types) == {"erro", "duvida", "atualizacao", "instalacao", "comercial", "outro"}
        assert max(types, key=types.get) == "erro"
        assert s.scalar(select(func.count()).select_from(ConversationOutcome)) > 500
        technicians.authenticate(s, "mariana@atende.demo", demo.DEMO_PASSWORD)
        demo.reset(s)
    with session_scope() as s:
        assert not demo.is_loaded(s)


def test_migrations_are_the_schema_and_go_down(db_url: str) -> None:
    engine = get_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    downgrade(db_url, "base")
    engine.dispose()
    assert not ({t.name for t in Base.metadata.sorted_tables} & set(inspect(get_engine(db_url)).get_table_names()))
    upgrade(db_url)
