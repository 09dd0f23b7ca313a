"""WhatsApp cost benchmark: the report's "Custo do WhatsApp" over many priced messages in PostgreSQL.

    .venv/bin/python bench/wa_cost_bench.py [--admin-url postgresql://postgres@127.0.0.1:5432/test]
                                            [--messages 300000] [--addresses 20000] [--keep]

Creates its own database, migrates it with Alembic, creates the connector's ``whatsapp_pricing``
(columns as pinned in atende_contract.tables), loads synthetic rows with generate_series (the
messages spread over the last 90 days, half of the addresses registered customers' phones, a mix of
charged and free categories) and a few prices, ANALYZEs, then times
``helpdesk.services.wa_cost.cost`` for the last 7, 30 and 90 days. Prints a table of figures;
times nothing in the tests.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from helpdesk.config import normalize_database_url  # noqa: E402
from helpdesk.db import dispose_engines, session_scope, upgrade  # noqa: E402
from helpdesk.models import utcnow  # noqa: E402
from helpdesk.services import wa_cost  # noqa: E402
from helpdesk.services.metrics import Period  # noqa: E402

PRICING_DDL = """
CREATE TABLE whatsapp_pricing (
    wamid VARCHAR(255) PRIMARY KEY, recipient VARCHAR(128) NOT NULL, conversation VARCHAR(200) NOT NULL,
    billable BOOLEAN, category VARCHAR(40), pricing_model VARCHAR(16), pricing_type VARCHAR(40), reason TEXT,
    recorded_at DOUBLE PRECISION NOT NULL);
CREATE INDEX ix_whatsapp_pricing_recorded_at ON whatsapp_pricing (recorded_at);
CREATE INDEX ix_whatsapp_pricing_recipient ON whatsapp_pricing (recipient);
CREATE INDEX ix_whatsapp_pricing_conversation ON whatsapp_pricing (conversation);
"""


def load(url: str, messages: int, addresses: int) -> None:
    engine = create_engine(normalize_database_url(url))
    customers = addresses // 2
    steps = [
        ("technician", """INSERT INTO technicians (name, email, password_hash, role, level, active, failed_logins,
                          created_at, session_generation)
                          VALUES ('Gestora', 'gestora@bench.dev', 'x', 'manager', 3, true, 0, now(), 0)"""),
        ("customers", f"""
            INSERT INTO customers (responsible_name, legal_name, trade_name, cnpj, tax_regime, city, state, notes,
                                   created_at)
            SELECT 'Responsável ' || g, 'Empresa ' || lpad(g::text, 6, '0') || ' Ltda', '', lpad(g::text, 14, '0'),
                   'simples_nacional', '', 'SP', '', now()
            FROM generate_series(1, {customers}) g"""),
        ("contacts", """
            INSERT INTO contacts (customer_id, kind, value, name, is_primary)
            SELECT id, 'phone', '55119' || lpad(id::text, 8, '0'), '', true FROM customers"""),
        ("pricing", PRICING_DDL),
        ("messages", f"""
            INSERT INTO whatsapp_pricing (wamid, recipient, conversation, billable, category, pricing_model,
                                          pricing_type, reason, recorded_at)
            SELECT 'wamid.' || g, a, 'whatsapp:' || a,
                   CASE WHEN g % 10 < 6 THEN false ELSE true END,
                   (ARRAY['service','service','service','service','service','service','utility','utility',
                          'marketing','authentication'])[1 + g % 10],
                   'PMP',
                   CASE WHEN g % 10 < 6 THEN 'free_customer_service' ELSE 'regular' END, NULL,
                   extract(epoch FROM now()) - (g::bigint * 7776000) / {messages}
            FROM generate_series(1, {messages}) g,
                 LATERAL (SELECT '55119' || lpad((1 + g % {addresses})::text, 8, '0') AS a) addr"""),
        ("prices", """
            INSERT INTO whatsapp_prices (category, price_brl, valid_from, created_by_id, created_at)
            VALUES ('utility', 0.0400, now() - interval '400 days', 1, now()),
                   ('utility', 0.0500, now() - interval '45 days', 1, now()),
                   ('marketing', 0.3500, now() - interval '400 days', 1, now())"""),
        ("analyze", "ANALYZE"),
    ]
    with engine.begin() as conn:
        for name, sql in steps:
            t0 = time.perf_counter()
            for statement in [s for s in sql.split(";") if s.strip()]:
                conn.execute(text(statement))
            print(f"  loaded {name:<12} {time.perf_counter() - t0:6.2f} s")
    engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--addresses", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="leave the database behind")
    args = ap.parse_args()
    name = f"atende_wa_cost_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_database_url(args.admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        print(f"database {name}: {args.messages:,} priced messages, {args.addresses:,} addresses")
        load(url, args.messages, args.addresses)
        today = utcnow().date()
        print(f"{'period':<10} {'messages':>9} {'conversations':>13} {'cost (R$)':>11} {'median s':>9} {'max s':>7}")
        for days in (7, 30, 90):
            period = Period.from_dates(today - timedelta(days=days - 1), today)
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                with session_scope(url) as s:
                    c = wa_cost.cost(s, period)
                times.append(time.perf_counter() - t0)
            print(f"{days:>3} days   {c.total.messages:>9,} {len(c.per_conversation):>13,} "
                  f"{float(c.total.cost_brl):>11,.2f} {statistics.median(times):>9.3f} {max(times):>7.3f}")
    finally:
        dispose_engines()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
