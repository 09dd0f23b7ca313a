"""ops/endpoints.py: Rasa's endpoints.yml from DATABASE_URL, REDIS_URL and ACTION_SERVER_URL."""
from __future__ import annotations

import pytest
import yaml

from ops import endpoints


def test_postgres_tracker_store_and_redis_lock_store(tmp_path) -> None:
    out = endpoints.write(tmp_path / "endpoints.yml",
                          database_url="postgresql+psycopg://atende:p%40ss@db.example.com:6432/atende?sslmode=require",
                          action_url="http://actions:5055/webhook", redis_url="redis://:s3cret@redis:6380/2")
    doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert doc["action_endpoint"] == {"url": "http://actions:5055/webhook"}
    assert doc["tracker_store"] == {"type": endpoints.TRACKER_STORE, "dialect": "postgresql",
                                    "url": "db.example.com", "port": 6432, "db": "atende", "username": "atende", "password": "p@ss",
                                    "query": {"sslmode": "require"}}
    assert doc["lock_store"] == {"type": "redis", "url": "redis", "port": 6380, "db": 2, "password": "s3cret"}


def test_sqlite_and_no_redis(tmp_path) -> None:
    doc = endpoints.render(database_url=f"sqlite:///{tmp_path}/a.db", action_url="http://x/webhook", redis_url="")
    assert doc["tracker_store"] == {"type": "connectors.tracker_store.AtendeSQLTrackerStore", "dialect": "sqlite",
                                    "db": f"{tmp_path}/a.db"}
    assert "lock_store" not in doc


def test_unsupported_database_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unsupported DATABASE_URL"):
        endpoints.render(database_url="mysql://u@h/db", action_url="http://x", redis_url="")


RASA_LOADS = """
import asyncio, sys
from rasa.core.tracker_store import TrackerStore
from rasa.core.lock_store import LockStore
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import read_endpoint_config
path = sys.argv[1]
store = TrackerStore.create(read_endpoint_config(path, "tracker_store"), Domain.empty())
print(type(store).__name__, store.engine.dialect.name)
lock = LockStore.create(read_endpoint_config(path, "lock_store"))
print(type(lock).__name__)
"""


def test_rasa_loads_the_rendered_stores(tmp_path) -> None:
    """Rasa 3.6 (bot env) builds its SQL tracker store and Redis lock store from the rendered file."""
    import os
    import subprocess

    from ops.paths import BOT_PYTHON

    pg, rd = os.environ.get("TEST_POSTGRES_URL"), os.environ.get("TEST_REDIS_URL")
    if not (pg and rd and BOT_PYTHON.exists()):
        pytest.skip("needs TEST_POSTGRES_URL, TEST_REDIS_URL (set by .ci/run) and the bot env")
    out = endpoints.write(tmp_path / "endpoints.yml", database_url=pg, action_url="http://x/webhook", redis_url=rd)
    done = subprocess.run([str(BOT_PYTHON), "-c", RASA_LOADS, str(out)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, RASA_TELEMETRY_ENABLED="false"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "AtendeSQLTrackerStore postgresql" in done.stdout
    assert "RedisLockStore" in done.stdout
