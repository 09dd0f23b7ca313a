"""Issue #17, bad input: "an erase interrupted half-way leaves either everything or nothing".

Every store (help desk, Rasa's tracker, WhatsApp tables) is in the one database of DATABASE_URL,
and ``privacy erase`` runs in one transaction, so there is no half-done state to resume: a failure
in any store rolls back the stores before it, and a rerun does the whole erasure. These tests make
the second store (``whatsapp_outbox``, after the tracker events) fail for real: a database trigger
that raises, and, on PostgreSQL, the command killed and its connection closed while the database
works on that store.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from helpdesk import privacy
from helpdesk.db import get_engine, session_scope
from helpdesk.models import PrivacyRequest
from tests.helpdesk.test_privacy import JOANA_NEEDLES, _dump, _load, _traces, foreign_tables  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def _add_trigger(body_pg: str) -> None:
    with get_engine().begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("CREATE TRIGGER atende_test_fail BEFORE UPDATE ON whatsapp_outbox "
                                 "BEGIN SELECT RAISE(ABORT, 'disco cheio'); END"))
        else:
            conn.execute(sa.text("CREATE OR REPLACE FUNCTION atende_test_fail() RETURNS trigger LANGUAGE plpgsql AS "
                                 f"$$ BEGIN {body_pg} END $$"))
            conn.execute(sa.text("CREATE TRIGGER atende_test_fail BEFORE UPDATE ON whatsapp_outbox "
                                 "FOR EACH ROW EXECUTE FUNCTION atende_test_fail()"))


def _drop_trigger() -> None:
    with get_engine().begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER atende_test_fail"))
        else:
            conn.execute(sa.text("DROP TRIGGER atende_test_fail ON whatsapp_outbox"))
            conn.execute(sa.text("DROP FUNCTION atende_test_fail()"))


def _erasures() -> int:
    with session_scope() as s:
        return len(list(s.scalars(sa.select(PrivacyRequest).where(PrivacyRequest.action == "erase"))))


def test_a_store_failing_leaves_everything_and_a_rerun_finishes(db_url: str, foreign_tables: None) -> None:
    ids = _load()
    _add_trigger("RAISE EXCEPTION 'disco cheio'; RETURN NEW;")
    before = _dump()
    with pytest.raises(sa.exc.DBAPIError, match="disco cheio"):
        with session_scope() as s:
            privacy.erase(s, "customer", str(ids.joana), actor="teste")
    assert _dump() == before  # the tracker events (first store) are all still there, and no audit row
    _drop_trigger()
    with session_scope() as s:
        privacy.erase(s, "customer", str(ids.joana), actor="teste")
    assert _traces(JOANA_NEEDLES) == []
    assert _erasures() == 1


@pytest.mark.postgres
def test_erase_killed_mid_way_with_its_connection_closed(postgres_url: str, foreign_tables_pg: None) -> None:
    ids = _load()
    _add_trigger("PERFORM pg_sleep(60); RETURN NEW;")
    before = _dump()
    get_engine().dispose()
    env = dict(os.environ, DATABASE_URL=postgres_url, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "helpdesk", "privacy", "erase", "--customer", str(ids.joana),
                             "--yes"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pid = None
        deadline = time.monotonic() + 60
        while pid is None and time.monotonic() < deadline and proc.poll() is None:
            with get_engine().connect() as conn:  # the erase is inside the outbox step, events already deleted
                pid = conn.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND wait_event = 'PgSleep'")).scalar()
            time.sleep(0.2)
        assert pid is not None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with get_engine().connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with get_engine().connect() as conn:
                if not conn.execute(sa.text("SELECT 1 FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).first():
                    break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert _dump() == before
    _drop_trigger()
    get_engine().dispose()
    r = subprocess.run([sys.executable, "-m", "helpdesk", "privacy", "erase", "--customer", str(ids.joana), "--yes"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _traces(JOANA_NEEDLES) == []
    assert _erasures() == 1


@pytest.fixture()
def foreign_tables_pg(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> object:
    from helpdesk.config import reset_settings
    from helpdesk.db import dispose_engines
    from tests.helpdesk import test_privacy

    monkeypatch.setenv("DATABASE_URL", postgres_url)
    reset_settings()
    engine = get_engine()
    test_privacy._foreign.create_all(engine)
    try:
        yield None
    finally:
        test_privacy._foreign.drop_all(get_engine())
        dispose_engines()
        reset_settings()
