"""A throwaway PostgreSQL database for the bot-env store tests (SQLAlchemy 1.4, psycopg2).

In CI (CI=true) a missing TEST_POSTGRES_URL fails the test instead of skipping it.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator

import pytest
import sqlalchemy as sa


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    base = os.environ.get("TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("TEST_POSTGRES_URL is not set: CI must run the PostgreSQL suite")
        pytest.skip("TEST_POSTGRES_URL not set")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
