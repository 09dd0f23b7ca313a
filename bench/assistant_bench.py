"""Assistant benchmark: our stack on a rule path vs Rasa alone, same model, same run.

- "Rasa alone": the trained model, REST channel, in-memory tracker store, no action server; the
  customers say "obrigado" (rule → utter_you_are_welcome, no custom action). The domain's
  action_session_start is a custom action, so each "alone" conversation is opened before the
  timed messages by appending a session start through Rasa's HTTP API (untimed); "Atende"
  conversations start cold and run the custom action_session_start inside the timed window.
- "Atende": the same model, served as `make run` serves it (the project's channels from
  bot/credentials.yml, endpoints.yml from ops/endpoints.py), messages over the REST channel, the
  project's SQL tracker store (connectors/tracker_store.py) on the SQLite database (or
  --database-url), the real action server; the customers say "oi" (rule → action_greet, a custom
  action that checks identity). `--tracker-store rasa` puts Rasa's stock SQLTrackerStore there
  instead, for comparison.

Each round runs 20 concurrent conversations of MESSAGES turns. Rounds alternate between the two
servers (both stay up), so load from other processes hits both alike; the medians are reported.

Goals (issue #3): throughput ratio >= 0.8; p95 ratio (20 concurrent) <= 1.3.

    .venv/bin/python bench/assistant_bench.py [--rounds 5] [--messages 10] [--concurrency 20]
        [--tracker-store atende|rasa] [--database-url postgresql://...] [--profile DIR]

--profile DIR records the Atende Rasa server with py-spy (raw format, .venv-bot/bin/py-spy) during
its measured rounds.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpdesk.services.rasa_client import api_token  # noqa: E402
from ops import endpoints, procs  # noqa: E402
from ops.paths import APP_PYTHON, CREDENTIALS  # noqa: E402
from ops.train import train_if_changed  # noqa: E402


# Rasa's HTTP API takes a bearer JWT signed with RASA_JWT_SECRET (as the console sends it).
API_SECRET = secrets.token_urlsafe(32)


def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token(API_SECRET)}"}


SESSION_START = [{"event": "action", "name": "action_session_start"}, {"event": "session_started"},
                 {"event": "action", "name": "action_listen"}]


def open_session(url: str, sender: str) -> None:
    """Start the conversation's session without running the (custom) action_session_start."""
    resp = requests.post(f"{url}/conversations/{sender}/tracker/events", json=SESSION_START,
                         headers=api_headers(), timeout=60)
    resp.raise_for_status()


def new_senders(url: str, concurrency: int, seed: bool) -> list[str]:
    senders = [f"bench-{uuid.uuid4().hex[:12]}" for _ in range(concurrency)]
    if seed:
        for sender in senders:
            open_session(url, sender)
    return senders


