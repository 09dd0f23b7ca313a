"""`make run`: prepare what is missing, start every process on the embedded defaults, print the
URLs, and stop everything on Ctrl-C."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

from . import endpoints, procs
from .envfile import ensure_dev_secrets, load_dotenv
from .paths import APP_PYTHON, ROOT, VAR
from .train import train_if_changed


def _step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def _ingest_if_changed() -> None:
    """Ingest the documentation sources when they (or the knowledge code's sources file) changed."""
    sources = ROOT / "knowledge" / "sources.yml"
    docs = ROOT / "knowledge" / "demo_docs"
    if not sources.exists():
        print("knowledge/sources.yml not found: skipping ingestion")
        return
    digest = hashlib.sha256(sources.read_bytes())
    for path in sorted(docs.rglob("*")) if docs.exists() else []:
        if path.is_file():
            digest.update(str(path.relative_to(docs)).encode())
            digest.update(path.read_bytes())
    index_dir = os.environ.get("KNOWLEDGE_INDEX_DIR", str(VAR / "knowledge"))
    stamp = VAR / f".ingested-{digest.hexdigest()[:16]}-{hashlib.sha1(index_dir.encode()).hexdigest()[:8]}"
    if stamp.exists():
        print("Documentation index is up to date.")
        return
    subprocess.run([str(APP_PYTHON), "-m", "knowledge", "ingest"], cwd=ROOT, check=True,
                   env=dict(os.environ, HF_HUB_OFFLINE="1"))
    for old in VAR.glob(".ingested-*"):
        old.unlink()
    stamp.touch()


def main() -> int:
    started = time.monotonic()
    load_dotenv()
    ensure_dev_secrets()
    VAR.mkdir(parents=True, exist_ok=True)
    rasa_port = int(os.environ.get("RASA_PORT", "5005"))
    action_port = int(os.environ.get("ACTION_PORT", "5055"))
    console_port = int(os.environ.get("CONSOLE_PORT", "8501"))
    demo_port = int(os.environ.get("DEMO_SITE_PORT", "8080"))
    gateway_port = int(os.environ.get("WHATSAPP_GATEWAY_PORT", "5006"))
    # The action server and the console answer only this machine unless told otherwise.
    bind_host = os.environ.get("ATENDE_BIND_HOST", "127.0.0.1").strip() or "127.0.0.1"
    shown_host = "localhost" if bind_host in ("127.0.0.1", "0.0.0.0", "::", "::1") else bind_host
    action_host = "127.0.0.1" if bind_host in ("127.0.0.1", "0.0.0.0") else shown_host
    rasa_url = f"http://localhost:{rasa_port}"
    os.environ.setdefault("RASA_URL", rasa_url)
    os.environ.setdefault("ACTION_SERVER_URL", f"http://{action_host}:{action_port}/webhook")
    # The demo site's privacy page: the widget links it, the connector accepts it in consents (http).
    os.environ.setdefault("ATENDE_PRIVACY_POLICY_URL", f"http://{shown_host}:{demo_port}/privacidade")

    _step("Database: upgrading the schema and loading the demo data (once)")
    subprocess.run([str(APP_PYTHON), "-m", "helpdesk", "demo"], cwd=ROOT, check=True)

    _step("Documentation: ingesting the demo documentation when it changed")
    _ingest_if_changed()

    _step("Assistant: training the model when the training data changed")
    model = train_if_changed()
    endpoints_file = endpoints.write(VAR / "endpoints.yml")

    logs = VAR / "logs"
    processes = [
        procs.action_server(action_port, host=bind_host, log=logs / "actions.log"),
        # RASA_JWT_SECRET (API) and ATENDE_ATTESTATION_SECRET reach every process through the
        # environment (ensure_dev_secrets), never through a command line.
        procs.rasa_server(rasa_port, model, endpoints_file, log=logs / "rasa.log"),
        procs.whatsapp_gateway(gateway_port, [f"http://127.0.0.1:{rasa_port}/webhooks/whatsapp/wake"],
                               log=logs / "whatsapp_gateway.log"),
        procs.console(console_port, host=bind_host, log=logs / "console.log"),
        procs.worker(procs.free_port(), log=logs / "worker.log"),
    ]
    if (ROOT / "demo_site" / "__main__.py").exists():
        processes.append(procs.demo_site(demo_port, rasa_url, log=logs / "demo_site.log"))

    stopping = False

    def stop_all(*_: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\nStopping...", flush=True)
        for proc in reversed(processes):
            proc.stop()
        print("All processes stopped.")

    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(0)))
    try:
        _step("Starting the processes (logs in var/logs/)")
        for proc in processes:
            proc.start()
        for proc in processes:
            proc.wait_ready(timeout=300)
            print(f"  {proc.name}: ready")
        print(f"\nAtende is running ({time.monotonic() - started:.0f}s):")
        print(f"  Rasa server (API, webhooks): {rasa_url}")
        print(f"  WhatsApp webhook (gateway):  http://localhost:{gateway_port}/webhooks/whatsapp/webhook")
        print(f"  Action server:               http://{shown_host}:{action_port}")
        print(f"  Console (técnicos):          http://{shown_host}:{console_port}")
        if any(p.name == "demo site" for p in processes):
            print(f"  Demo site with the chat:     http://localhost:{demo_port}")
        print("Press Ctrl-C to stop.", flush=True)
        while all(p.alive() for p in processes):
            time.sleep(1)
        dead = [p.name for p in processes if not p.alive()]
        print(f"\n{', '.join(dead)} stopped unexpectedly; see var/logs/.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
