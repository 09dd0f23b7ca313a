"""Retention purge benchmark: `privacy purge` over a tracker store of many conversations.

    .venv/bin/python bench/retention_bench.py [--conversations 20000] [--events 10] [--url postgresql://...]

Creates a fresh PostgreSQL database ``atende_retention_bench`` next to ``--url`` (default the local
test server; dropped at the end), or uses the SQLite file of a ``sqlite:///`` URL (give a new one),
loads ``--conversations`` WhatsApp conversations of
``--events`` tracker events each with one inbox and one outbox row and one question, half of them
older than every retention period, one in ten of the old ones with an open ticket and one in ten
in hand-off. Then it times the dry run and the purge, and checks the counts.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from helpdesk import retention  # noqa: E402
from helpdesk.config import normalize_database_url  # noqa: E402
from helpdesk.db import dispose_engines, get_engine, session_scope, upgrade  # noqa: E402
from helpdesk.models import KnowledgeQuery, Ticket, utcnow  # noqa: E402
from tests.helpdesk.test_privacy import EVENTS, INBOX, OUTBOX, _foreign  # noqa: E402


def load(url: str, conversations: int, events: int) -> dict[str, int]:
    now = utcnow()
    engine = get_engine(url)
    _foreign.create_all(engine)
    with engine.begin() as conn:  # Rasa's SQLTrackerStore indexes sender_id
        conn.execute(sa.text("CREATE INDEX ix_events_sender_id ON events (sender_id)"))
    expected = {"old": 0, "exempt": 0}
    ev, inbox, outbox, queries, tickets = [], [], [], [], []
    for i in range(conversations):
        phone = f"55119{i:08d}"
        conv = f"whatsapp:{phone}"
        old = i % 2 == 0
        at = now - timedelta(days=400 if old else 5)
        ts = at.timestamp()
        handoff = old and i % 20 == 2
        open_ticket = old and i % 20 == 4
        for k in range(events):
            ev.append({"sender_id": conv, "type_name": "user", "timestamp": ts + k,
                       "data": json.dumps({"event": "user", "text": f"mensagem {k} da conversa {i}"})})
        if handoff:
            ev.append({"sender_id": conv, "type_name": "active_loop", "timestamp": ts + events,
                       "data": json.dumps({"event": "active_loop", "name": retention.HANDOFF_LOOP})})
        if open_ticket:
            tickets.append({"channel": "whatsapp", "type": "erro", "status": "novo", "conversation_id": conv,
                            "opened_at": at, "updated_at": at, "priority": "normal", "level": 1,
                            "subject": "", "description": "x", "contact_name": "", "solution": "", "row_version": 1})
        inbox.append({"item_id": f"wamid.{i}", "kind": "message", "sender": phone, "state": "done",
                      "text": f"texto {i}", "data": "{}", "attempts": 0, "received_at": ts})
        outbox.append({"source_key": f"wamid.{i}", "idx": 0, "recipient": phone, "kind": "text",
                       "send_state": "accepted", "body": json.dumps({"text": {"body": f"resposta {i}"}}),
                       "needs_template": False, "attempts": 1, "created_at": ts, "updated_at": ts})
        queries.append({"conversation_id": conv, "question": f"pergunta {i}", "answered": False, "grounded": False,
                        "at": at})
        if old:
            expected["exempt" if handoff or open_ticket else "old"] += 1
    with engine.begin() as conn:
        for table, rows in ((EVENTS, ev), (INBOX, inbox), (OUTBOX, outbox),
                            (KnowledgeQuery.__table__, queries), (Ticket.__table__, tickets)):
            for j in range(0, len(rows), 5000):
                conn.execute(sa.insert(table), rows[j:j + 5000])
    expected["events"] = len(ev)
    return expected


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=20000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    admin = None
    url = args.url
    if url.startswith("postgresql"):
        admin = sa.create_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS "atende_retention_bench" WITH (FORCE)'))
            conn.execute(sa.text('CREATE DATABASE "atende_retention_bench"'))
        url = url.rsplit("/", 1)[0] + "/atende_retention_bench"
    try:
        upgrade(url)
        t0 = time.perf_counter()
        expected = load(url, args.conversations, args.events)
        print(f"loaded {args.conversations:,} conversations, {expected['events']:,} events "
              f"in {time.perf_counter() - t0:.1f} s")
        settings = retention.RetentionSettings()
        for dry in (True, False):
            t0 = time.perf_counter()
            with session_scope(url) as s:
                counts = retention.purge(s, settings=settings, actor="bench", dry_run=dry)
            took = time.perf_counter() - t0
            print(f"{'dry run' if dry else 'purge  '}: {took:.2f} s  conversations={counts['conversations']:,} "
                  f"events={counts['events']:,} exempt={counts['exempt_conversations']:,} "
                  f"inbox={counts['whatsapp_inbox']:,} questions={counts['knowledge_queries']:,}")
            assert counts["conversations"] == expected["old"], (counts, expected)
            assert counts["exempt_conversations"] == expected["exempt"], (counts, expected)
        return 0
    finally:
        dispose_engines()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text('DROP DATABASE IF EXISTS "atende_retention_bench" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
