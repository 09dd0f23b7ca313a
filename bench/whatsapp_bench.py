"""WhatsApp channel benchmark: a real `rasa run` (tiny fixture model) and the WhatsApp gateway
(`python -m connectors.whatsapp.gateway`) against the fake Graph API.

    flock /work/bench.lock .venv-bot/bin/python bench/whatsapp_bench.py \
        [--rate 200 --seconds 10 --e2e 200 --deliveries 10000 --crash-rate 25 --skip ack,e2e,crash]

Prints:
1. webhook acknowledgement latency (p50/p95/p99) at a fixed open-loop rate while Rasa processes the
   same messages (goal: p99 <= 50 ms): through the gateway (the production path), and, as the
   reference measured in the same run, on Rasa's own webhook (the in-process channel);
2. end to end, signed webhook -> gateway -> Rasa rule -> Graph API send, p50/p95;
3. N deliveries through the gateway (paced at --crash-rate per second) with 20% duplicates and one
   kill -9 of Rasa in the middle (restarted on the same port); the fake Graph API echoes a signed "sent" status for every send,
   concurrently, as Meta does: lost and duplicate replies.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "connectors"))
sys.path.insert(0, str(REPO / "tests" / "support"))

from fake_graph import FakeGraph  # noqa: E402
from whatsapp_rasa import Gateway, RasaServer, free_port, text_notification, tiny_model  # noqa: E402

from connectors.whatsapp.signature import sign  # noqa: E402


def pct(values: List[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class Poster:
    """Keep-alive HTTP connection per thread (as Meta's webhook delivery does)."""

    def __init__(self, srv: "RasaServer | Gateway") -> None:
        self.srv = srv
        self.local = threading.local()

    def post(self, body: bytes, timeout: float = 10.0) -> Tuple[int, float]:
        conn: Optional[http.client.HTTPConnection] = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=timeout)
            self.local.conn = conn
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, self.srv.app_secret)}
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/webhooks/whatsapp/webhook", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status, time.perf_counter() - t0
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            return 0, time.perf_counter() - t0


def warm_up(srv: "RasaServer | Gateway", db: Path) -> None:
    """A few turns first, so that one-time work (lazy imports, first tracker) is not measured."""
    poster = Poster(srv)
    for i in range(20):
        poster.post(json.dumps(text_notification(f"5599{i:09d}", f"wamid.warm{i}.{time.time_ns()}", "oi")).encode())
    wait_drained(db, 120)


