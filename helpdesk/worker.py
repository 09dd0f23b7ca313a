"""The help-desk worker: `python -m helpdesk worker`, the periodic jobs that must run without a
console open (SLA clocks and escalation, notifications, LGPD retention).

One process runs every registered job on its own interval, each run in its own database session and
transaction. A job that raises is logged and retried with exponential backoff (capped at its
interval × 8); it never stops the others or the process. Jobs must be safe to run concurrently in
two workers (they claim rows with conditional UPDATEs or unique keys), so a second worker during a
deploy does no harm.

A small HTTP server on loopback answers `GET /health` with each job's last run, so `make run`,
`make run-prod` and compose can wait for it and see it alive.

Jobs are registered in `registered_jobs()`; each feature module exposes one function
`run(session) -> dict | None` whose result (counts) is logged and shown on /health.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

from .envparse import positive_number

logger = logging.getLogger("atende.worker")

JobFn = Callable[[Any], Optional[dict]]


@dataclass
class Job:
    name: str
    interval_s: float
    fn: JobFn
    next_at: float = 0.0
    failures: int = 0
    last_ok_at: float | None = None
    last_error: str | None = None
    last_result: dict | None = None
    runs: int = 0

    def delay_after_failure(self) -> float:
        return min(self.interval_s * 8, max(1.0, self.interval_s) * (2 ** min(self.failures, 10)))


@dataclass
class WorkerSettings:
    sla_interval_s: float = 60.0
    notify_interval_s: float = 10.0
    purge_interval_s: float = 24 * 3600.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "WorkerSettings":
        env = os.environ if env is None else env

        def num(key: str, default: float) -> float:
            return positive_number(env, key, default)

        return cls(sla_interval_s=num("ATENDE_WORKER_SLA_INTERVAL_S", cls.sla_interval_s),
                   notify_interval_s=num("ATENDE_WORKER_NOTIFY_INTERVAL_S", cls.notify_interval_s),
                   purge_interval_s=num("ATENDE_WORKER_PURGE_INTERVAL_S", cls.purge_interval_s))


# (job name, "module:function", WorkerSettings attribute holding its interval). A module that is
# not there yet is skipped with a warning, so the worker runs whatever this checkout ships.
JOB_TABLE: list[tuple[str, str, str]] = [
    ("sla.tick", "helpdesk.services.sla:tick", "sla_interval_s"),
    ("privacy.purge", "helpdesk.retention:run", "purge_interval_s"),
    ("notifications.dispatch", "helpdesk.services.notifications:run", "notify_interval_s"),
]


def _resolve(target: str) -> JobFn:
    module_name, func_name = target.split(":", 1)
    return getattr(importlib.import_module(module_name), func_name)


def registered_jobs(settings: WorkerSettings) -> list[Job]:
    jobs = []
    for name, target, interval_attr in JOB_TABLE:
        try:
            fn = _resolve(target)
        except (ImportError, AttributeError) as err:
            logger.warning("worker: job %s unavailable (%s)", name, err)
            continue
        jobs.append(Job(name, float(getattr(settings, interval_attr)), fn))
    return jobs


@dataclass
class Worker:
    jobs: list[Job]
    session_factory: Callable[[], Any] | None = None
    clock: Callable[[], float] = time.monotonic
    stop_event: threading.Event = field(default_factory=threading.Event)

    def _session_scope(self):
        if self.session_factory is not None:
            return self.session_factory()
        from .db import session_scope

        return session_scope()

    def run_job(self, job: Job) -> None:
        now = self.clock()
        job.runs += 1
        try:
            with self._session_scope() as session:
                result = job.fn(session)
        except Exception as err:  # a job's failure must never stop the worker
            job.failures += 1
            job.last_error = f"{type(err).__name__}: {err}"[:500]
            job.next_at = now + job.delay_after_failure()
            logger.exception("worker: job %s failed (%d in a row); next try in %.0fs",
                             job.name, job.failures, job.next_at - now)
            return
        job.failures = 0
        job.last_error = None
        job.last_ok_at = time.time()
        job.last_result = result if isinstance(result, dict) else None
        job.next_at = now + job.interval_s
        if job.last_result:
            logger.info("worker: job %s: %s", job.name, json.dumps(job.last_result, default=str))

    def tick(self) -> int:
        """Run every job that is due; returns how many ran."""
        ran = 0
        for job in self.jobs:
            if self.stop_event.is_set():
                break
            if self.clock() >= job.next_at:
                self.run_job(job)
                ran += 1
        return ran

    def run_forever(self, poll_s: float = 1.0) -> None:
        while not self.stop_event.is_set():
            self.tick()
            self.stop_event.wait(poll_s)

    def health(self) -> dict:
        return {"status": "ok", "jobs": [
            {"name": j.name, "interval_s": j.interval_s, "runs": j.runs, "failures": j.failures,
             "last_ok_at": j.last_ok_at, "last_error": j.last_error, "last_result": j.last_result}
            for j in self.jobs]}


def _health_server(worker: Worker, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.split("?", 1)[0] != "/health":
                self.send_error(404)
                return
            body = json.dumps(worker.health(), default=str).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="worker-health", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpdesk worker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5007, help="health endpoint (GET /health)")
    parser.add_argument("--once", action="store_true", help="run every job once and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .db import upgrade

    upgrade()
    worker = Worker(registered_jobs(WorkerSettings.from_env()))
    logger.info("worker: jobs %s", ", ".join(f"{j.name} every {j.interval_s:.0f}s" for j in worker.jobs) or "none")
    if args.once:
        worker.tick()
        failed = [j.name for j in worker.jobs if j.failures]
        return 1 if failed else 0
    server = _health_server(worker, args.host, args.port)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop_event.set())
    try:
        worker.run_forever()
    finally:
        server.shutdown()
    return 0
