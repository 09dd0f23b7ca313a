"""Reading typed settings from the environment: one rule for every helpdesk settings object
(worker intervals, notification channels). Each reader names the variable in its error, so an
operator sees which setting to fix; an empty or unset variable means the default."""
from __future__ import annotations

from typing import Mapping


def positive_number(env: Mapping[str, str], key: str, default: float, kind: type = float,
                    error: type[Exception] = ValueError) -> float:
    """A number > 0 (`kind` int or float)."""
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise error(f"{key} must be a number, got {raw!r}") from None
    if value != value or value <= 0:  # NaN or not positive
        raise error(f"{key} must be greater than zero, got {raw!r}")
    return value


def flag(env: Mapping[str, str], key: str, default: bool, error: type[Exception] = ValueError) -> bool:
    raw = (env.get(key) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise error(f"{key} must be true or false, got {raw!r}")