def bench_ack(srv: "RasaServer | Gateway", rate: float, seconds: float, label: str, tag: str) -> None:
    warm_up(srv, srv.db_path)
    if isinstance(srv, Gateway):
        srv.get("/stats?reset=1")
    poster = Poster(srv)
    n = int(rate * seconds)
    lat: List[float] = []
    lag: List[float] = []
    errors = Counter()
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    idx = iter(range(n))
    idx_lock = threading.Lock()

    def worker() -> None:
        while True:
            with idx_lock:
                i = next(idx, None)
            if i is None:
                return
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body = json.dumps(text_notification(f"5521{i % 400:09d}", f"wamid.ack{tag}{i}.{time.time_ns()}",
                                                "sim")).encode()
            late = time.perf_counter() - due
            status, took = poster.post(body)
            with lock:
                lat.append(took)
                lag.append(late)
                if status != 200:
                    errors[status] += 1

    threads = [threading.Thread(target=worker) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = [x * 1000 for x in lat]
    print(f"[ack {label}] {n} signed deliveries at {rate:.0f} req/s target ({n / wall:.0f} req/s achieved): "
          f"p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms, p99 {pct(ms, 99):.1f} ms, max {max(ms):.1f} ms; "
          f"non-200: {dict(errors) or 0}; client lateness p99 {pct([x * 1000 for x in lag], 99):.1f} ms")
    if isinstance(srv, Gateway):
        st = srv.get("/stats")[1]
        print(f"    gateway server side: handler {st['handler_ms']}, commit of a batch {st['commit_ms']} "
              f"({st['batches']} batches, {st['lock_retries']} SQLite lock retries)")


def wait_drained(db: Path, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with sqlite3.connect(db, timeout=30) as c:
                pending = c.execute("select count(*) from whatsapp_inbox where state='pending'").fetchone()[0]
                unsent = c.execute("select count(*) from whatsapp_outbox where send_state not in "
                                   "('accepted','rejected')").fetchone()[0]
            if pending == 0 and unsent == 0:
                return True
        except sqlite3.OperationalError:
            pass
        time.sleep(0.5)
    return False


def bench_e2e(srv: "RasaServer | Gateway", graph: FakeGraph, n: int, db: Path) -> None:
    wait_drained(db, 600)
    poster = Poster(srv)
    lat: List[float] = []
    for i in range(n):
        to = f"5531{i:09d}"
        body = json.dumps(text_notification(to, f"wamid.e2e{i}", "sim")).encode()
        t0 = time.time()
        poster.post(body)
        deadline = time.time() + 30
        got = None
        while time.time() < deadline and got is None:
            with graph.lock:
                for r in reversed(graph.requests):
                    if isinstance(r.body, dict) and r.body.get("to") == to and r.status == 200:
                        got = r.at
                        break
            if got is None:
                time.sleep(0.002)
        if got is not None:
            lat.append((got - t0) * 1000)
        time.sleep(0.02)
    print(f"[e2e] {n} messages, webhook -> gateway -> Rasa rule -> Graph send: p50 {pct(lat, 50):.1f} ms, "
          f"p95 {pct(lat, 95):.1f} ms, p99 {pct(lat, 99):.1f} ms ({n - len(lat)} timed out)")


def _done(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as c:
            return int(c.execute("select count(*) from whatsapp_inbox where state='done' and kind='message'")
                       .fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def bench_crash(graph: FakeGraph, model: Path, deliveries: int, workdir: Path, rate: float) -> None:
    """Meta-like sender: deliveries arrive at ``rate`` per second (0: as fast as possible), each
    goes to the gateway and is retried until it gets a 200; the fake Graph API echoes a signed
    "sent" status for each send (concurrently, as Meta does) to the gateway. One kill -9 of Rasa
    when half of the messages were handled (in the middle of processing), then a restart on the
    same port; the gateway stays up and keeps acknowledging."""
    db = workdir / "crash.db"
    graph.reset()
    unique = int(deliveries * 0.8)
    ids = [f"wamid.c{i}" for i in range(unique)]
    senders = {mid: f"5541{i % 500:09d}" for i, mid in enumerate(ids)}
    plan = ids + random.Random(7).choices(ids, k=deliveries - unique)
    random.Random(8).shuffle(plan)
    port = free_port()
    rasa = RasaServer(workdir / "crash", graph.base_url, db, port=port)
    gw = Gateway(workdir / "crash-gw", db, [f"{rasa.url}/webhooks/whatsapp/wake"]).start()
    rasa.start(model)
    graph.echo_statuses(gw.webhook, gw.app_secret)
    cursor = iter(enumerate(plan))
    lock = threading.Lock()
    attempts = Counter()
    poster = Poster(gw)
    start = time.perf_counter()

    def run() -> None:
        while True:
            with lock:
                i, mid = next(cursor, (0, None))
            if mid is None:
                return
            if rate > 0:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            body = json.dumps(text_notification(senders[mid], mid, "sim")).encode()
            while True:  # Meta retries until it gets a 200
                status, _ = poster.post(body, timeout=30)
                with lock:
                    attempts[status] += 1
                if status == 200:
                    break
                time.sleep(0.5)

    t0 = time.time()
    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    while _done(db) < unique // 2:
        time.sleep(0.2)
    done_at_kill = _done(db)
    rasa.kill9()
    killed_at = time.time()
    acked_while_down = sum(attempts.values())
    rasa = RasaServer(workdir / "crash2", graph.base_url, db, port=port).start(model)
    acked_while_down = sum(attempts.values()) - acked_while_down
    down_s = time.time() - killed_at
    for t in threads:
        t.join()
    drained = wait_drained(db, 1800)
    deadline = time.time() + 120
    while graph.echo_backlog() and time.time() < deadline:
        time.sleep(0.5)
    drained = wait_drained(db, 600) and drained
    took = time.time() - t0
    time.sleep(3)
    with sqlite3.connect(db) as c:
        by_outbox = dict(c.execute("select id, source_key from whatsapp_outbox").fetchall())
        handled = {r[0] for r in c.execute("select item_id from whatsapp_inbox where state='done'")}
        resent = c.execute("select count(*) from whatsapp_outbox where attempts > 1").fetchone()[0]
    sends = Counter()
    for r in graph.sent():
        cb = r.body.get("biz_opaque_callback_data", "")
        sends[by_outbox.get(int(cb.split(":")[1]), "?")] += 1
    lost = [m for m in ids if sends[m] == 0]
    dup = [m for m in ids if sends[m] > 1]
    rasa.stop()
    gw.stop()
    print(f"[crash] {deliveries} deliveries through the gateway ({unique} unique, {deliveries - unique} duplicates), "
          f"kill -9 of Rasa with {done_at_kill} messages handled, Rasa down {down_s:.0f}s while the gateway "
          f"acknowledged {acked_while_down} deliveries; HTTP answers {dict(attempts)}; handled "
          f"{len([m for m in ids if m in handled])}/{unique}; outbox rows attempted more than once: {resent}; drained={drained} in {took:.0f}s: lost {len(lost)}, "
          f"duplicate replies {len(dup)}, sends {sum(sends.values())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--e2e", type=int, default=200)
    ap.add_argument("--deliveries", type=int, default=10000)
    ap.add_argument("--crash-rate", type=float, default=25, help="deliveries per second in the crash run (0: no pacing)")
    ap.add_argument("--skip", default="", help="comma list of ack,e2e,crash to skip")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    model = tiny_model()
    workdir = Path(tempfile.mkdtemp(prefix="wa-bench-"))
    with FakeGraph() as graph:
        if not {"ack", "e2e"} <= skip:
            db = workdir / "atende.db"
            srv = RasaServer(workdir / "main", graph.base_url, db)
            gw = Gateway(workdir / "gw", db, [f"{srv.url}/webhooks/whatsapp/wake"]).start()
            srv.start(model)
            try:
                if "ack" not in skip:
                    bench_ack(gw, args.rate, args.seconds, "gateway", "g")
                    wait_drained(db, 600)
                    bench_ack(srv, args.rate, args.seconds, "in-process reference: Rasa's own webhook", "r")
                if "e2e" not in skip:
                    bench_e2e(gw, graph, args.e2e, db)
            finally:
                gw.stop()
                srv.stop()
        if "crash" not in skip:
            bench_crash(graph, model, args.deliveries, workdir, args.crash_rate)


if __name__ == "__main__":
    main()
