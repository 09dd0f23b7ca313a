"""Reports benchmark: 1,000,000 tickets in PostgreSQL, every report query timed.

    .venv/bin/python bench/reports_bench.py [--admin-url postgresql://postgres@127.0.0.1:5432/test]
                                            [--db atende_bench] [--tickets 1000000] [--reuse]

Creates its own database (dropped and recreated unless --reuse finds it loaded), migrates it with
Alembic (so the indexes measured are the project's), loads synthetic data with generate_series
(1M tickets over 365 days, 2,000 customers, 40 technicians, 300k conversations, 200k questions),
ANALYZEs, then times each query of the Relatórios report (helpdesk.services.metrics) for the last
30 days and the whole year, and the whole report as the console builds it
(helpdesk.services.reports, with its CSV export). Imports helpdesk services only (no console, no
tests). Prints a table; exits 1 if anything passes 2 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from helpdesk.config import normalize_database_url  # noqa: E402
from helpdesk.db import session_scope, upgrade  # noqa: E402
from helpdesk.models import utcnow  # noqa: E402
from helpdesk.services import drilldown, metrics, reports  # noqa: E402

LIMIT_S = 2.0
MODULES = ["gestor", "pdv", "bi", "tef", "nfe", "omnicrm", "social", "chatbot", "ailxp", "inpaas", "dtm"]


def _array(values: list[str]) -> str:
    return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]"


def load(url: str, n_tickets: int) -> None:
    engine = create_engine(normalize_database_url(url))
    now = "(now() AT TIME ZONE 'utc')"
    steps = [
        ("catalog", f"""
            INSERT INTO products (code, name, description, audience) VALUES ('erp', 'ERP', '', ''), ('suite', 'Suite', '', '');
            INSERT INTO modules (product_id, code, name, description, synonyms)
            SELECT CASE WHEN i <= 5 THEN 1 ELSE 2 END, m, initcap(m), '', '[]'
            FROM unnest({_array(MODULES)}) WITH ORDINALITY AS t(m, i);"""),
        ("technicians", f"""
            INSERT INTO technicians (name, email, password_hash, role, level, active, failed_logins, created_at)
            SELECT 'Técnico ' || g, 'tec' || g || '@bench.dev', 'x', 'technician', 1 + g % 3, true, 0, {now}
            FROM generate_series(1, 40) g;"""),
        ("customers", f"""
            INSERT INTO customers (responsible_name, legal_name, trade_name, cnpj, tax_regime, city, state, notes, created_at)
            SELECT 'Responsável ' || g, 'Empresa ' || lpad(g::text, 5, '0') || ' Ltda', '', lpad(g::text, 14, '0'),
                   'simples_nacional', '', 'SP', '', {now}
            FROM generate_series(1, 2000) g;"""),
        (f"{n_tickets:,} tickets", f"""
            INSERT INTO tickets (customer_id, channel, type, module, status, priority, level, technician_id,
                                 conversation_id, subject, description, contact_name, solution, opened_at,
                                 first_response_at, resolved_at, updated_at, row_version)
            SELECT 1 + floor(2000 * power(random(), 3))::int,
                   ({_array(['whatsapp', 'web', 'phone', 'console'])})[1 + floor(random() * 4)::int],
                   ({_array(['erro', 'erro', 'erro', 'duvida', 'duvida', 'atualizacao', 'instalacao', 'comercial', 'outro'])})[1 + floor(random() * 9)::int],
                   CASE WHEN random() < 0.03 THEN NULL ELSE ({_array(MODULES)})[1 + floor(11 * power(random(), 2))::int] END,
                   CASE WHEN closed THEN 'concluido' WHEN g % 2 = 0 THEN 'novo' ELSE 'em_atendimento' END,
                   'normal', 1,
                   CASE WHEN closed OR g % 2 = 1 THEN 1 + floor(40 * power(random(), 2))::int END,
                   NULL, 'Assunto', 'Descrição', '', CASE WHEN closed THEN 'Resolvido' ELSE '' END, opened,
                   CASE WHEN closed OR g % 2 = 1 THEN opened + interval '20 minutes' END,
                   CASE WHEN closed THEN opened + make_interval(secs => 3600 * exp(random() * 4)) END,
                   opened, 1
            FROM (SELECT g, {now} - random() * interval '365 days' AS opened, random() < 0.97 AS closed
                  FROM generate_series(1, {n_tickets}) g) x
            ORDER BY opened;"""),  # tickets arrive in time order, as in production
        ("300,000 conversations", f"""
            INSERT INTO conversation_outcomes (conversation_id, channel, customer_id, started_at, updated_at,
                answered_from_docs, resolved_by_bot, handed_off, product_offered, rating)
            SELECT 'c' || g, 'whatsapp', NULL, t, t, r < 0.7, r < 0.5, r > 0.72, random() < 0.1,
                   CASE WHEN random() < 0.5 THEN 1 + floor(random() * 5)::int END
            FROM (SELECT g, {now} - random() * interval '365 days' AS t, random() AS r
                  FROM generate_series(1, 300000) g) x;"""),
        ("200,000 questions", f"""
            INSERT INTO knowledge_queries (conversation_id, question, product, answered, grounded, at)
            SELECT NULL, 'Pergunta frequente número ' || floor(500 * power(random(), 2))::int, NULL, a, a,
                   {now} - random() * interval '365 days'
            FROM (SELECT g, random() < 0.8 AS a FROM generate_series(1, 200000) g) x;"""),
    ]
    with engine.begin() as conn:
        for label, sql in steps:
            t0 = time.perf_counter()
            print(f"  loading {label} ...", end="", flush=True)
            for statement in [s for s in sql.split(";\n") if s.strip()]:
                conn.execute(text(statement))
            print(f" {time.perf_counter() - t0:.1f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        t0 = time.perf_counter()
        conn.execute(text("VACUUM ANALYZE"))
        print(f"  vacuum analyze {time.perf_counter() - t0:.1f} s", flush=True)
    engine.dispose()


def ensure_database(admin_url: str, name: str, n_tickets: int, reuse: bool) -> str:
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    admin = create_engine(normalize_database_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
    if reuse and exists:
        probe = create_engine(normalize_database_url(url))
        with probe.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM tickets")).scalar()
        probe.dispose()
        if count == n_tickets:
            upgrade(url)  # picks up new index migrations
            with create_engine(normalize_database_url(url)).connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
            print(f"Reusing {name} ({count:,} tickets).")
            admin.dispose()
            return url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    print(f"Created database {name}; migrating and loading:")
    upgrade(url)
    load(url, n_tickets)
    return url


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), max(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--db", default="atende_bench")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    args = parser.parse_args(argv)
    url = ensure_database(args.admin_url, args.db, args.tickets, args.reuse)

    today = utcnow().date()
    periods = {"30 dias": metrics.Period.from_dates(today - timedelta(days=29), today),
               "365 dias": metrics.Period.from_dates(today - timedelta(days=364), today)}
    timings: list[tuple[str, Callable[[Any, metrics.Period], Any]]] = [
        ("total, média e mediana de resolução", metrics.ticket_totals),
        # the four highlights (top customer/type/module/technician) are read from the breakdown rows
        # below by metrics.summarize, without another query
        ("chamados por dia", metrics.tickets_per_day),
        ("por módulo", metrics.tickets_per_module),
        ("por cliente", metrics.tickets_per_customer),
        ("por tipo", metrics.tickets_per_type),
        ("por técnico", metrics.tickets_per_technician),
        ("bot (resolvidas, docs, ofertas, notas)", metrics.bot_summary),
        ("bot: contida, verificada, durável", metrics.bot_resolution),
        ("avaliações", metrics.ratings),
        ("lacunas da documentação", metrics.documentation_gaps),
        ("contatos e conversas únicos dos chamados", drilldown.ticket_reach),
        ("ver chamados do período (500 linhas + contagens)",
         lambda s, p: drilldown.drill(s, p, drilldown.Figure("chamados"))),
        ("ver conversas duráveis (500 linhas + contagens)",
         lambda s, p: drilldown.drill(s, p, drilldown.Figure("duraveis"))),
        ("relatório inteiro, em série (+ CSV)", lambda s, p: reports.to_csv(reports.build(s, p))),
        ("relatório inteiro, 4 conexões (como no console)",
         lambda s, p: reports.to_csv(reports.build_concurrently(p, url))),
    ]
    worst = 0.0
    try:
        load1 = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load1 = "?"
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load1} when the timings started")
    with session_scope(url) as s:
        n = s.execute(text("SELECT count(*) FROM tickets")).scalar()
        print(f"\nPostgreSQL, {n:,} tickets; median and max of {args.repeat} runs (limit {LIMIT_S:.1f} s per report)\n")
        print(f"{'report':46} {'period':>9} {'median s':>9} {'max s':>7}")
        for name, fn in timings:
            for label, period in periods.items():
                med, mx = timed(lambda: fn(s, period), args.repeat)
                worst = max(worst, mx) if not name.startswith("relatório inteiro") else worst
                flag = "" if mx <= LIMIT_S else "  OVER"
                print(f"{name:46} {label:>9} {med:9.3f} {mx:7.3f}{flag}", flush=True)
    print(f"\nslowest single report: {worst:.3f} s ({'OK' if worst <= LIMIT_S else 'OVER'} the {LIMIT_S:.0f} s limit)")
    return 0 if worst <= LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
