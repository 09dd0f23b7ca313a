"""Processes for website chat tests, browser tests and the webchat benchmark (stdlib only).

Usable from both environments:
- ``fixture_model()`` trains (once, cached by the hash of its files) the tiny pt-BR model in
  ``tests/connectors/fixtures/website_bot``;
- ``RasaServer(model, ...)`` runs ``rasa run`` (bot env) with the website connector and REST;
- ``ActionServer(...)`` runs ``rasa_sdk`` (app env) for full journeys;
- ``DemoSite(rasa_url, ...)`` runs ``python -m demo_site`` (app env).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ops.procs import free_port  # noqa: E402  (shared with make run)
from ops.train import train_if_changed  # noqa: E402

BOT_PYTHON = REPO / ".venv-bot" / "bin" / "python"
APP_PYTHON = REPO / ".venv" / "bin" / "python"
FIXTURE_DIR = REPO / "tests" / "connectors" / "fixtures" / "website_bot"
CACHE_DIR = Path(os.environ.get("ATENDE_TEST_CACHE", REPO / "var" / "test-cache"))
TEST_SECRET = "segredo-de-teste-do-site-0123456789abcdef"
# The key the connectors sign identity attestations with (atende_contract.attestation).
ATTESTATION_SECRET = "chave-de-atestacao-dos-testes-0123456789abcdef"


def fixture_model() -> Path:
    """Train the fixture model unless a model for the same data is cached; return its path."""
    return train_if_changed(FIXTURE_DIR / "config.yml", FIXTURE_DIR / "domain.yml", FIXTURE_DIR / "data",
                            out=CACHE_DIR, name="website-fixture", quiet=True)


def wait_http(url: str, timeout: float, proc: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


class _Process:
    """A child process with its log file; stops on exit."""

    proc: Optional[subprocess.Popen] = None
    log_path: Path

    def _spawn(self, argv: List[str], env: Dict[str, str], name: str) -> None:
        log_dir = Path(tempfile.mkdtemp(prefix=f"atende-{name}-"))
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv, cwd=str(REPO), env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RasaServer(_Process):
    """``rasa run`` with the website connector (and REST) on a free loopback port."""

    def __init__(
        self,
        model: Path,
        *,
        website: Optional[Dict[str, object]] = None,
        rest: bool = True,
        env: Optional[Dict[str, str]] = None,
        action_url: Optional[str] = None,
        endpoints: Optional[Path] = None,
    ) -> None:
        self.model = model
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.website = {"allowed_origins": []} if website is None else website
        self.rest = rest
        self.extra_env = env or {}
        self.action_url = action_url
        self.endpoints = endpoints

    def start(self) -> "RasaServer":
        workdir = Path(tempfile.mkdtemp(prefix="atende-rasa-"))
        credentials: Dict[str, object] = {"connectors.website.WebsiteInput": self.website}
        if self.rest:
            credentials["connectors.rest.DevRestInput"] = None
        cred_file = workdir / "credentials.yml"
        cred_file.write_text(json.dumps(credentials, indent=2))
        argv = [
            str(BOT_PYTHON), "-m", "rasa", "run",
            "--model", str(self.model),
            "--credentials", str(cred_file),
            "--interface", "127.0.0.1", "--port", str(self.port),
            "--enable-api",
        ]
        endpoints = self.endpoints
        if endpoints is None and self.action_url:
            endpoints = workdir / "endpoints.yml"
            endpoints.write_text(json.dumps({"action_endpoint": {"url": self.action_url}}))
        if endpoints is not None:
            argv += ["--endpoints", str(endpoints)]
        env = dict(os.environ)
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "WEBCHAT_JWT_SECRET": TEST_SECRET,
                "ATENDE_ATTESTATION_SECRET": ATTESTATION_SECRET,
                "TF_CPP_MIN_LOG_LEVEL": "3",
                "RASA_TELEMETRY_ENABLED": "false",
                "SANIC_REGISTER": "false",
            }
        )
        env.pop("WEBCHAT_ALLOWED_ORIGINS", None)
        env.update(self.extra_env)
        self._spawn(argv, env, "rasa")
        try:
            wait_http(f"{self.url}/status", timeout=240, proc=self.proc)
            self._wait_model()
        except Exception:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"Rasa did not start:\n{tail}")
        return self

    def _wait_model(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.url}/status", timeout=5) as resp:
                if json.loads(resp.read()).get("model_file"):
                    return
            time.sleep(0.3)
        raise TimeoutError("model not loaded")

    def tracker(self, sender_id: str) -> Dict[str, object]:
        with urllib.request.urlopen(f"{self.url}/conversations/{sender_id}/tracker", timeout=10) as r:
            return json.loads(r.read())

    def trigger_intent(self, sender_id: str, name: str, entities: Optional[dict] = None) -> dict:
        body = json.dumps({"name": name, "entities": entities or {}}).encode()
        req = urllib.request.Request(
            f"{self.url}/conversations/{sender_id}/trigger_intent?output_channel=latest",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())


class ActionServer(_Process):
    """``python -m rasa_sdk --actions actions`` (app env) on a free port."""

    def __init__(self, actions_module: str = "actions", env: Optional[Dict[str, str]] = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhook"
        self.actions_module = actions_module
        self.extra_env = env or {}

    def start(self) -> "ActionServer":
        env = dict(os.environ, PYTHONPATH=str(REPO), WEBCHAT_JWT_SECRET=TEST_SECRET)
        env.update(self.extra_env)
        argv = [str(APP_PYTHON), "-m", "rasa_sdk", "--actions", self.actions_module,
                "--port", str(self.port)]
        self._spawn(argv, env, "actions")
        try:
            wait_http(f"http://127.0.0.1:{self.port}/health", timeout=180, proc=self.proc)
        except Exception:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"action server did not start:\n{tail}")
        return self


class DemoSite(_Process):
    """``python -m demo_site`` (app env): the vendor's page with the widget."""

    def __init__(self, rasa_url: str, env: Optional[Dict[str, str]] = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rasa_url = rasa_url
        self.extra_env = env or {}

    def start(self) -> "DemoSite":
        env = dict(os.environ, PYTHONPATH=str(REPO), WEBCHAT_JWT_SECRET=TEST_SECRET)
        env.update(self.extra_env)
        argv = [str(APP_PYTHON if APP_PYTHON.exists() else sys.executable), "-m", "demo_site",
                "--host", "127.0.0.1", "--port", str(self.port), "--rasa-url", self.rasa_url]
        self._spawn(argv, env, "demo")
        try:
            wait_http(self.url + "/", timeout=60, proc=self.proc)
        except Exception:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"demo site did not start:\n{tail}")
        return self
