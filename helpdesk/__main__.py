"""Command line: `python -m helpdesk migrate | demo [--reset] | create-manager | create-technician`."""
from __future__ import annotations

import argparse
import getpass
import os
import sys

from . import demo
from .db import session_scope, upgrade
from .errors import DomainError


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return args.password
    env = os.environ.get("ATENDE_NEW_PASSWORD")
    if env:
        return env
    first = getpass.getpass("Senha: ")
    if first != getpass.getpass("Repita a senha: "):
        raise SystemExit("As senhas não conferem.")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpdesk", description="Atende help-desk administration")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("migrate", help="upgrade the database schema to the latest version")
    p_demo = sub.add_parser("demo", help="load the demo data once (no-op when already loaded)")
    p_demo.add_argument("--reset", action="store_true", help="delete all help-desk data first")
    for name in ("create-manager", "create-technician"):
        p = sub.add_parser(name, help=f"{name.replace('-', ' ')} for the console")
        p.add_argument("--name", required=True)
        p.add_argument("--email", required=True)
        p.add_argument("--password", help="or ATENDE_NEW_PASSWORD, or prompted")
        p.add_argument("--level", type=int, default=1)
    args = parser.parse_args(argv)

    try:
        if args.cmd == "migrate":
            upgrade()
            print("Database schema is up to date.")
        elif args.cmd == "demo":
            upgrade()
            with session_scope() as s:
                if args.reset:
                    demo.reset(s)
                    print("Demo data cleared.")
                if demo.is_loaded(s):
                    print("Demo data already loaded (use --reset to reload).")
                    return 0
                print("Loading demo data (catalog, customers, technicians, six months of tickets)...", flush=True)
                counts = demo.load(s)
            print("Loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
            print(f"Console logins: mariana@atende.demo (manager), rafael@atende.demo (technician); "
                  f"password {demo.DEMO_PASSWORD}")
        else:
            from .services import technicians

            role = "manager" if args.cmd == "create-manager" else "technician"
            upgrade()
            with session_scope() as s:
                tech = technicians.create(s, name=args.name, email=args.email, password=_password(args),
                                          role=role, level=args.level)
                print(f"Created {role} {tech.email} (id {tech.id}).")
    except DomainError as err:
        print(f"Erro: {err.message_pt} ({err})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
