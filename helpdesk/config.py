"""Typed settings of the app env, read once from the environment.

Nothing reads the environment at import time: `get_settings()` builds the object on first use and
`reset_settings()` lets tests change the environment and read it again.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from atende_contract import attestation, dburl

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_db_url() -> str:
    return f"sqlite:///{REPO_ROOT / 'var' / 'atende.db'}"


def normalize_database_url(url: str) -> str:
    """Map a plain URL to the driver of the app env (psycopg 3 for PostgreSQL).

    A relative SQLite path is taken relative to the repository root, so every process started from
    anywhere opens the same file. (One rule for both environments: atende_contract.dburl.)
    """
    return dburl.app_url(url, REPO_ROOT)


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=_default_db_url)
    rasa_url: str = "http://localhost:5005"
    rasa_jwt_secret: str = ""
    webchat_jwt_secret: str = ""
    # Key of the per-turn identity attestation signed by the connectors (atende_contract);
    # None: no turn is ever identified.
    attestation_key: bytes | None = None
    attestation_max_age_s: int = 300
    session_ttl_minutes: int = 480
    login_max_failures: int = 5
    login_lock_minutes: int = 15

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        return cls(
            database_url=normalize_database_url(env.get("DATABASE_URL") or _default_db_url()),
            rasa_url=env.get("RASA_URL", "http://localhost:5005").rstrip("/"),
            rasa_jwt_secret=env.get("RASA_JWT_SECRET", ""),
            webchat_jwt_secret=env.get("WEBCHAT_JWT_SECRET", ""),
            attestation_key=attestation.key_from_env(env),
            attestation_max_age_s=int(env.get("ATENDE_ATTESTATION_MAX_AGE_S", "300")),
            session_ttl_minutes=int(env.get("CONSOLE_SESSION_TTL_MINUTES", "480")),
            login_max_failures=int(env.get("CONSOLE_LOGIN_MAX_FAILURES", "5")),
            login_lock_minutes=int(env.get("CONSOLE_LOGIN_LOCK_MINUTES", "15")),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment and call this)."""
    get_settings.cache_clear()