def run_round(url: str, text: str, senders: list[str], messages: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def conversation(sender: str) -> None:
        session = requests.Session()
        for _ in range(messages):
            start = time.perf_counter()
            resp = session.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=120)
            elapsed = time.perf_counter() - start
            if resp.status_code != 200 or not resp.json():
                errors.append(f"{resp.status_code} {resp.text[:200]}")
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=conversation, args=(sender,)) for sender in senders]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return len(latencies) / wall, latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--tracker-store", choices=("atende", "rasa"), default="atende")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--profile", type=Path, help="py-spy raw profiles of the Atende Rasa server here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="assistant-bench-"))
    db_url = args.database_url or f"sqlite:///{work / 'atende.db'}"
    env = {"DATABASE_URL": db_url, "OPENAI_API_KEY": "", "RASA_JWT_SECRET": API_SECRET,
           "ATENDE_ATTESTATION_SECRET": secrets.token_urlsafe(32)}
    run_env = dict(os.environ, **env, PYTHONPATH=str(ROOT))
    print("Preparing the database and the model...", flush=True)
    subprocess.run([str(APP_PYTHON), "-m", "helpdesk", "migrate"], cwd=ROOT, env=run_env, check=True,
                   stdout=subprocess.DEVNULL)
    # The helpdesk engine puts the SQLite file in WAL mode on its first connection (a persistent
    # property of the file); do it now, as a running action server would have done already.
    os.environ["DATABASE_URL"] = db_url
    from sqlalchemy import text

    from helpdesk.db import get_engine

    if db_url.startswith("sqlite"):
        with get_engine(db_url).connect() as conn:
            mode = conn.execute(text("PRAGMA journal_mode")).scalar()
        print(f"database journal mode: {mode}")
    model = train_if_changed(quiet=True)
    credentials = work / "credentials.yml"
    credentials.write_text("rest:\n", encoding="utf-8")
    action_port, ours_port, alone_port = procs.free_port(), procs.free_port(), procs.free_port()
    ours_endpoints = endpoints.write(work / "endpoints.yml", database_url=db_url,
                                     action_url=f"http://127.0.0.1:{action_port}/webhook", redis_url="")
    if args.tracker_store == "rasa":
        doc = yaml.safe_load(ours_endpoints.read_text(encoding="utf-8"))
        doc["tracker_store"]["type"] = "SQL"
        ours_endpoints.write_text(yaml.safe_dump(doc), encoding="utf-8")
    print(f"Atende tracker store: {yaml.safe_load(ours_endpoints.read_text(encoding='utf-8'))['tracker_store']['type']}")
    alone_endpoints = work / "endpoints-alone.yml"
    alone_endpoints.write_text(yaml.safe_dump({}), encoding="utf-8")

    actions = procs.action_server(action_port, env=env, log=work / "actions.log")
    # Ours runs with the project's channels (bot/credentials.yml), as `make run` does.
    ours = procs.rasa_server(ours_port, model, ours_endpoints, credentials=CREDENTIALS, env=env,
                             log=work / "rasa-ours.log")
    alone = procs.rasa_server(alone_port, model, alone_endpoints, credentials=credentials, env=env,
                              log=work / "rasa-alone.log")
    started = [actions.start(), ours.start(), alone.start()]
    try:
        for proc in started:
            proc.wait_ready(300)
        ours_url, alone_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{alone_port}"
        # Check the paths really are what we claim, then warm both servers up.
        probe = requests.post(f"{ours_url}/webhooks/rest/webhook", json={"sender": "probe", "message": "oi"}).json()
        assert probe and "Olá" in probe[0]["text"], probe
        tracker = requests.get(f"{ours_url}/conversations/probe/tracker", headers=api_headers()).json()
        assert "action_greet" in [e.get("name") for e in tracker["events"]], "custom action not in the path"
        open_session(alone_url, "probe")
        probe = requests.post(f"{alone_url}/webhooks/rest/webhook", json={"sender": "probe", "message": "obrigado"}).json()
        assert probe and "Por nada" in probe[0]["text"], probe
        run_round(ours_url, "oi", new_senders(ours_url, args.concurrency, seed=False), 2)
        run_round(alone_url, "obrigado", new_senders(alone_url, args.concurrency, seed=True), 2)

        results: dict[str, list[tuple[float, float, float]]] = {"alone": [], "ours": []}
        # CPU seconds per measured message, by process: where the extra work of our path goes
        cpu: dict[str, float] = {"alone: rasa": 0.0, "ours: rasa": 0.0, "ours: action server": 0.0}
        pids = {"alone: rasa": alone.popen.pid, "ours: rasa": ours.popen.pid, "ours: action server": actions.popen.pid}
        sent = {"alone": 0, "ours": 0}
        for r in range(args.rounds):
            for name, url, text in (("alone", alone_url, "obrigado"), ("ours", ours_url, "oi")):
                spy = None
                if args.profile and name == "ours":
                    args.profile.mkdir(parents=True, exist_ok=True)
                    spy = subprocess.Popen([str(ROOT / ".venv-bot" / "bin" / "py-spy"), "record", "-p",
                                            str(ours.popen.pid), "-f", "raw", "-r", "50",
                                            "-o", str(args.profile / f"ours-round{r + 1}.txt")],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1)
                senders = new_senders(url, args.concurrency, seed=name == "alone")
                before = {k: cpu_seconds(pid) for k, pid in pids.items()}
                rate, lat = run_round(url, text, senders, args.messages)
                for k, pid in pids.items():
                    if k.startswith(name):
                        cpu[k] += cpu_seconds(pid) - before[k]
                sent[name] += len(lat)
                if spy is not None:
                    spy.send_signal(2)
                    spy.wait(30)
                results[name].append((rate, statistics.median(lat), p95(lat)))
                print(f"round {r + 1} {name:5s}: {rate:6.1f} msg/s  p50 {statistics.median(lat) * 1000:6.0f} ms  "
                      f"p95 {p95(lat) * 1000:6.0f} ms", flush=True)
    finally:
        for proc in reversed(started):
            proc.stop()

    def med(name: str, i: int) -> float:
        return statistics.median(x[i] for x in results[name])

    rate_ratio = med("ours", 0) / med("alone", 0)
    p95_ratio = med("ours", 2) / med("alone", 2)
    print()
    print(f"{'':24s} {'msg/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s}")
    print(f"{'Rasa alone (in-memory)':24s} {med('alone', 0):8.1f} {med('alone', 1) * 1000:8.0f} {med('alone', 2) * 1000:8.0f}")
    print(f"{'Atende (SQL + actions)':24s} {med('ours', 0):8.1f} {med('ours', 1) * 1000:8.0f} {med('ours', 2) * 1000:8.0f}")
    print("CPU per message: " + ", ".join(f"{k} {v / sent[k.split(':')[0]] * 1000:.1f} ms" for k, v in cpu.items()))
    print(f"throughput ratio: {rate_ratio:.2f} (goal >= 0.80)  {'OK' if rate_ratio >= 0.8 else 'BELOW GOAL'}")
    print(f"p95 ratio at {args.concurrency} concurrent: {p95_ratio:.2f} (goal <= 1.30)  "
          f"{'OK' if p95_ratio <= 1.3 else 'ABOVE GOAL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
