"""The tables the app env reads of the bot env's (atende_contract.tables) match their definitions."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root (bot env)

from atende_contract import tables  # noqa: E402


def test_whatsapp_outbox_has_the_columns_the_console_reads() -> None:
    from connectors.whatsapp.store.engine import outbox

    assert outbox.name == tables.WHATSAPP_OUTBOX
    assert set(tables.WHATSAPP_OUTBOX_COLUMNS) <= set(outbox.c.keys())


def test_whatsapp_pricing_has_the_columns_the_reports_read() -> None:
    from connectors.whatsapp.store.engine import pricing

    assert pricing.name == tables.WHATSAPP_PRICING
    assert set(tables.WHATSAPP_PRICING_COLUMNS) <= set(pricing.c.keys())


def test_whatsapp_inbox_has_the_columns_the_console_reads() -> None:
    from connectors.whatsapp.store.engine import inbox

    assert inbox.name == tables.WHATSAPP_INBOX
    assert set(tables.WHATSAPP_INBOX_COLUMNS) <= set(inbox.c.keys())
    assert set(tables.WHATSAPP_INBOX_PROBLEM_COLUMNS) <= set(inbox.c.keys())  # "Problemas do WhatsApp"


def test_rasa_events_table_has_the_columns_the_console_reads() -> None:
    from rasa.core.tracker_store import SQLTrackerStore

    table = SQLTrackerStore.SQLEvent.__table__
    assert table.name == tables.EVENTS
    assert set(tables.EVENTS_COLUMNS) <= set(table.c.keys())
