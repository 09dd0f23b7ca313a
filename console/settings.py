"""Typed settings of the console, read from the environment once, when first needed.

Nothing in console/ reads the environment at import time: ``get_console_settings()`` builds the
object on first use; ``reset_console_settings()`` lets tests change the environment and read it
again. Settings the console shares with helpdesk/ (database, Rasa, session lifetime, login
backoff) stay in ``helpdesk.config``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

MIN_QUEUE_REFRESH_SECONDS = 5


def _seconds(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of seconds, got {raw!r}") from None


@dataclass(frozen=True)
class ConsoleSettings:
    # How often the queue's table refreshes itself (CONSOLE_QUEUE_REFRESH_SECONDS; at least 5 s).
    queue_refresh_seconds: int = 30

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ConsoleSettings":
        env = os.environ if env is None else env
        refresh = _seconds(env, "CONSOLE_QUEUE_REFRESH_SECONDS", cls.queue_refresh_seconds)
        return cls(queue_refresh_seconds=max(MIN_QUEUE_REFRESH_SECONDS, refresh))


@lru_cache(maxsize=1)
def get_console_settings() -> ConsoleSettings:
    return ConsoleSettings.from_env()


def reset_console_settings() -> None:
    get_console_settings.cache_clear()
