"""Command line: `python -m helpdesk migrate | demo [--reset] | create-manager | create-technician |
privacy export|erase | worker`."""
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


def _purge(args: argparse.Namespace) -> int:
    from . import retention

    settings = retention.get_settings()  # bad ATENDE_RETENTION_* values: an error before anything runs
    upgrade()
    with session_scope() as s:
        counts = retention.purge(s, settings=settings, actor=args.actor, dry_run=args.dry_run)
    print("Simulação: nada foi alterado. Seriam apagados ou anonimizados:" if args.dry_run
          else "Retenção aplicada. Apagados ou anonimizados:")
    print("\n".join(retention.describe(counts)))
    return 0


def _privacy(args: argparse.Namespace) -> int:
    from . import privacy

    if args.privacy_cmd == "purge":
        return _purge(args)
    selector = next(k for k in privacy.SELECTORS if getattr(args, k) is not None)
    value = getattr(args, selector)
    upgrade()
    if args.privacy_cmd == "export":
        with session_scope() as s:
            doc = privacy.export(s, selector, value, actor=args.actor)
        body = privacy.to_json(doc)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as fh:
                fh.write(body + "\n")
            print(f"Exportação gravada em {args.out}.", file=sys.stderr)
        else:
            print(body)
        return 0
    if not args.yes:
        with session_scope() as s:
            held = privacy.plan(s, selector, value)
            s.rollback()
        print("Simulação: nada foi apagado. Seriam apagados ou anonimizados:")
        print("\n".join(privacy.describe_counts(held)))
        print("Repita com --yes para apagar definitivamente.")
        return 0
    with session_scope() as s:
        held = privacy.erase(s, selector, value, actor=args.actor)
    print("Dados do titular apagados ou anonimizados:")
    print("\n".join(privacy.describe_counts(held)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:  # the periodic jobs have their own options (helpdesk/worker.py)
        from . import worker

        return worker.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m helpdesk", description="Atende help-desk administration")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("migrate", help="upgrade the database schema to the latest version")
    sub.add_parser("worker", help="run the periodic jobs (SLA, notifications, retention); see --help")
    p_demo = sub.add_parser("demo", help="load the demo data once (no-op when already loaded)")
    p_demo.add_argument("--reset", action="store_true", help="delete all help-desk data first")
    for name in ("create-manager", "create-technician"):
        p = sub.add_parser(name, help=f"{name.replace('-', ' ')} for the console")
        p.add_argument("--name", required=True)
        p.add_argument("--email", required=True)
        p.add_argument("--password", help="or ATENDE_NEW_PASSWORD, or prompted")
        p.add_argument("--level", type=int, default=1)
    p_priv = sub.add_parser("privacy", help="LGPD: export or erase everything held about one person")
    priv_sub = p_priv.add_subparsers(dest="privacy_cmd", required=True)
    p_purge = priv_sub.add_parser("purge", help="apply the retention periods (ATENDE_RETENTION_*_DAYS)")
    p_purge.add_argument("--dry-run", action="store_true", help="only print the counts; change nothing")
    p_purge.add_argument("--actor", help="who ran it (audit record); default cli:<login name>")
    for name, help_text in (("export", "write one JSON document with the person's data"),
                            ("erase", "delete or anonymise the person's data in every store")):
        p = priv_sub.add_parser(name, help=help_text)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--customer", metavar="ID")
        who.add_argument("--phone", metavar="P")
        who.add_argument("--email", metavar="E")
        who.add_argument("--conversation", metavar="ID")
        p.add_argument("--actor", help="who asked (audit record); default cli:<login name>")
        if name == "export":
            p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
        else:
            p.add_argument("--yes", action="store_true", help="really erase (without it: only show the counts)")
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
        elif args.cmd == "privacy":
            return _privacy(args)
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
