"""The whole Atende stack as real processes, for integration and browser tests.

A Rasa server (bot env, the project's trained model, SQL tracker store) and the action server
(app env) on free loopback ports, over a fresh SQLite database with the demo data, a knowledge
index of the demo documentation, and the fake Graph API standing in for Meta.

Secrets are random for each test process (and the attestation key for each stack), long enough
for every check, so a test can grep the logs for them (tests/ops/test_secrets_in_logs.py). Rasa's
HTTP API takes the bearer JWT of `rasa_auth_headers()`, as the console sends it.
"""
from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from helpdesk.services.rasa_client import api_token
from ops import endpoints, procs
from ops.paths import APP_PYTHON, ROOT
from ops.train import train_if_changed

from .fake_graph import FakeGraph

WHATSAPP_SECRET = f"test-app-secret-{secrets.token_hex(16)}"
WHATSAPP_VERIFY = f"test-verify-token-{secrets.token_hex(8)}"
WHATSAPP_TOKEN = f"test-access-token-{secrets.token_hex(16)}"
WHATSAPP_PHONE_ID = "1122334455667"
WEBCHAT_SECRET = f"test-webchat-secret-{secrets.token_hex(16)}"
RASA_JWT_SECRET = f"test-rasa-jwt-secret-{secrets.token_hex(16)}"
# Secret environment variables of a stack (their values must never reach a log).
SECRET_VARS = ("RASA_JWT_SECRET", "ATENDE_ATTESTATION_SECRET", "WEBCHAT_JWT_SECRET", "WHATSAPP_APP_SECRET",
               "WHATSAPP_VERIFY_TOKEN", "WHATSAPP_ACCESS_TOKEN")

# The settings of the session's second stack (tests/conftest.py `variant_stack`), for the journeys
# that need them; the shared stack runs without (no templates, notice off, no console URL).
VARIANT_CONSOLE_URL = "https://console.atende.example"
VARIANT_POLICY_URL = "https://vendor.example/privacidade"
VARIANT_NOTICE_VERSION = "t1"
VARIANT_TEMPLATES = {
    "ticket_update": {"name": "atualizacao_chamado", "language": "pt_BR",
                      "parameters": ["ticket_number", "technician", "text"]},
    "satisfaction": {"name": "avaliacao_atendimento", "language": "pt_BR", "parameters": ["ticket_number"]},
}
VARIANT_ENV = {
    "ATENDE_CONSOLE_URL": VARIANT_CONSOLE_URL,
    "WHATSAPP_TEMPLATES": json.dumps(VARIANT_TEMPLATES),
    "ATENDE_PRIVACY_NOTICE_ENABLED": "1",
    "ATENDE_PRIVACY_NOTICE_VERSION": VARIANT_NOTICE_VERSION,
    "ATENDE_PRIVACY_POLICY_URL": VARIANT_POLICY_URL,
}


def rasa_auth_headers(secret: str = RASA_JWT_SECRET) -> dict[str, str]:
    """Headers for Rasa's HTTP API: the console's short-lived bearer JWT (no token in the URL)."""
    return {"Authorization": f"Bearer {api_token(secret)}"}


@dataclass
class Stack:
    workdir: Path
    database_url: str
    rasa_url: str
    action_url: str
    graph: FakeGraph
    env: dict[str, str]
    rasa: procs.Proc
    actions: procs.Proc
    extra: list[procs.Proc] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every process at once (each may take its grace period), then the fake Graph API."""
        threads = [threading.Thread(target=proc.stop) for proc in [*self.extra, self.rasa, self.actions]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.graph.stop()

    def restart_rasa(self, *, kill9: bool = False) -> None:
        if kill9:
            self.rasa.kill9()
        else:
            self.rasa.stop()
        self.rasa.start()
        self.rasa.wait_ready(240)


def prepare_data(workdir: Path, database_url: str, env: dict[str, str]) -> None:
    """Migrate, load the demo data and index the demo documentation (real CLIs)."""
    run_env = dict(os.environ, **env, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    subprocess.run([str(APP_PYTHON), "-m", "helpdesk", "demo"], cwd=ROOT, env=run_env, check=True,
                   stdout=subprocess.DEVNULL)
    if (ROOT / "knowledge" / "__main__.py").exists():
        subprocess.run([str(APP_PYTHON), "-m", "knowledge", "ingest"], cwd=ROOT, env=run_env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# What `prepare_data` produced, once per test process and per setting that can change it: the
# database file and the index folder are copied into each new stack (the CLIs take about a minute
# on CI, and every stack of a run starts from the same demo data and demo documentation).
_TEMPLATES: dict[tuple[tuple[str, str], ...], Path] = {}
_TEMPLATE_ROOT: list[Path] = []


def _template_key(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The settings `helpdesk demo` and `knowledge ingest` read, without the per-stack paths."""
    merged = dict(os.environ, **env)
    return tuple(sorted((k, v) for k, v in merged.items()
                        if (k.startswith(("KNOWLEDGE_", "OPENAI_", "HF_", "TRANSFORMERS_", "EMBEDDING_"))
                            or k == "ATENDE_CONSOLE_URL")
                        and k != "KNOWLEDGE_INDEX_DIR"))


