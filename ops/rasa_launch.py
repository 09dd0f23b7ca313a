"""Start `rasa` (bot env) with the HTTP API's secret from the environment, not the command line.

    python -m ops.rasa_launch run --model ... --enable-api ...

Rasa 3.6 takes its API credentials only as arguments (`--jwt-secret`, `--auth-token`), and an
argument is readable by every local user (`ps`, /proc/<pid>/cmdline) and ends up in whatever
prints command lines. This wrapper reads RASA_JWT_SECRET and hands it to Rasa's own argument
parser inside the process, so the process's command line carries no secret:

- the HTTP API then accepts only `Authorization: Bearer <JWT>` (HS256, signed with
  RASA_JWT_SECRET; the console signs short-lived ones, helpdesk/services/rasa_client.py), never a
  token in the query string;
- a secret shorter than 32 bytes, or `--enable-api` without a secret (an open API), stops the
  server at start with a clear message;
- a `--jwt-secret` / `--auth-token` given on the command line is refused.

Used by ops/procs.py (`make run`, `make run-prod`, the tests) and docker/bot-entrypoint.sh.
"""
from __future__ import annotations

import os
import sys

MIN_SECRET_BYTES = 32
FORBIDDEN_ARGS = ("--jwt-secret", "--auth-token", "--jwt-private-key")


def rasa_argv(argv: list[str], environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """Rasa's arguments with the JWT options added; raises SystemExit with a message when unsafe."""
    for arg in argv:
        if arg.split("=", 1)[0] in FORBIDDEN_ARGS:
            raise SystemExit(f"ops.rasa_launch: {arg.split('=', 1)[0]} on the command line is refused: "
                             "set RASA_JWT_SECRET in the environment instead")
    secret = environ.get("RASA_JWT_SECRET", "")
    if secret:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise SystemExit(f"RASA_JWT_SECRET is {len(secret.encode())} bytes long: it must have at least "
                             f"{MIN_SECRET_BYTES} (e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        return [*argv, "--jwt-secret", secret, "--jwt-method", "HS256"]
    if argv[:1] == ["run"] and "--enable-api" in argv:
        raise SystemExit("RASA_JWT_SECRET is not set: refusing to start Rasa's HTTP API without authentication "
                         "(`make run` generates one in var/secrets.env; compose reads it from .env)")
    return list(argv)


def main() -> int:
    argv = rasa_argv(sys.argv[1:], os.environ)
    # argparse reads sys.argv; the kernel's copy (/proc/<pid>/cmdline) keeps the original one.
    sys.argv = ["rasa", *argv]
    from rasa.__main__ import main as rasa_main

    rasa_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
