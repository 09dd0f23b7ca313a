"""Test/bench harness: a tiny fixture Rasa model, a real `rasa run` with the WhatsApp channel and
the WhatsApp gateway process (`python -m connectors.whatsapp.gateway`).

The model (tests/connectors/fixtures/tiny_bot: keyword NLU + rules, pt-BR) is trained once and
cached by a hash of its files. ``RasaServer`` writes a credentials.yml listing
``connectors.whatsapp.WhatsAppInput`` and an endpoints.yml whose SQL tracker store is the same
SQLite database as the connector's inbox/outbox, then starts ``rasa run`` on a free loopback port.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
TINY_BOT = REPO / "tests" / "connectors" / "fixtures" / "tiny_bot"
BOT_BIN = Path(os.environ.get("ATENDE_BOT_VENV", str(REPO / ".venv-bot"))) / "bin"
FAULTS_LAUNCHER = REPO / "tests" / "connectors" / "wa_faults.py"
CACHE_DIR = Path(os.environ.get("ATENDE_TEST_CACHE", "/tmp/atende-test-cache"))

sys.path.insert(0, str(REPO / "tests" / "support"))
sys.path.insert(0, str(REPO))

from connectors.whatsapp.signature import sign  # noqa: E402

# The key the connectors sign identity attestations with (atende_contract.attestation).
ATTESTATION_SECRET = "chave-de-atestacao-whatsapp-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tiny_model() -> Path:
    """Train (or reuse) the fixture model; cached by the hash of its files."""
    h = hashlib.sha256()
    for p in sorted(TINY_BOT.rglob("*.yml")):
        h.update(p.relative_to(TINY_BOT).as_posix().encode())
        h.update(p.read_bytes())
    digest = h.hexdigest()[:16]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    model = CACHE_DIR / f"whatsapp-tiny-{digest}.tar.gz"
    if model.exists():
        return model
    subprocess.run(
        [str(BOT_BIN / "rasa"), "train", "--config", str(TINY_BOT / "config.yml"), "--domain",
         str(TINY_BOT / "domain.yml"), "--data", str(TINY_BOT / "data"), "--out", str(CACHE_DIR),
         "--fixed-model-name", model.name[: -len(".tar.gz")]],
        check=True, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return model


def _wait_ready(server: Any, name: str, url: str, ready: Callable[[Any], bool], timeout: float,
                poll_s: float) -> None:
    """Poll `url` until `ready(response)`; raise with the log tail if the process exits or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{server.log()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if ready(r):
                    return
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            pass
        time.sleep(poll_s)
    raise RuntimeError(f"{name} did not start:\n{server.log()[-3000:]}")


class RasaServer:
    def __init__(self, workdir: Path, graph_url: str, db_path: Path, app_secret: Optional[str] = "app-secret",
                 verify_token: str = "verify-me", access_token: str = "test-token",
                 phone_number_id: str = "1122334455667", extra_env: Optional[Dict[str, str]] = None,
                 port: Optional[int] = None, fault: Optional[str] = None) -> None:
        """``fault``: start Rasa through tests/connectors/wa_faults.py with that crash hook
        installed in the WhatsApp worker (``exit_after_rasa`` / ``exit_after_send``)."""
        self.workdir = workdir
        self.fault = fault
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.webhook = f"{self.url}/webhooks/whatsapp/webhook"
        self.wake_url = f"{self.url}/webhooks/whatsapp/wake"
        self.app_secret = app_secret or ""
        self.db_path = db_path
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = workdir / f"rasa-{self.port}.log"
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "credentials.yml").write_text(
            "connectors.whatsapp.WhatsAppInput:\nconnectors.rest.DevRestInput:\n")
        (workdir / "endpoints.yml").write_text(
            f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {db_path}\n")
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "RASA_TELEMETRY_ENABLED": "false",
            "DATABASE_URL": f"sqlite:///{db_path}",
            "ATENDE_ATTESTATION_SECRET": ATTESTATION_SECRET,
            "WHATSAPP_APP_SECRET": self.app_secret,
            "WHATSAPP_VERIFY_TOKEN": verify_token,
            "WHATSAPP_ACCESS_TOKEN": access_token,
            "WHATSAPP_PHONE_NUMBER_ID": phone_number_id,
            "WHATSAPP_API_VERSION": "v21.0",
            "WHATSAPP_GRAPH_URL": graph_url,
            "WHATSAPP_RETRY_BASE_S": "0.05",
            "WHATSAPP_RETRY_MAX_S": "0.2",
            "WHATSAPP_GRAPH_TIMEOUT_S": "1.5",
            "WHATSAPP_LEASE_SECONDS": "3",  # a killed server's senders are taken over 3 s later
            **(extra_env or {}),
        }

    def start(self, model: Path, timeout: float = 120.0) -> "RasaServer":
        log = open(self.log_path, "ab")
        launcher = ([str(BOT_BIN / "python"), str(FAULTS_LAUNCHER), self.fault] if self.fault
                    else [str(BOT_BIN / "rasa")])
        self.proc = subprocess.Popen(
            [*launcher, "run", "--enable-api", "-i", "127.0.0.1", "-p", str(self.port), "-m",
             str(model), "--credentials", str(self.workdir / "credentials.yml"), "--endpoints",
             str(self.workdir / "endpoints.yml")],
            cwd=str(REPO), env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        _wait_ready(self, "rasa", f"{self.url}/status", lambda r: bool(json.loads(r.read()).get("model_file")),
                    timeout, 0.3)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def post(self, body: bytes, signature: Optional[str] = "auto", secret: Optional[str] = None,
             timeout: float = 10.0) -> Tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if signature == "auto":
            signature = sign(body, secret or self.app_secret)
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        req = urllib.request.Request(self.webhook, data=body, headers=headers, method="POST")
        return _send(req, timeout)

    def get(self, path: str, timeout: float = 10.0) -> Tuple[int, Any]:
        return _send(urllib.request.Request(self.url + path), timeout)


class Gateway:
    """`python -m connectors.whatsapp.gateway` on a free loopback port, storing into ``db_path`` and waking
    ``wake_urls`` (the Rasa servers); same environment as a ``RasaServer`` with the same arguments."""

    def __init__(self, workdir: Path, db_path: Path, wake_urls: Optional[list] = None,
                 app_secret: Optional[str] = "app-secret", verify_token: str = "verify-me",
                 extra_env: Optional[Dict[str, str]] = None, port: Optional[int] = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.webhook = f"{self.url}/webhooks/whatsapp/webhook"
        self.app_secret = app_secret or ""
        self.db_path = db_path
        self.wake_urls = list(wake_urls or [])
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = workdir / f"gateway-{self.port}.log"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": f"sqlite:///{db_path}",
            "WHATSAPP_APP_SECRET": self.app_secret,
            "WHATSAPP_VERIFY_TOKEN": verify_token,
            "WHATSAPP_WAKE_URLS": ",".join(self.wake_urls) or " ",
            **(extra_env or {}),
        }

    def start(self, timeout: float = 60.0) -> "Gateway":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(BOT_BIN / "python"), "-m", "connectors.whatsapp.gateway", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=str(REPO), env=self.env, stdout=log, stderr=subprocess.STDOUT)
        _wait_ready(self, "gateway", f"{self.url}/health", lambda r: r.status == 200, timeout, 0.2)
        return self

    log = RasaServer.log
    kill9 = RasaServer.kill9
    stop = RasaServer.stop
    post = RasaServer.post
    get = RasaServer.get


def _send(req: urllib.request.Request, timeout: float) -> Tuple[int, Any]:
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def text_notification(wa_id: str, wamid: str, text: str, name: str = "Cliente Teste",
                      phone_number_id: str = "1122334455667") -> Dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551140040000", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), "type": "text",
                      "text": {"body": text}}]}}]}]}


def notification(field: str, value: Dict[str, Any]) -> Dict[str, Any]:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "551140040000", "phone_number_id": "1122334455667"}, **value}
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": field, "value": value}]}]}
