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
    assert doc["tracker_store"] == {"type": "SQL", "dialect": "postgresql", "host": "db.example.com",
                                    "port": 6432, "db": "atende", "username": "atende", "password": "p@ss",
                                    "query": {"sslmode": "require"}}
    assert doc["lock_store"] == {"type": "redis", "url": "redis", "port": 6380, "db": 2, "password": "s3cret"}


def test_sqlite_and_no_redis(tmp_path) -> None:
    doc = endpoints.render(database_url=f"sqlite:///{tmp_path}/a.db", action_url="http://x/webhook", redis_url="")
    assert doc["tracker_store"] == {"type": "SQL", "dialect": "sqlite", "db": f"{tmp_path}/a.db"}
    assert "lock_store" not in doc


def test_unsupported_database_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unsupported DATABASE_URL"):
        endpoints.render(database_url="mysql://u@h/db", action_url="http://x", redis_url="")
