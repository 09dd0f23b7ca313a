"""`make run-prod`: the production topology of docker-compose.yml, without Docker, on loopback.

PostgreSQL (data + Rasa tracker store) and Redis (Rasa lock store): the servers on
127.0.0.1:5432 / 6379 when they answer, else started here from the Debian packages. Then N Rasa
servers (default 2) on free ports behind nginx (ops/prod_nginx.py: conversations pinned by id),
the action server and the console. Ctrl-C stops everything started here.

The load test (bench/load) drives the same `Topology` class, with its own PostgreSQL and Redis.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import credentials, endpoints, prod_nginx, prod_services, procs
from .envfile import DEV_SECRETS, ensure_dev_secrets, load_dotenv, new_secret
from .paths import APP_PYTHON, BOT_PYTHON, ROOT, VAR
from .train import train_if_changed


def redact(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class ProdConfig:
    replicas: int = 2
    proxy_port: int = 8000           # chat, widget, webhooks, Rasa API (loopback)
    console_port: int = 8601         # the console, through the proxy
    workdir: Path = VAR / "prod"
    database: str = "atende"
    own_services: bool = False       # always start our own PostgreSQL and Redis
    console: bool = True
    worker: bool = True              # helpdesk worker: SLA clocks, notifications, retention purge
    demo_data: bool = True
    env: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    model: Path | None = None        # a trained model to serve instead of training the current data


class Topology:
    def __init__(self, cfg: ProdConfig) -> None:
        if cfg.replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.cfg = cfg
        self.workdir = cfg.workdir.resolve()
        self.logs = self.workdir / "logs"
        self.pg: prod_services.Postgres | None = None
        self.redis: prod_services.Redis | None = None
        self.rasa: list[procs.Proc] = []
        self.actions: procs.Proc | None = None
        self.console: procs.Proc | None = None
        self.gateway: procs.Proc | None = None
        self.worker: procs.Proc | None = None
        self.nginx: procs.Proc | None = None
        self.database_url = ""
        self.env: dict[str, str] = {}

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.proxy_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.console_port}"

    def _say(self, msg: str) -> None:
        if not self.cfg.quiet:
            print(msg, flush=True)

    def processes(self) -> list[procs.Proc]:
        return [p for p in [self.actions, *self.rasa, self.gateway, self.console, self.worker, self.nginx] if p is not None]

    # ---- start -----------------------------------------------------------------------------
    def start(self) -> "Topology":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        cfg = self.cfg
        self._say("==> PostgreSQL and Redis")
        self.pg = prod_services.postgres(self.workdir, own=cfg.own_services)
        self.database_url = self.pg.ensure_database(cfg.database)
        self.redis = prod_services.redis(self.workdir, own=cfg.own_services)
        self._say(f"  PostgreSQL: {redact(self.database_url)}\n  Redis: {redact(self.redis.url)}")

        action_port = procs.free_port()
        self.env = {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            # socket.io emits between the Rasa replicas (connectors/website/relay.py)
            "WEBCHAT_SOCKET_REDIS_URL": self.redis.url,
            "KNOWLEDGE_INDEX_DIR": str(self.workdir / "knowledge"),
            "RASA_URL": self.proxy_url,
            "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}/webhook",
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            **cfg.env,
        }
        # Every process gets the shared secrets through its environment (bench/load starts a
        # topology without ensure_dev_secrets: each such topology gets its own random ones).
        for name in DEV_SECRETS:
            if not self.env.get(name) and not os.environ.get(name):
                self.env[name] = new_secret()
        self._say("==> Database schema, demo data and documentation index")
        self._setup_job()
        subprocess.run([str(BOT_PYTHON), "-m", "ops.prod_bot_setup"], cwd=ROOT, check=True,
                       env=dict(os.environ, **self.env), stdout=subprocess.DEVNULL if self.cfg.quiet else None)
        self._say("==> Assistant model (trained when the training data changed)")
        model = cfg.model.resolve() if cfg.model else train_if_changed(quiet=cfg.quiet)
        if not model.exists():
            raise FileNotFoundError(f"model {model} not found")
        endpoints_file = endpoints.write(self.workdir / "endpoints.yml", database_url=self.database_url,
                                         action_url=self.env["ACTION_SERVER_URL"], redis_url=self.redis.url)
        # Production channels: no REST channel (it takes the sender from the client).
        credentials_file = credentials.write_production(self.workdir / "credentials.yml")
        self.actions = procs.action_server(action_port, env=self.env, log=self.logs / "actions.log")
        for i in range(cfg.replicas):
            port = procs.free_port()
            proc = procs.rasa_server(port, model, endpoints_file, credentials=credentials_file, env=self.env,
                                     log=self.logs / f"rasa{i + 1}.log", extra=["--interface", "127.0.0.1"])
            proc.name = f"rasa{i + 1}"
            self.rasa.append(proc)
        # WhatsApp webhooks are acknowledged by the gateway, off the replicas' event loops.
        self.gateway = procs.whatsapp_gateway(
            procs.free_port(), [p.health_url.rstrip("/") + "/webhooks/whatsapp/wake" for p in self.rasa],
            env=self.env, log=self.logs / "whatsapp_gateway.log")
        console_port = procs.free_port()
        if cfg.console:
            self.console = procs.console(console_port, env=self.env, log=self.logs / "console.log")
        if cfg.worker:
            self.worker = procs.worker(procs.free_port(), env=self.env, log=self.logs / "worker.log")
        self.nginx = self._nginx(console_port)

        self._say(f"==> Starting {cfg.replicas} Rasa server(s), the WhatsApp gateway, the action server"
                  f"{', the console' if cfg.console else ''} and nginx (logs in {self.logs})")
        for proc in self.processes():
            if proc is not self.nginx:
                proc.start()
        for proc in self.processes():
            if proc is self.nginx:
                continue
            proc.wait_ready(timeout=400)
            self._say(f"  {proc.name}: ready ({proc.health_url.rsplit('/', 1)[0]})")
        self.nginx.start()
        self.nginx.wait_ready(30)
        self._say(f"  nginx: ready ({self.proxy_url})")

    def _setup_job(self) -> None:
        """What the compose `setup` job does: migrate (+ demo data), ingest the documentation."""
        env = dict(os.environ, **self.env)
        cmd = ["-m", "helpdesk", "demo"] if self.cfg.demo_data else ["-m", "helpdesk", "migrate"]
        subprocess.run([str(APP_PYTHON), *cmd], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL if self.cfg.quiet else None)
        index = Path(self.env["KNOWLEDGE_INDEX_DIR"])
        if (ROOT / "knowledge" / "__main__.py").exists() and not (index.exists() and any(index.iterdir())):
            done = subprocess.run([str(APP_PYTHON), "-m", "knowledge", "ingest"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if not self.cfg.quiet or done.returncode != 0:
                print(done.stdout[-3000:], end="", flush=True)
            if done.returncode != 0:
                # Keep the rest of the topology usable: the assistant says it has no answer.
                print(f"WARNING: `python -m knowledge ingest` failed (exit {done.returncode}); answers from "
                      "the documentation are unavailable until it succeeds.", file=sys.stderr, flush=True)

    def _nginx(self, console_port: int) -> procs.Proc:
        ndir = self.workdir / "nginx"
        (ndir / "tmp").mkdir(parents=True, exist_ok=True)
        # Workers run as an unprivileged user when nginx starts as root: let them write temp files.
        for d in (ndir, ndir / "tmp"):
            d.chmod(0o777)
        layout = prod_nginx.ProxyLayout(
            rasa=tuple(p.health_url.split("//", 1)[1].rstrip("/") for p in self.rasa),
            console=f"127.0.0.1:{console_port}",
            whatsapp=(self.gateway.health_url.split("//", 1)[1].rsplit("/", 1)[0],) if self.gateway else (),
            listen=f"127.0.0.1:{self.cfg.proxy_port}", console_listen=f"127.0.0.1:{self.cfg.console_port}",
            pid=str(ndir / "nginx.pid"), error_log=str(ndir / "error.log"),
            access_log=str(ndir / "access.log"), temp_dir=str(ndir / "tmp"), daemon=False,
            worker_processes="2")
        conf = prod_nginx.write(ndir / "nginx.conf", layout)
        checked = prod_services.nginx_test(conf)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx rejected {conf}:\n{checked.stderr}")
        return prod_services.nginx_proc(conf, self.cfg.proxy_port, self.logs / "nginx.log")

    # ---- faults (bench/load) ---------------------------------------------------------------
    def kill_rasa(self, index: int) -> None:
        self.rasa[index].kill9()

    def restart_actions(self) -> None:
        assert self.actions is not None
        self.actions.stop()
        self.actions.start()
        self.actions.wait_ready(180)

    def restart_postgres(self) -> None:
        assert self.pg is not None
        self.pg.restart()

    # ---- stop ------------------------------------------------------------------------------
    def stop(self) -> None:
        for proc in reversed(self.processes()):
            proc.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.pg is not None:
            self.pg.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.run_prod", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("RASA_REPLICAS", "2")))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PROXY_PORT", "8000")),
                        help="proxy port for the chat, the widget and the webhooks (default 8000)")
    parser.add_argument("--console-port", type=int, default=int(os.environ.get("PROXY_CONSOLE_PORT", "8601")))
    parser.add_argument("--own-services", action="store_true",
                        help="start a private PostgreSQL and Redis even when servers answer on 5432/6379")
    args = parser.parse_args(argv)
    load_dotenv()
    ensure_dev_secrets()
    for port in (args.port, args.console_port):
        if prod_services.port_open(port):
            print(f"Port {port} is already in use: pass --port / --console-port.", file=sys.stderr)
            return 2
    started = time.monotonic()
    topo = Topology(ProdConfig(replicas=args.replicas, proxy_port=args.port, console_port=args.console_port,
                               own_services=args.own_services))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        topo.start()
        print(f"\nAtende (production topology) is running ({time.monotonic() - started:.0f}s):")
        print(f"  Chat widget script:   {topo.proxy_url}/webhooks/website/widget.js")
        print(f"  WhatsApp webhook:     {topo.proxy_url}/webhooks/whatsapp/webhook")
        print(f"  Rasa API (loopback):  {topo.proxy_url}/conversations/<id>/...")
        print(f"  Console (técnicos):   {topo.console_url}")
        print(f"  Rasa replicas:        {', '.join(p.health_url for p in topo.rasa)}")
        if topo.gateway is not None:
            print(f"  WhatsApp gateway:     {topo.gateway.health_url.rsplit('/', 1)[0]} (behind the proxy)")
        print("Press Ctrl-C to stop.", flush=True)
        while all(p.alive() for p in topo.processes()):
            time.sleep(1)
        dead = [p.name for p in topo.processes() if not p.alive()]
        print(f"\n{', '.join(dead)} stopped unexpectedly; see {topo.logs}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        print("\nStopping...", flush=True)
        topo.stop()
        print("All processes stopped.")


if __name__ == "__main__":
    sys.exit(main())
