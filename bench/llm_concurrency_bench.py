"""LLM calls never block other conversations (issue 14, item 4): N visitors ask a documentation
question at the same moment, through the real Rasa server (REST channel) and action server, with a
loopback OpenAI-compatible server that answers after D seconds; the same batch is run with an
instant LLM as the reference, in the same run, alternating rounds.

    .venv/bin/python bench/llm_concurrency_bench.py [--visitors 20] [--delay 2] [--rounds 3]

Prints the wall time of each batch (from the first question sent to the last answer received), the
median extra time of the slow-LLM batches over the instant ones, and the goal: extra <= 1.5 x D
(a blocking LLM call would make it about N x D). Every answer is checked to be an LLM answer (the
loopback server saw one request per visitor and round), so a fallback cannot pass for speed.
Needs the trained model (`make train`); ingests the demo documentation into a temporary index.
"""
from __future__ import annotations

import argparse
import json
import os
import re
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from loopback.openai_api import FakeOpenAI  # noqa: E402
from ops import endpoints, procs  # noqa: E402
from ops.paths import APP_PYTHON, CREDENTIALS  # noqa: E402
from ops.train import train_if_changed  # noqa: E402

QUESTIONS = ROOT / "knowledge" / "eval" / "demo_questions.jsonl"


def faithful_reply(body: dict) -> str:
    """The first sentence of the first passage, cited: an answer the faithfulness check keeps."""
    user = body["messages"][1]["content"]
    block = user.split("<trechos>\n", 1)[1].split("\n</trechos>", 1)[0]
    first = json.loads(block.splitlines()[0])
    sentences = [x.strip().rstrip(".") for x in re.split(r"(?<=[.!?])\s+|\n+", str(first["texto"])) if x.strip()]
    return f"{max(sentences, key=len)} [1]."


def batch(url: str, questions: list[str]) -> tuple[float, list[float], list[str]]:
    """All visitors ask at once; returns wall time, per-visitor latency and their first replies."""
    latencies = [0.0] * len(questions)
    replies = [""] * len(questions)
    gate = threading.Barrier(len(questions))

    def ask(i: int) -> None:
        sender = f"bench-{uuid.uuid4().hex[:10]}"
        gate.wait()
        start = time.perf_counter()
        resp = requests.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": questions[i]},
                             timeout=120)
        latencies[i] = time.perf_counter() - start
        body = resp.json() if resp.status_code == 200 else []
        replies[i] = "\n".join(str(m.get("text") or m.get("custom") or "") for m in body) or f"HTTP {resp.status_code}"

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, replies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the slow LLM takes per answer")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pool = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines()
            if line.strip()]

    work = Path(tempfile.mkdtemp(prefix="llm-concurrency-"))
    llm = FakeOpenAI().start()
    llm.reply_fn = faithful_reply
    secret = secrets.token_urlsafe(32)
    env = {"DATABASE_URL": f"sqlite:///{work / 'atende.db'}", "KNOWLEDGE_INDEX_DIR": str(work / "index"),
           "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": llm.url, "OPENAI_MODEL": "bench",
           "KNOWLEDGE_ANSWER_CACHE_SIZE": "0",  # every visitor's question reaches the LLM
           "KNOWLEDGE_LLM_CALLS_PER_HOUR": "0", "RASA_JWT_SECRET": secret,
           "ATENDE_ATTESTATION_SECRET": secrets.token_urlsafe(32), "ATENDE_PRIVACY_NOTICE_ENABLED": "0"}
    run_env = dict(os.environ, **env, PYTHONPATH=str(ROOT))
    print("Preparing the database, the demo index and the model...", flush=True)
    subprocess.run([str(APP_PYTHON), "-m", "helpdesk", "migrate"], cwd=ROOT, env=run_env, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([str(APP_PYTHON), "-m", "knowledge", "ingest", "--quiet"], cwd=ROOT, env=run_env, check=True,
                   stdout=subprocess.DEVNULL)
    model = train_if_changed(quiet=True)
    action_port, rasa_port = procs.free_port(), procs.free_port()
    endpoints_file = endpoints.write(work / "endpoints.yml", database_url=env["DATABASE_URL"],
                                     action_url=f"http://127.0.0.1:{action_port}/webhook", redis_url="")
    actions = procs.action_server(action_port, env=env, log=work / "actions.log")
    rasa = procs.rasa_server(rasa_port, model, endpoints_file, credentials=CREDENTIALS, env=env,
                             log=work / "rasa.log")
    started = [actions.start(), rasa.start()]
    results: dict[str, list[float]] = {"instant": [], "slow": []}
    try:
        for proc in started:
            proc.wait_ready(400)
        url = f"http://127.0.0.1:{rasa_port}"
        # Warm-up with the instant LLM, which also picks the questions: those the assistant answers
        # from the docs (the NLU sends some of the set elsewhere, e.g. to the product advisor).
        questions = []
        for i in range(0, len(pool), args.visitors):
            chunk = pool[i:i + args.visitors]
            _, _, replies = batch(url, chunk)
            questions += [q for q, text in zip(chunk, replies) if "Fontes:" in text]
            if len(questions) >= args.visitors:
                break
        print(f"{len(questions)} of the first {min(len(pool), i + args.visitors)} questions are answered from "
              f"the docs; the batches use {args.visitors} of them", flush=True)
        questions = questions[: args.visitors]
        if len(questions) < args.visitors:
            raise SystemExit(f"only {len(questions)} questions of {QUESTIONS} are answered from the docs")
        for r in range(args.rounds):
            for name, delay in (("instant", 0.0), ("slow", args.delay)):
                llm.default_delay_s = delay
                before = len(llm.chat_requests())
                wall, lat, replies = batch(url, questions)
                calls = len(llm.chat_requests()) - before
                answered = sum("Fontes:" in text for text in replies)
                results[name].append(wall)
                print(f"round {r + 1} {name:7s}: wall {wall:6.2f} s  p50 {statistics.median(lat):5.2f} s  "
                      f"max {max(lat):5.2f} s  LLM requests {calls}/{len(questions)}  answered with sources "
                      f"{answered}/{len(questions)}  most in flight {llm.max_concurrent}", flush=True)
                if calls != len(questions):
                    print(f"  WARNING: {len(questions) - calls} questions did not reach the LLM "
                          f"(not asked as questions, or answered without it); see {work}", flush=True)
    finally:
        for proc in reversed(started):
            proc.stop()
        llm.stop()
    extra = statistics.median(results["slow"]) - statistics.median(results["instant"])
    goal = 1.5 * args.delay
    print()
    print(f"instant LLM: median wall {statistics.median(results['instant']):.2f} s; "
          f"{args.delay:.1f} s LLM: median wall {statistics.median(results['slow']):.2f} s")
    print(f"extra time for {args.visitors} visitors: {extra:.2f} s (goal <= {goal:.1f} s = 1.5 x D; "
          f"blocking would be about {args.visitors * args.delay:.0f} s)  {'OK' if extra <= goal else 'ABOVE GOAL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
