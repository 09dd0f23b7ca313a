"""Load test of the production topology (ops/run_prod.py) through the nginx proxy, on loopback.

    .venv/bin/python -m bench.load --replicas 1 --duration 60
    .venv/bin/python -m bench.load --replicas 2 --duration 90 --faults

Starts its own PostgreSQL and Redis (so PostgreSQL can be restarted), N Rasa replicas, the action
server and nginx, plus a fake Graph API standing in for Meta. Website visitors (socket.io) and
WhatsApp customers (signed webhooks) play mixed journeys until the time or turn budget runs out.
With --faults: one Rasa replica is killed (SIGKILL) at 25% of the time, the action server is
restarted at 50%, PostgreSQL is restarted at 75%. Prints throughput, latency percentiles, errors,
what each fault cost (failed turns, seconds to recover) and the database check of every
conversation; writes the figures as JSON to var/bench/.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ops.paths import VAR
from ops.run_prod import ProdConfig, Topology
from ops import procs
from tests.support.fake_graph import FakeGraph

from .check import check
from .clients import LoadSpec, Results, Turn, web_visitor, whatsapp_customer

SECRET, VERIFY, TOKEN, PHONE_ID = "load-app-secret", "load-verify", "load-token", "1122334455667"
ORIGIN = "http://loadtest.localhost"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def fault_costs(turns: list[Turn], faults: list[tuple[str, float]], end: float) -> list[dict[str, object]]:
    """Per fault: failed turns started in its window, and seconds until service was back.

    Recovery: from the fault to the first successful reply to a turn that started after the last
    failed turn of the window (or after the fault when nothing failed)."""
    out = []
    for i, (name, at) in enumerate(faults):
        until = faults[i + 1][1] if i + 1 < len(faults) else end
        window = [t for t in turns if at <= t.started < until]
        failed = [t for t in window if t.error]
        after = max((t.started for t in failed), default=at)
        ok_after = [t.started + t.latency for t in window if not t.error and t.latency is not None and t.started >= after]
        recovered = (min(ok_after) - at) if ok_after else None
        out.append({"fault": name, "turns": len(window), "failed": len(failed),
                    "errors": sorted({t.error or "" for t in failed}),
                    "recovery_s": round(recovered, 1) if recovered is not None else None})
    return out


async def drive(topo: Topology, graph: FakeGraph, args: argparse.Namespace) -> tuple[Results, list[tuple[str, float]], float, float]:
    results = Results()
    start = time.monotonic()
    spec = LoadSpec(proxy_url=topo.proxy_url, deadline=start + args.duration, max_turns=args.max_turns,
                    origin=ORIGIN, whatsapp_secret=SECRET, phone_number_id=PHONE_ID)

    def replies_for(sender: str) -> list[str]:
        return [json.dumps(r.body, ensure_ascii=False) for r in graph.sent()
                if isinstance(r.body, dict) and r.body.get("to") == sender]

    rng = random.Random(args.seed)
    tasks = [asyncio.create_task(web_visitor(i, spec, results, random.Random(rng.random()))) for i in range(args.web)]
    tasks += [asyncio.create_task(whatsapp_customer(i, spec, results, random.Random(rng.random()), replies_for))
              for i in range(args.whatsapp)]
    faults: list[tuple[str, float]] = []
    took: dict[str, float] = {}
    if args.faults:
        plan = [(0.25, "kill one Rasa server (SIGKILL)", lambda: topo.kill_rasa(0)),
                (0.50, "restart the action server", topo.restart_actions),
                (0.75, "restart PostgreSQL", topo.restart_postgres)]
        for frac, name, action in plan:
            if name.startswith("kill") and len(topo.rasa) < 2:
                continue
            await asyncio.sleep(max(0.0, start + frac * args.duration - time.monotonic()))
            at = time.monotonic()
            faults.append((name, at))
            print(f"  fault at {at - start:5.1f}s: {name}", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, action)
            took[name] = round(time.monotonic() - at, 1)
            print(f"    done in {took[name]}s", flush=True)
    await asyncio.gather(*tasks)
    results.fault_durations = took
    return results, faults, start, time.monotonic()


def summarize(results: Results, faults: list[tuple[str, float]], start: float, end: float,
              args: argparse.Namespace) -> dict[str, object]:
    turns = [t for t in results.turns if t.text != "<connect>" or t.error]
    ok = [t for t in turns if not t.error and t.latency is not None]
    out: dict[str, object] = {
        "replicas": args.replicas, "web_clients": args.web, "whatsapp_clients": args.whatsapp,
        "duration_s": round(end - start, 1), "turns": len(turns), "answered": len(ok),
        "errors": len(turns) - len(ok),
        "throughput_turns_per_s": round(len(ok) / max(end - start, 1e-9), 2),
        "conversations": len(results.conversations),
    }
    for channel in ("website", "whatsapp"):
        lat = [t.latency for t in ok if t.channel == channel and t.latency is not None]
        out[channel] = {"turns": sum(1 for t in turns if t.channel == channel), "answered": len(lat),
                        "p50_ms": round(percentile(lat, 50) * 1000), "p90_ms": round(percentile(lat, 90) * 1000),
                        "p99_ms": round(percentile(lat, 99) * 1000),
                        "mean_ms": round(statistics.fmean(lat) * 1000) if lat else None} if lat else {"turns": 0}
    errs: dict[str, int] = {}
    for t in turns:
        if t.error:
            key = f"{t.channel}: {t.error} ({t.journey}: {t.text!r})"
            errs[key] = errs.get(key, 0) + 1
    out["error_kinds"] = errs
    if faults:
        out["faults"] = fault_costs(turns, faults, end)
        for f in out["faults"]:
            f["action_s"] = results.fault_durations.get(str(f["fault"]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--web", type=int, default=6, help="simulated website visitors (concurrent)")
    parser.add_argument("--whatsapp", type=int, default=6, help="simulated WhatsApp customers (concurrent)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (new turns stop after it)")
    parser.add_argument("--max-turns", type=int, default=200, help="turns per simulated client at most")
    parser.add_argument("--faults", action="store_true", help="kill a Rasa server, restart actions and PostgreSQL")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=VAR / "bench-load")
    parser.add_argument("--keep", action="store_true", help="keep the database of the previous run")
    parser.add_argument("--model", type=Path, help="serve this model (default: train the current data if needed)")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.web < 0 or args.whatsapp < 0 or args.web + args.whatsapp == 0:
        parser.error("need a positive --duration and at least one client")

    import shutil
    if args.workdir.exists() and not args.keep:
        shutil.rmtree(args.workdir)
    graph = FakeGraph(access_token=TOKEN, phone_number_id=PHONE_ID).start()
    env = {"RASA_TOKEN": "load-rasa-token", "WEBCHAT_JWT_SECRET": "load-webchat-secret",
           "WEBCHAT_ALLOWED_ORIGINS": ORIGIN, "WEBCHAT_RATE_BURST": "20",
           "WHATSAPP_APP_SECRET": SECRET, "WHATSAPP_VERIFY_TOKEN": VERIFY, "WHATSAPP_ACCESS_TOKEN": TOKEN,
           "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID, "WHATSAPP_GRAPH_URL": graph.base_url, "OPENAI_API_KEY": ""}
    topo = Topology(ProdConfig(replicas=args.replicas, proxy_port=procs.free_port(), console_port=procs.free_port(),
                               workdir=args.workdir, own_services=True, console=False, env=env, quiet=True, model=args.model))
    try:
        t0 = time.monotonic()
        print(f"Starting the topology: {args.replicas} Rasa replica(s), own PostgreSQL and Redis...", flush=True)
        topo.start()
        print(f"  ready in {time.monotonic() - t0:.0f}s; proxy {topo.proxy_url}", flush=True)
        print(f"Load: {args.web} website visitors + {args.whatsapp} WhatsApp customers for {args.duration:.0f}s"
              f"{' with faults' if args.faults else ''}", flush=True)
        results, faults, start, end = asyncio.run(drive(topo, graph, args))
        time.sleep(3)  # let the WhatsApp outbox drain
        summary = summarize(results, faults, start, end, args)
        report = check(topo.database_url, results.conversations)
        summary["database_check"] = {k: v for k, v in asdict(report).items()}
        summary["database_check"]["ok"] = report.ok
    finally:
        topo.stop()
        graph.stop()
    out_dir = VAR / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"load-r{args.replicas}{'-faults' if args.faults else ''}.json"
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    print_summary(summary)
    print(f"\nFigures written to {out}")
    return 0 if report.ok else 1


def print_summary(s: dict) -> None:
    print(f"\n== {s['replicas']} Rasa replica(s): {s['web_clients']} web + {s['whatsapp_clients']} WhatsApp clients, "
          f"{s['duration_s']}s")
    print(f"turns {s['turns']}, answered {s['answered']}, errors {s['errors']}, "
          f"throughput {s['throughput_turns_per_s']} turns/s, conversations {s['conversations']}")
    for ch in ("website", "whatsapp"):
        c = s[ch]
        if c.get("answered"):
            print(f"  {ch:8s} answered {c['answered']}/{c['turns']}  p50 {c['p50_ms']} ms  p90 {c['p90_ms']} ms  "
                  f"p99 {c['p99_ms']} ms")
    for kind, n in s["error_kinds"].items():
        print(f"  error: {kind} x{n}")
    for f in s.get("faults", []):
        print(f"  fault '{f['fault']}' (took {f['action_s']} s): {f['failed']}/{f['turns']} turns failed "
              f"{f['errors']}; first good answer {f['recovery_s']} s after the fault")
    d = s["database_check"]
    print(f"database check: {d['conversations']} conversations, {d['turns_found']}/{d['turns_expected']} turns stored; "
          f"lost {len(d['lost'])}, duplicated {len(d['duplicated'])}, out of order {len(d['out_of_order'])} "
          f"-> {'OK' if d['ok'] else 'FAILED'}")
    for k in ("lost", "duplicated", "out_of_order"):
        for line in d[k][:5]:
            print(f"    {k}: {line}")


if __name__ == "__main__":
    sys.exit(main())
