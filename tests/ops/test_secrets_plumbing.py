"""How the shared secrets reach the processes, and what the processes expose.

- `make run` generates RASA_JWT_SECRET, ATENDE_ATTESTATION_SECRET and WEBCHAT_JWT_SECRET once
  and keeps them in var/secrets.env (mode 0600); values set by the operator win.
- Rasa is started through ops/rasa_launch.py: the JWT secret goes to Rasa inside the process, never
  on a command line; an open API, a short secret or a secret argument stop it at start.
- Production channels have no REST channel; no Rasa command line carries `--cors`.
- The action server and the console bind to loopback unless ATENDE_BIND_HOST says otherwise.
"""
from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from ops import credentials, envfile, procs, rasa_launch
from ops.paths import BOT_PYTHON, ROOT


def test_dev_secrets_are_generated_once_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envfile, "VAR", tmp_path)
    for name in (*envfile.DEV_SECRETS, "RASA_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEBCHAT_JWT_SECRET", "set-by-the-operator-" + "x" * 20)
    envfile.ensure_dev_secrets()
    store = tmp_path / "secrets.env"
    saved = envfile.parse(store)
    assert set(saved) == {"RASA_JWT_SECRET", "ATENDE_ATTESTATION_SECRET"}  # the operator's value is not stored
    for name in ("RASA_JWT_SECRET", "ATENDE_ATTESTATION_SECRET"):
        assert os.environ[name] == saved[name] and len(saved[name].encode()) >= 32
    assert saved["RASA_JWT_SECRET"] != saved["ATENDE_ATTESTATION_SECRET"]
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert "RASA_TOKEN" not in os.environ  # the query-string token is gone
    # a restart reuses them
    first = dict(saved)
    for name in first:
        monkeypatch.delenv(name)
    envfile.ensure_dev_secrets()
    assert {name: os.environ[name] for name in first} == first


def test_rasa_launch_adds_the_jwt_options_from_the_environment() -> None:
    secret = "s" * 43
    argv = rasa_launch.rasa_argv(["run", "--enable-api", "--port", "5005"], {"RASA_JWT_SECRET": secret})
    assert argv == ["run", "--enable-api", "--port", "5005", "--jwt-secret", secret, "--jwt-method", "HS256"]
    # no API, no secret needed (e.g. `rasa run` of a channel-only server)
    assert rasa_launch.rasa_argv(["run", "--port", "1"], {}) == ["run", "--port", "1"]


@pytest.mark.parametrize("argv, env, message", [
    (["run", "--enable-api"], {}, "RASA_JWT_SECRET is not set"),
    (["run", "--enable-api"], {"RASA_JWT_SECRET": "too-short"}, "at least 32"),
    (["run", "--enable-api", "--auth-token", "t"], {"RASA_JWT_SECRET": "s" * 43}, "--auth-token on the command line"),
    (["run", "--jwt-secret=" + "s" * 43], {}, "--jwt-secret on the command line"),
])
def test_rasa_launch_refuses_unsafe_starts(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(SystemExit) as err:
        rasa_launch.rasa_argv(argv, env)
    assert message in str(err.value.code)


def test_rasa_launch_refuses_in_the_bot_env_before_loading_rasa() -> None:
    if not BOT_PYTHON.exists():
        pytest.skip("bot env not installed")
    env = {k: v for k, v in os.environ.items() if k != "RASA_JWT_SECRET"}
    done = subprocess.run([str(BOT_PYTHON), "-m", "ops.rasa_launch", "run", "--enable-api"], cwd=ROOT,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "refusing to start Rasa's HTTP API without authentication" in done.stderr


def test_rasa_command_lines_carry_no_secret_and_no_cors(tmp_path: Path) -> None:
    secret = "a-secret-that-must-stay-in-the-environment"
    proc = procs.rasa_server(5005, tmp_path / "model.tar.gz", tmp_path / "endpoints.yml",
                             env={"RASA_JWT_SECRET": secret})
    assert proc.cmd[1:4] == ["-m", "ops.rasa_launch", "run"] and "--enable-api" in proc.cmd
    assert secret not in " ".join(proc.cmd)
    assert not {"--cors", "--auth-token", "--jwt-secret"} & set(proc.cmd)
    assert proc.env["RASA_JWT_SECRET"] == secret


def test_production_channels_have_no_rest(tmp_path: Path) -> None:
    prod = credentials.production()
    assert set(prod) == {"connectors.website.WebsiteInput", "connectors.whatsapp.WhatsAppInput"}
    out = credentials.write_production(tmp_path / "credentials.yml")
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == prod
    # whatever spelling a REST channel has in the development file
    dev = tmp_path / "dev.yml"
    dev.write_text("rest:\nrasa.core.channels.rest.RestInput: {}\nconnectors.rest.DevRestInput: {}\n"
                   "my.channels.rest.Custom: {}\ncallback:\n  url: http://x\nconnectors.website.WebsiteInput: {}\n"
                   "socketio: {}\n", encoding="utf-8")
    assert set(credentials.production(dev)) == {"connectors.website.WebsiteInput", "socketio"}


def test_processes_bind_to_the_host_they_are_given() -> None:
    actions = procs.action_server(5055, env={"X": "1"})
    assert actions.env == {"X": "1", "SANIC_HOST": "127.0.0.1"}  # rasa-sdk's own default is 0.0.0.0
    assert procs.action_server(5055, host="0.0.0.0").env["SANIC_HOST"] == "0.0.0.0"
    console = procs.console(8501)
    assert console.cmd[console.cmd.index("--server.address") + 1] == "127.0.0.1"
    assert procs.console(8501, host="10.1.2.3").cmd[console.cmd.index("--server.address") + 1] == "10.1.2.3"


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            addr = sock.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def _answers(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) == 0


@pytest.mark.integration
def test_the_action_server_and_console_answer_only_loopback(tmp_path: Path) -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback address")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'atende.db'}", "KNOWLEDGE_INDEX_DIR": str(tmp_path / "kb"),
           "ATENDE_ATTESTATION_SECRET": envfile.new_secret()}
    started = [procs.action_server(procs.free_port(), env=env, log=tmp_path / "actions.log"),
               procs.console(procs.free_port(), env=env, log=tmp_path / "console.log")]
    try:
        for proc in started:
            proc.start()
        for proc in started:
            proc.wait_ready(180)
            port = int(proc.health_url.split(":")[2].split("/")[0])
            assert _answers("127.0.0.1", port), proc.name
            assert not _answers(outside, port), f"{proc.name} answers on {outside}:{port}"
    finally:
        for proc in started:
            proc.stop()


def test_the_console_authenticates_to_rasa_with_a_bearer_jwt_not_a_url_token() -> None:
    import http.server
    import threading
    import time

    import jwt

    from helpdesk.services.rasa_client import RasaClient

    seen: list[tuple[str, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = envfile.new_secret()
    try:
        RasaClient(f"http://127.0.0.1:{server.server_address[1]}", jwt_secret=secret).agent_reply(
            "web:abc-123", agent_text="oi", agent_name="Bruno")
    finally:
        server.shutdown()
        server.server_close()
    [(path, auth)] = seen
    # the namespaced id keeps its `:` (Rasa does not percent-decode the path); no token in the URL
    assert path == "/conversations/web:abc-123/trigger_intent?output_channel=latest"
    assert auth and auth.startswith("Bearer ")
    claims = jwt.decode(auth.removeprefix("Bearer "), secret, algorithms=["HS256"])
    assert claims["user"] == {"username": "atende-console", "role": "admin"}
    assert 0 < claims["exp"] - time.time() <= 60
