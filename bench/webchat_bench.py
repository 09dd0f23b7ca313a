"""Website chat benchmark: socket.io (website connector) vs Rasa's REST channel, same server.

    .venv/bin/python bench/webchat_bench.py [--visitors 50] [--messages 6] [--model PATH]

Starts one Rasa server (bot env) with both channels and the connector's default limits, then
runs alternating rounds: N visitors connected at once over socket.io (websocket transport,
spread over a few client processes),
each sending messages on a rule path and waiting for the reply (one message every ~1.2 s, as a
person types, which stays under the per-session rate limit); then N REST senders doing the same.
With --mode together both channels' visitors run at the same moment (50 + 50), so load from
other programs on a shared machine hits both alike. Prints p50/p95/max latency message → first bot reply per channel and their p95 ratio, and the
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


CLIENT_CPU_KEY = -1.0  # marker: the value after it is the worker's own CPU seconds


def run_worker(channel: str, url: str, visitors: int, messages: int, start_at: float) -> List[float]:
    worker = socket_worker if channel == "socket" else rest_worker
    started = time.process_time()
    latencies = asyncio.run(worker(url, visitors, messages, start_at))
    return latencies + [CLIENT_CPU_KEY, time.process_time() - started]


def submit_round(pool: ProcessPoolExecutor, processes: int, channel: str, url: str,
                 visitors: int, messages: int, start_at: float) -> list:
    """``visitors`` spread over ``processes`` client processes (real visitors are many machines)."""
    shares = [visitors // processes + (1 if i < visitors % processes else 0) for i in range(processes)]
    return [pool.submit(run_worker, channel, url, n, messages, start_at) for n in shares if n]


CLIENT_CPU: dict = {"socket": 0.0, "rest": 0.0}


def collect(futures: list, channel: str) -> List[float]:
    values: List[float] = []
    for future in futures:
        result = future.result()
        values += result[:-2]
        CLIENT_CPU[channel] += result[-1]
    return values


def run_round(pool: ProcessPoolExecutor, processes: int, channel: str, url: str,
              visitors: int, messages: int) -> List[float]:
    start_at = time.time() + 3.0
    return collect(submit_round(pool, processes, channel, url, visitors, messages, start_at), channel)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    with ProcessPoolExecutor(max_workers=2 * args.processes) as pool, \
            RasaServer(model, website={"allowed_origins": []}) as rasa:
        print(f"Rasa {rasa.url}, model {model.name}, {args.visitors} visitors x "
              f"{args.messages} messages per round over {args.processes} client processes, "
              f"{args.rounds} rounds per channel, mode {args.mode}")
        run_round(pool, args.processes, "rest", rasa.url, 5, 2)  # warm-up
        run_round(pool, args.processes, "socket", rasa.url, 5, 2)
        CLIENT_CPU.update(socket=0.0, rest=0.0)
        sock: List[float] = []
        rest: List[float] = []
        cpu = {"socket": 0.0, "rest": 0.0}
        for _ in range(args.rounds):
            if args.mode == "together":
                # both channels at the same moment: load from other programs hits both alike
                start_at = time.time() + 3.0
                s_f = submit_round(pool, args.processes, "socket", rasa.url, args.visitors,
                                   args.messages, start_at)
                r_f = submit_round(pool, args.processes, "rest", rasa.url, args.visitors,
                                   args.messages, start_at)
                sock += collect(s_f, "socket")
                rest += collect(r_f, "rest")
                continue
            before = cpu_seconds(rasa.proc.pid)
            sock += run_round(pool, args.processes, "socket", rasa.url, args.visitors, args.messages)
            middle = cpu_seconds(rasa.proc.pid)
            rest += run_round(pool, args.processes, "rest", rasa.url, args.visitors, args.messages)
            cpu["socket"] += middle - before
            cpu["rest"] += cpu_seconds(rasa.proc.pid) - middle
        print(describe("socket.io", sock))
        print(describe("REST", rest))
        ratio = percentile(sock, 95) / percentile(rest, 95)
        print(f"p95 ratio socket.io / REST = {ratio:.2f} (goal <= 1.20)")
        if args.mode == "alternate":
            # CPU the Rasa server spent per message (connects, pings included): independent of
            # what else runs on the machine, unlike latency.
            print("Rasa server CPU per message: socket.io %.1f ms, REST %.1f ms"
                  % (1000 * cpu["socket"] / len(sock), 1000 * cpu["rest"] / len(rest)))
        print("benchmark client CPU per message: socket.io %.1f ms, REST %.1f ms"
              % (1000 * CLIENT_CPU["socket"] / len(sock), 1000 * CLIENT_CPU["rest"] / len(rest)))
        print("load average (1, 5, 15 min): %.1f %.1f %.1f on %d CPUs"
              % (*os.getloadavg(), os.cpu_count() or 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=50)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=["alternate", "together"], default="alternate",
                        help="alternate: socket.io round then REST round; together: both at once")
    parser.add_argument("--processes", type=int, default=5, help="client processes per round")
    parser.add_argument("--model", help="trained Rasa model (default: the connector fixture model)")
    args = parser.parse_args()
    widget_sizes()
    run_bench(args)


if __name__ == "__main__":
    main()
