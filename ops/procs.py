"""Start and stop the long-running processes (Rasa, action server, console, demo site).

Shared by `make run`, the production-like runner and the integration tests, so each process is
started the same way everywhere.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .paths import APP_PYTHON, APP_VENV, BOT_PYTHON, CREDENTIALS, ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    cmd: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    popen: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = None

    def start(self) -> "Proc":
        env = dict(os.environ)
        env.update(self.env)
        env.setdefault("PYTHONPATH", str(ROOT))
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("RASA_TELEMETRY_ENABLED", "false")
        env.setdefault("PYTHONUNBUFFERED", "1")  # logs reach var/logs as they are written
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log, "ab")
        self.popen = subprocess.Popen(self.cmd, cwd=ROOT, env=env, start_new_session=True,
                                      stdout=self._log_file, stderr=subprocess.STDOUT if self._log_file else None)
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode if self.popen else '?'}"
                                   + (f"; see {self.log}" if self.log else ""))
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as resp:
                    if resp.status < 500:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s ({self.health_url})")

    def stop(self, grace: float = 10.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kill9(self) -> None:
        """Kill the process group at once (crash tests)."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def action_server(port: int, *, host: str = "127.0.0.1", env: dict[str, str] | None = None,
                  log: Path | None = None) -> Proc:
    """The rasa-sdk action server. rasa-sdk has no `--host`: it binds to $SANIC_HOST (its default
    is 0.0.0.0), so the host goes there."""
    return Proc("action server", [str(APP_PYTHON), "-m", "rasa_sdk", "--actions", "actions", "-p", str(port)],
                f"http://127.0.0.1:{port}/health", {**(env or {}), "SANIC_HOST": host}, log)


def rasa_server(port: int, model: Path, endpoints: Path, *, credentials: Path = CREDENTIALS,
                env: dict[str, str] | None = None, log: Path | None = None,
                extra: list[str] | None = None) -> Proc:
    """`rasa run` with its HTTP API, through ops/rasa_launch.py: the API's JWT secret
    (RASA_JWT_SECRET, from `env` or the environment) reaches Rasa without being on a command line.

    No `--cors`: the website channel's socket.io answers CORS itself, per allowed origin, and the
    widget script is loaded by a `<script>` tag (no CORS); Rasa's own CORS with `*` would let any
    site call the HTTP API from a visitor's browser."""
    cmd = [str(BOT_PYTHON), "-m", "ops.rasa_launch", "run", "--model", str(model), "--endpoints", str(endpoints),
           "--credentials", str(credentials), "--port", str(port), "--enable-api"]
    cmd += extra or []
    return Proc("rasa server", cmd, f"http://127.0.0.1:{port}/", env or {}, log)


def whatsapp_gateway(port: int, wake_urls: list[str], *, host: str = "127.0.0.1",
                     env: dict[str, str] | None = None, log: Path | None = None) -> Proc:
    """The WhatsApp webhook gateway (connectors/whatsapp/gateway.py): acknowledges Meta's deliveries off
    Rasa's event loop and wakes the Rasa servers' WhatsApp workers."""
    return Proc("whatsapp gateway", [str(BOT_PYTHON), "-m", "connectors.whatsapp.gateway", "--host", host,
                                     "--port", str(port), "--wake", ",".join(wake_urls)],
                f"http://127.0.0.1:{port}/health", env or {}, log)


def console(port: int, *, host: str = "127.0.0.1", env: dict[str, str] | None = None,
            log: Path | None = None) -> Proc:
    return Proc("console", [str(APP_VENV / "bin" / "streamlit"), "run", "console/app.py",
                            "--server.address", host, "--server.port", str(port), "--server.headless", "true",
                            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"],
                f"http://127.0.0.1:{port}/_stcore/health", env or {}, log)


def worker(port: int, *, env: dict[str, str] | None = None, log: Path | None = None) -> Proc:
    """The help-desk worker (helpdesk/worker.py): SLA clocks, notifications, retention purge.
    Its health endpoint listens on loopback only."""
    return Proc("worker", [str(APP_PYTHON), "-m", "helpdesk", "worker", "--host", "127.0.0.1", "--port", str(port)],
                f"http://127.0.0.1:{port}/health", env or {}, log)


def demo_site(port: int, rasa_url: str, *, env: dict[str, str] | None = None, log: Path | None = None) -> Proc:
    return Proc("demo site", [str(APP_PYTHON), "-m", "demo_site", "--port", str(port), "--rasa-url", rasa_url],
                f"http://127.0.0.1:{port}/", env or {}, log)
