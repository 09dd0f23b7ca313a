"""Website chat benchmark: socket.io (website connector) vs Rasa's REST channel, same server.

    .venv/bin/python bench/webchat_bench.py [--visitors 50] [--messages 6] [--model PATH]

Starts one Rasa server (bot env) with both channels and the connector's default limits, then
runs alternating rounds: N visitors connected at once over socket.io (websocket transport,
spread over a few client processes),
each sending messages on a rule path and waiting for the reply (one message every ~1.2 s, as a
person types, which stays under the per-session rate limit); then N REST senders doing the same.
Prints p50/p95/max latency message → first bot reply per channel and their p95 ratio, and the
widget script's size (with and without socket.io-client), gzipped.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import random
import statistics
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import List

import aiohttp
import socketio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "connectors"))
sys.path.insert(0, str(REPO / "tests" / "browser"))

from website_support import RasaServer, fixture_model  # noqa: E402

RULE_MESSAGES = ["quanto custa", "oi", "qual o preço", "bom dia", "tabela de preços"]
PACE_SECONDS = 1.2


def percentile(values: List[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


async def socket_visitor(url: str, messages: int, start: asyncio.Event, out: List[float]) -> None:
    client = socketio.AsyncClient(reconnection=False)
    replies: asyncio.Queue = asyncio.Queue()
    confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
    client.on("bot_uttered", lambda data: replies.put_nowait(time.perf_counter()))
    client.on("session_confirm", lambda sid: confirmed.done() or confirmed.set_result(sid))
    await client.connect(url, transports=["websocket"])
    await client.emit("session_request", {"session_id": None})
    session_id = await asyncio.wait_for(confirmed, 30)
    await start.wait()
    await asyncio.sleep(random.uniform(0, PACE_SECONDS))
    try:
        for i in range(messages):
            sent = time.perf_counter()
            await client.emit("user_uttered", {"message": random.choice(RULE_MESSAGES),
                                               "session_id": session_id,
                                               "client_id": f"b{i}"})
            received = await asyncio.wait_for(replies.get(), 60)
            out.append(received - sent)
            await asyncio.sleep(max(0.0, PACE_SECONDS - (received - sent)))
    finally:
        await client.disconnect()


async def rest_visitor(url: str, messages: int, session: aiohttp.ClientSession,
                       start: asyncio.Event, out: List[float]) -> None:
    sender = uuid.uuid4().hex
    await start.wait()
    await asyncio.sleep(random.uniform(0, PACE_SECONDS))
    for _ in range(messages):
        sent = time.perf_counter()
        async with session.post(f"{url}/webhooks/rest/webhook",
                                json={"sender": sender, "message": random.choice(RULE_MESSAGES)}) as resp:
            body = await resp.json()
        elapsed = time.perf_counter() - sent
        assert resp.status == 200 and body, body
        out.append(elapsed)
        await asyncio.sleep(max(0.0, PACE_SECONDS - elapsed))


async def socket_worker(url: str, visitors: int, messages: int, start_at: float) -> List[float]:
    out: List[float] = []
    start = asyncio.Event()
    tasks = [asyncio.create_task(socket_visitor(url, messages, start, out)) for _ in range(visitors)]
    await asyncio.sleep(max(0.0, start_at - time.time()))  # everyone connected before anyone speaks
    start.set()
    await asyncio.gather(*tasks)
    return out


async def rest_worker(url: str, visitors: int, messages: int, start_at: float) -> List[float]:
    out: List[float] = []
    start = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=visitors)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(rest_visitor(url, messages, session, start, out))
                 for _ in range(visitors)]
        await asyncio.sleep(max(0.0, start_at - time.time()))
        start.set()
        await asyncio.gather(*tasks)
    return out


def run_worker(channel: str, url: str, visitors: int, messages: int, start_at: float) -> List[float]:
    worker = socket_worker if channel == "socket" else rest_worker
    return asyncio.run(worker(url, visitors, messages, start_at))


def run_round(pool: ProcessPoolExecutor, processes: int, channel: str, url: str,
              visitors: int, messages: int) -> List[float]:
    """``visitors`` spread over ``processes`` client processes (real visitors are many machines)."""
    start_at = time.time() + 3.0
    shares = [visitors // processes + (1 if i < visitors % processes else 0) for i in range(processes)]
    futures = [pool.submit(run_worker, channel, url, n, messages, start_at) for n in shares if n]
    return [value for future in futures for value in future.result()]


def describe(name: str, values: List[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"{name:<10} n={len(ms):4d}  p50={statistics.median(ms):7.1f} ms  "
            f"p95={percentile(ms, 95):7.1f} ms  max={max(ms):7.1f} ms")


def widget_sizes() -> None:
    from widget_harness import ensure_widget_built

    bundle = ensure_widget_built()
    for path in (bundle, bundle.with_name("widget.core.js")):
        data = path.read_bytes()
        label = "widget.js (with socket.io-client)" if path == bundle else "widget without socket.io-client"
        print(f"{label:<36} {len(data) / 1024:6.1f} KB raw  "
              f"{len(gzip.compress(data, 9)) / 1024:6.1f} KB gzipped")


def run_bench(args: argparse.Namespace) -> None:
    model = Path(args.model) if args.model else fixture_model()
    with ProcessPoolExecutor(max_workers=args.processes) as pool, \
            RasaServer(model, website={"allowed_origins": []}) as rasa:
        print(f"Rasa {rasa.url}, model {model.name}, {args.visitors} visitors x "
              f"{args.messages} messages per round over {args.processes} client processes, "
              f"{args.rounds} rounds per channel")
        run_round(pool, args.processes, "rest", rasa.url, 5, 2)  # warm-up
        run_round(pool, args.processes, "socket", rasa.url, 5, 2)
        sock: List[float] = []
        rest: List[float] = []
        for _ in range(args.rounds):
            sock += run_round(pool, args.processes, "socket", rasa.url, args.visitors, args.messages)
            rest += run_round(pool, args.processes, "rest", rasa.url, args.visitors, args.messages)
        print(describe("socket.io", sock))
        print(describe("REST", rest))
        ratio = percentile(sock, 95) / percentile(rest, 95)
        print(f"p95 ratio socket.io / REST = {ratio:.2f} (goal <= 1.20)")
        print("load average (1, 5, 15 min): %.1f %.1f %.1f on %d CPUs"
              % (*os.getloadavg(), os.cpu_count() or 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=50)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=5, help="client processes per round")
    parser.add_argument("--model", help="trained Rasa model (default: the connector fixture model)")
    args = parser.parse_args()
    widget_sizes()
    run_bench(args)


if __name__ == "__main__":
    main()