def _template_root() -> Path:
    if not _TEMPLATE_ROOT:
        root = Path(tempfile.mkdtemp(prefix="atende-stack-data-"))
        atexit.register(shutil.rmtree, root, True)
        _TEMPLATE_ROOT.append(root)
    return _TEMPLATE_ROOT[0]


def prepared_copy(workdir: Path, env: dict[str, str]) -> None:
    """The demo database at workdir/atende.db and the demo index at workdir/knowledge, as
    `prepare_data` makes them: made once per process (and key), then copied."""
    key = _template_key(env)
    template = _TEMPLATES.get(key)
    if template is None:
        template = _template_root() / f"t{len(_TEMPLATES)}"
        template.mkdir()
        prepare_data(template, f"sqlite:///{template / 'atende.db'}",
                     {**env, "DATABASE_URL": f"sqlite:///{template / 'atende.db'}",
                      "KNOWLEDGE_INDEX_DIR": str(template / "knowledge")})
        _TEMPLATES[key] = template
    shutil.copyfile(template / "atende.db", workdir / "atende.db")
    if (template / "knowledge").exists():
        shutil.copytree(template / "knowledge", workdir / "knowledge", symlinks=True)


def start_stack(workdir: Path, *, extra_env: dict[str, str] | None = None) -> Stack:
    workdir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir / 'atende.db'}"
    graph = FakeGraph(access_token=WHATSAPP_TOKEN, phone_number_id=WHATSAPP_PHONE_ID).start()
    rasa_port, action_port = procs.free_port(), procs.free_port()
    env = {
        "DATABASE_URL": database_url,
        "KNOWLEDGE_INDEX_DIR": str(workdir / "knowledge"),
        "RASA_URL": f"http://127.0.0.1:{rasa_port}",
        "RASA_JWT_SECRET": RASA_JWT_SECRET,
        # shared by the Rasa server (connectors) and the action server: random per stack
        "ATENDE_ATTESTATION_SECRET": f"test-attestation-{secrets.token_hex(16)}",
        "WEBCHAT_JWT_SECRET": WEBCHAT_SECRET,
        "WEBCHAT_ALLOWED_ORIGINS": "",  # localhost origins, any port
        "WHATSAPP_APP_SECRET": WHATSAPP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": WHATSAPP_VERIFY,
        "WHATSAPP_ACCESS_TOKEN": WHATSAPP_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": WHATSAPP_PHONE_ID,
        "WHATSAPP_GRAPH_URL": graph.base_url,
        "OPENAI_API_KEY": "",
        # The WhatsApp privacy notice is a first message of its own: off here, so the journeys count
        # the answers they expect; `VARIANT_ENV` (the privacy notice journeys' stack) turns it on.
        "ATENDE_PRIVACY_NOTICE_ENABLED": "0",
    }
    env.update(extra_env or {})
    started: list[procs.Proc] = []
    try:
        prepared_copy(workdir, env)
        model = train_if_changed(quiet=True)
        endpoints_file = endpoints.write(workdir / "endpoints.yml", database_url=database_url,
                                         action_url=f"http://127.0.0.1:{action_port}/webhook", redis_url="")
        actions = procs.action_server(action_port, env=env, log=workdir / "actions.log")
        started.append(actions.start())
        rasa = procs.rasa_server(rasa_port, model, endpoints_file, env=env, log=workdir / "rasa.log")
        started.append(rasa.start())
        actions.wait_ready(120)
        rasa.wait_ready(240)
    except BaseException:
        for proc in started:
            proc.stop()
        graph.stop()
        raise
    return Stack(workdir, database_url, f"http://127.0.0.1:{rasa_port}",
                 f"http://127.0.0.1:{action_port}", graph, env, rasa, actions)


def signed_whatsapp_text(base_url: str, stack: Stack, wa_id: str, body: str) -> None:
    """Post a text message from `wa_id` to the WhatsApp webhook at `base_url` (Rasa or the gateway),
    signed with the stack's app secret as Meta signs it; asserts the 200."""
    import hashlib
    import hmac
    import json
    import time
    import uuid

    import requests

    doc = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551140040000", "phone_number_id": stack.env["WHATSAPP_PHONE_NUMBER_ID"]},
        "contacts": [{"profile": {"name": "Cliente"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())),
                      "type": "text", "text": {"body": body}}]}}]}]}
    raw = json.dumps(doc).encode()
    sig = "sha256=" + hmac.new(WHATSAPP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    resp = requests.post(f"{base_url}/webhooks/whatsapp/webhook", data=raw, timeout=60,
                         headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig})
    assert resp.status_code == 200, resp.text
