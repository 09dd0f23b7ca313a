"""The help-desk worker: jobs on their intervals, a failing job backs off without stopping the
others, bad settings are refused, and the process answers /health with each job's state."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import text

from helpdesk import worker as worker_mod
from helpdesk.db import session_scope

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _scope(url: str):
    return lambda: session_scope(url)


def test_jobs_run_on_their_interval_in_their_own_transaction(db_url: str) -> None:
    clock = FakeClock()
    seen: list[int] = []

    def count_tickets(session) -> dict:
        n = session.execute(text("SELECT COUNT(*) FROM tickets")).scalar_one()
        seen.append(n)
        return {"tickets": n}

    w = worker_mod.Worker([worker_mod.Job("count", 60, count_tickets)], _scope(db_url), clock)
    assert w.tick() == 1
    assert w.tick() == 0            # not due yet
    clock.now += 59
    assert w.tick() == 0
    clock.now += 1
    assert w.tick() == 1
    assert seen == [seen[0], seen[0]]
    assert w.health()["jobs"][0]["last_result"] == {"tickets": seen[0]}


def test_a_failing_job_backs_off_and_never_stops_the_others(db_url: str) -> None:
    clock = FakeClock()
    calls = {"bad": 0, "good": 0}

    def bad(session) -> None:
        calls["bad"] += 1
        session.execute(text("INSERT INTO privacy_requests (no_such_column) VALUES (1)"))

    def good(session) -> dict:
        calls["good"] += 1
        return {"ok": 1}

    w = worker_mod.Worker([worker_mod.Job("bad", 10, bad), worker_mod.Job("good", 10, good)], _scope(db_url), clock)
    w.tick()
    assert calls == {"bad": 1, "good": 1}
    first_delay = w.jobs[0].next_at - clock.now
    clock.now += 10
    w.tick()
    assert calls == {"bad": 1, "good": 2}  # bad waits longer than its interval after a failure
    clock.now += first_delay
    w.tick()
    assert calls["bad"] == 2
    assert w.jobs[0].next_at - clock.now > first_delay  # exponential backoff
    assert w.jobs[0].delay_after_failure() <= 10 * 8     # capped
    health = w.health()["jobs"][0]
    assert health["failures"] == 2 and "no_such_column" in health["last_error"]


def test_settings_refuse_zero_negative_and_garbage() -> None:
    assert worker_mod.WorkerSettings.from_env({}).sla_interval_s == 60
    assert worker_mod.WorkerSettings.from_env({"ATENDE_WORKER_SLA_INTERVAL_S": "5"}).sla_interval_s == 5
    for bad in ("0", "-3", "soon"):
        with pytest.raises(ValueError, match="ATENDE_WORKER_SLA_INTERVAL_S"):
            worker_mod.WorkerSettings.from_env({"ATENDE_WORKER_SLA_INTERVAL_S": bad})


def test_every_registered_job_resolves() -> None:
    """A job listed in the table must point at a real function: a typo would silently drop it."""
    for name, target, interval_attr in worker_mod.JOB_TABLE:
        assert callable(worker_mod._resolve(target)), name
        assert hasattr(worker_mod.WorkerSettings, interval_attr), name


def test_the_worker_process_reports_its_jobs_and_stops_on_sigterm(sqlite_url: str) -> None:
    sock_port = _free_port()
    env = dict(os.environ, DATABASE_URL=sqlite_url, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "helpdesk", "worker", "--port", str(sock_port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{sock_port}/health", timeout=2) as resp:
                    body = json.loads(resp.read())
                    break
            except OSError:
                time.sleep(0.3)
        assert body is not None, proc.stdout.read().decode() if proc.poll() is not None else "no /health"
        assert body["status"] == "ok"
        assert [j["name"] for j in body["jobs"]] == [name for name, _t, _i in worker_mod.JOB_TABLE]
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{sock_port}/other", timeout=2)
        assert err.value.code == 404
    finally:
        proc.terminate()
        assert proc.wait(20) == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
