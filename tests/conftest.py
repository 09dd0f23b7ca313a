"""Shared fixtures: a migrated database on SQLite, and on PostgreSQL when TEST_POSTGRES_URL is set.

`db_url` runs a test once per engine. In CI (CI=true) a missing TEST_POSTGRES_URL fails the run
instead of skipping, so the PostgreSQL suite always happens there.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest
from sqlalchemy import create_engine, text

from helpdesk.config import normalize_database_url, reset_settings
from helpdesk.db import dispose_engines, upgrade
from helpdesk.models import Base

if TYPE_CHECKING:
    from tests.support.stack import Stack

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dbtemplate") / "template.db"
    upgrade(f"sqlite:///{path}")
    dispose_engines()
    return path


@pytest.fixture()
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "atende.db"
    shutil.copy(_sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def _postgres_db() -> Iterator[str]:
    base = os.environ.get("TEST_POSTGRES_URL")
    if not base:
        if _in_ci():
            pytest.fail("TEST_POSTGRES_URL is not set: CI must run the PostgreSQL suite")
        pytest.skip("TEST_POSTGRES_URL not set")
    name = f"atende_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_database_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    try:
        yield url
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture()
def postgres_url(_postgres_db: str) -> str:
    engine = create_engine(normalize_database_url(_postgres_db))
    with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        # Tables a test made beside the migrated schema (the bot env's whatsapp_* tables, which the
        # connector or the demo creates when missing) go too: every test starts from the migrated
        # schema alone, as a copy of the SQLite template does.
        ours = {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}
        extra = [r[0] for r in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
                 if r[0] not in ours]
        for name in extra:
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()
    return _postgres_db


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated, empty database, used as DATABASE_URL for the duration of the test."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    monkeypatch.setenv("DATABASE_URL", url)
    reset_settings()
    yield url
    dispose_engines()
    reset_settings()


@pytest.fixture(scope="session")
def atende_stack(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Iterator["Stack"]:
    """The real Rasa server + action server over the demo data, one per test session, shared by
    tests/conversation, tests/security, tests/integration and tests/browser (each test uses
    conversation ids, phones or sessions of its own). The website channel takes the development
    default: localhost origins on any port (the browser tests' demo sites, `http://127.0.0.1`)."""
    from tests.support.stack import start_stack

    st = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield st
    finally:
        st.stop()


@pytest.fixture(scope="session")
def model() -> Path:
    """The project's trained Rasa model (trained once if the data changed)."""
    from ops.train import train_if_changed

    return train_if_changed(quiet=True)


@pytest.fixture(scope="session")
def stack(atende_stack: "Stack") -> "Stack":
    """The session's stack (`atende_stack`), under the name the conversation tests use."""
    return atende_stack


@pytest.fixture(scope="session")
def variant_stack(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Iterator["Stack"]:
    """A second real stack for the tests that need other settings than the shared one, started once
    with all of them (tests/support/stack.py `VARIANT_ENV`): WhatsApp templates, the console URL
    articles are cited with, and the WhatsApp privacy notice on. Shared by the article answer, the
    24-hour window and the privacy notice journeys, which otherwise started a stack each."""
    from tests.support.stack import VARIANT_ENV, start_stack

    st = start_stack(tmp_path_factory.mktemp("variant"), extra_env=VARIANT_ENV)
    try:
        yield st
    finally:
        st.stop()
        dispose_engines()


@pytest.fixture(autouse=True)
def _fresh_login_throttle() -> Iterator[None]:
    """The console's login throttle lives in the process: no test sees another's failures."""
    from helpdesk.services import technicians

    technicians.login_throttle.reset()
    yield
    technicians.login_throttle.reset()


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> object:
    """A clock the login throttle reads, moved by the test."""
    from helpdesk.services import technicians
    from tests.console.apphelpers import FakeClock

    fake = FakeClock()
    monkeypatch.setattr(technicians.login_throttle, "clock", fake)
    return fake
