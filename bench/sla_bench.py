"""SLA reports benchmark: the % met figures of the Relatórios page on the reports bench's data.

    .venv/bin/python bench/sla_bench.py [--tickets 1000000] [--db atende_bench] [--reuse]

Loads (or reuses) the database of bench/reports_bench.py, saves the default SLA policies and
calendar, computes every ticket's ticket_sla row with the production code (sla.compute_row, in
chunks, bulk-inserted) and copies the due instants to tickets as the SLA job does, VACUUMs, then times each SLA report for the last 30 days and the whole
year. Exits 1 if one passes 2 s. Run bench/reports_bench.py --reuse afterwards to time the whole
page with the SLA section on the same data.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import create_engine, insert, select, text  # noqa: E402

import reports_bench  # noqa: E402
from helpdesk.config import normalize_database_url  # noqa: E402
from helpdesk.db import session_scope  # noqa: E402
from helpdesk.models import Customer, Ticket, TicketSla, utcnow  # noqa: E402
from helpdesk.services import metrics, sla, sla_calendar, sla_metrics  # noqa: E402

CHUNK = 50_000


def fill(url: str) -> None:
    with session_scope(url) as s:
        n_tickets = s.scalar(text("SELECT count(*) FROM tickets"))
        if s.scalar(text("SELECT count(*) FROM ticket_sla")) == n_tickets:
            print(f"ticket_sla already has {n_tickets:,} rows.")
            s.execute(text("UPDATE tickets t SET first_response_due_at = s.first_response_due_at, "
                           "resolution_due_at = s.resolution_due_at FROM ticket_sla s "
                           "WHERE s.ticket_id = t.id AND t.resolution_due_at IS NULL"))
            return
        s.execute(text("DELETE FROM ticket_sla"))
        cfg = sla.save(s, policies=sla.DEFAULT_POLICIES, week=sla_calendar.default_calendar().to_json(), actor="bench")
    t0, done, last_id = time.perf_counter(), 0, 0
    now = utcnow()
    while True:
        with session_scope(url) as s:
            rows = s.execute(select(Ticket.id, Ticket.opened_at, Ticket.priority, Customer.tier)
                             .outerjoin(Customer, Customer.id == Ticket.customer_id)
                             .where(Ticket.id > last_id).order_by(Ticket.id).limit(CHUNK)).all()
            if not rows:
                break
            values = [dict(sla.compute_row(opened, tier, priority, cfg), ticket_id=tid, computed_at=now)
                      for tid, opened, priority, tier in rows]
            s.execute(insert(TicketSla), values)
            last_id = rows[-1][0]
            done += len(rows)
        print(f"\r  ticket_sla: {done:,} rows, {time.perf_counter() - t0:.0f} s", end="", flush=True)
    print()
    t0 = time.perf_counter()
    with session_scope(url) as s:  # what the SLA job's upsert does row by row
        s.execute(text("UPDATE tickets t SET first_response_due_at = s.first_response_due_at, "
                       "resolution_due_at = s.resolution_due_at FROM ticket_sla s WHERE s.ticket_id = t.id"))
    print(f"  due instants copied to tickets: {time.perf_counter() - t0:.0f} s")


def vacuum(url: str) -> None:
    engine = create_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE tickets, ticket_sla"))
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--db", default="atende_bench")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args(argv)
    url = reports_bench.ensure_database(args.admin_url, args.db, args.tickets, args.reuse)
    fill(url)
    vacuum(url)
    today = utcnow().date()
    periods = {"30 dias": metrics.Period.from_dates(today - timedelta(days=29), today),
               "365 dias": metrics.Period.from_dates(today - timedelta(days=364), today)}
    reports = [("% no prazo: total", sla_metrics.sla_totals), ("% no prazo: por dia", sla_metrics.sla_per_day),
               ("% no prazo: por técnico", sla_metrics.sla_per_technician),
               ("% no prazo: por módulo", sla_metrics.sla_per_module),
               ("% no prazo: por cliente", sla_metrics.sla_per_customer)]
    worst = 0.0
    with session_scope(url) as s:
        n = s.scalar(text("SELECT count(*) FROM tickets"))
        print(f"\nPostgreSQL, {n:,} tickets with SLA rows; median and max of {args.repeat} runs\n")
        print(f"{'report':32} {'period':>9} {'median s':>9} {'max s':>7}")
        for name, fn in reports:
            for label, period in periods.items():
                med, mx = reports_bench.timed(lambda: sla_metrics.as_table(
                    (lambda r: r if isinstance(r, list) else [r])(fn(s, period))), args.repeat)
                worst = max(worst, mx)
                print(f"{name:32} {label:>9} {med:9.3f} {mx:7.3f}{'' if mx <= 2.0 else '  OVER'}", flush=True)
        total = sla_metrics.sla_totals(s, periods["365 dias"])
        print(f"\n365 dias: 1ª resposta no prazo {total.pct_first_response:.1f}%, resolução {total.pct_resolution:.1f}%")
    print(f"slowest SLA report: {worst:.3f} s ({'OK' if worst <= 2.0 else 'OVER'} the 2 s limit)")
    return 0 if worst <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
