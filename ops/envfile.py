"""Load `.env` (KEY=VALUE lines) into the environment without overriding what is already set,
and keep generated development secrets in var/secrets.env so restarts reuse them."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from .paths import ROOT, VAR


def parse(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def load_dotenv(path: Path | None = None) -> None:
    for key, value in parse(path or ROOT / ".env").items():
        os.environ.setdefault(key, value)


# Secrets that `make run` / `make run-prod` generate when unset (compose requires them in .env):
# RASA_JWT_SECRET signs the console's bearer tokens for Rasa's HTTP API; ATENDE_ATTESTATION_SECRET
# keys the HMAC with which the connectors (Rasa server, WhatsApp gateway) attest an identity to
# the action server; WEBCHAT_JWT_SECRET is shared with the vendor's site (the demo site here).
DEV_SECRETS = ("RASA_JWT_SECRET", "ATENDE_ATTESTATION_SECRET", "WEBCHAT_JWT_SECRET")


def new_secret() -> str:
    """A random secret of 43 URL-safe characters (32 random bytes)."""
    return secrets.token_urlsafe(32)


def ensure_dev_secrets(names: tuple[str, ...] = DEV_SECRETS) -> None:
    """Give each unset secret a random value, generated once and kept in var/secrets.env."""
    store = VAR / "secrets.env"
    saved = parse(store)
    changed = False
    for name in names:
        if os.environ.get(name):
            continue
        if name not in saved:
            saved[name] = new_secret()
            changed = True
        os.environ[name] = saved[name]
    if changed:
        VAR.mkdir(parents=True, exist_ok=True)
        store.write_text("".join(f"{k}={v}\n" for k, v in saved.items()), encoding="utf-8")
        store.chmod(0o600)
