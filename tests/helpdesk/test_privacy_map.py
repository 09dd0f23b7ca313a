"""docs/privacy.md's field map names every table and column that Atende writes, and nothing else.

A new table or column in helpdesk/models.py, in a migration, or in the bot env's tables (Rasa's
``events``, the WhatsApp connector's tables, as pinned by test_privacy.py) fails this test until the
map says whether it is personal and what export, erase and purge do to it.
"""
from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from atende_contract import tables

from helpdesk.db import get_engine
from helpdesk.models import Base
from tests.helpdesk.test_privacy import _foreign

DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"


def _map() -> dict[str, dict[str, set[str]]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Field map\n", 1)[1].split("\n## ", 1)[0]
    out: dict[str, dict[str, set[str]]] = {}
    for block in re.split(r"^### ", section, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        name = re.fullmatch(r"`([a-z_]+)`", heading.strip())
        assert name, f"map heading {heading!r} is not a table name in backticks"
        assert name.group(1) not in out, f"table {name.group(1)} mapped twice"
        kinds: dict[str, set[str]] = {"personal": set(), "other": set()}
        for line in body.splitlines():
            m = re.match(r"- (personal|other): (.*)$", line)
            if m:
                cols = re.findall(r"`([a-z_0-9]+)`", m.group(2))
                assert len(cols) == len(set(cols)), line
                kinds[m.group(1)] |= set(cols)
        assert not kinds["personal"] & kinds["other"], name.group(1)
        assert "export" in body or "Not touched" in body or "not touched" in body, name.group(1)
        out[name.group(1)] = kinds
    return out


def _actual() -> dict[str, set[str]]:
    actual = {t.name: {c.name for c in t.columns} for t in Base.metadata.sorted_tables}
    actual.update({t.name: {c.name for c in t.columns} for t in _foreign.sorted_tables})
    return actual


def test_the_map_names_every_table_and_column_and_no_other() -> None:
    mapped = {name: kinds["personal"] | kinds["other"] for name, kinds in _map().items()}
    actual = _actual()
    assert sorted(set(actual) - set(mapped)) == [], "tables missing from docs/privacy.md's field map"
    assert sorted(set(mapped) - set(actual)) == [], "the field map names tables that do not exist"
    for name, cols in actual.items():
        assert sorted(cols - mapped[name]) == [], f"{name}: columns missing from the field map"
        assert sorted(mapped[name] - cols) == [], f"{name}: the field map names columns that do not exist"


def test_the_contract_tables_are_the_mapped_ones() -> None:
    mapped = _map()
    assert set(tables.EVENTS_COLUMNS) == mapped[tables.EVENTS]["personal"] | mapped[tables.EVENTS]["other"]
    outbox = mapped[tables.WHATSAPP_OUTBOX]
    assert set(tables.WHATSAPP_OUTBOX_COLUMNS) <= outbox["personal"] | outbox["other"]
    # what erase and purge treat as personal is marked so
    assert {"sender_id", "data"} <= mapped["events"]["personal"]
    assert {"recipient", "body"} <= outbox["personal"]
    assert {"question", "conversation_id"} <= mapped["knowledge_queries"]["personal"]
    assert {"cnpj", "responsible_name"} <= mapped["customers"]["personal"]


def test_every_table_of_a_migrated_database_is_mapped(db_url: str) -> None:
    names = set(sa.inspect(get_engine(db_url)).get_table_names()) - {"alembic_version"}
    assert sorted(names - set(_map())) == []
