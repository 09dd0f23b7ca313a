"""docker-compose.yml: valid, complete, and refusing to start without its secrets."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from ops.paths import ROOT

CI_ENV = ROOT / "docker" / "ci.env"
SECRETS = ("POSTGRES_PASSWORD", "DATABASE_URL", "RASA_JWT_SECRET", "ATENDE_ATTESTATION_SECRET", "WEBCHAT_JWT_SECRET",
           "WEBCHAT_ALLOWED_ORIGINS", "RASA_TOKEN")


def compose_cmd() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if os.environ.get("CI"):
        pytest.fail("neither docker-compose nor `docker compose` is installed (apt-get install docker-compose)")
    pytest.skip("docker-compose not installed (apt-get install docker-compose)")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith(("WHATSAPP_", "ATENDE_"))}


def run_config(env_file: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*compose_cmd(), "--env-file", env_file, "-f", str(ROOT / "docker-compose.yml"),
                           "config"], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def config() -> dict:
    done = run_config(str(CI_ENV))
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_topology_services(config: dict) -> None:
    services = config["services"]
    assert set(services) == {"postgres", "redis", "setup", "bot-setup", "actions", "rasa1", "rasa2",
                             "whatsapp-gateway", "console", "worker", "proxy"}
    for name in ("rasa1", "rasa2"):
        rasa = services[name]
        assert rasa["build"]["dockerfile"] == "docker/Dockerfile.bot"
        env = rasa["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["ACTION_SERVER_URL"] == "http://actions:5055/webhook"
        assert env["DATABASE_URL"] == "postgresql://atende:ci-placeholder@postgres:5432/atende"
        assert rasa["depends_on"]["bot-setup"]["condition"] == "service_completed_successfully"
    assert services["setup"]["command"] == ["setup"]
    assert services["bot-setup"]["entrypoint"] == ["python", "-m", "ops.prod_bot_setup"]
    assert services["bot-setup"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert services["setup"]["build"]["dockerfile"] == "docker/Dockerfile.app"
    assert services["console"]["environment"]["RASA_URL"] == "http://proxy"
    gateway = services["whatsapp-gateway"]
    assert gateway["entrypoint"][:3] == ["python", "-m", "connectors.whatsapp.gateway"]
    assert gateway["environment"]["DATABASE_URL"] == services["rasa1"]["environment"]["DATABASE_URL"]
    assert gateway["environment"]["WHATSAPP_WAKE_URLS"].split(",") == [
        f"http://{name}:5005/webhooks/whatsapp/wake" for name in ("rasa1", "rasa2")]
    assert services["proxy"]["depends_on"]["whatsapp-gateway"]["condition"] == "service_healthy"
    # the periodic jobs (SLA, notifications, retention purge) run in one worker of the app image,
    # on the migrated database
    worker = services["worker"]
    assert worker["command"] == ["worker"] and worker["image"] == services["actions"]["image"]
    assert worker["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert worker["environment"]["DATABASE_URL"] == services["actions"]["environment"]["DATABASE_URL"]


def test_health_checks_and_volumes(config: dict) -> None:
    services = config["services"]
    for name in ("postgres", "redis", "actions", "rasa1", "rasa2", "whatsapp-gateway", "console", "worker", "proxy"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert {"pgdata", "knowledge"} <= set(config["volumes"])
    mounts = {name: [str(v) if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}:{v.get('read_only')}"
                     for v in services[name].get("volumes", [])] for name in services}
    assert any("pgdata" in m and "/var/lib/postgresql/data" in m for m in mounts["postgres"])
    assert any("knowledge" in m and "/data/knowledge" in m for m in mounts["setup"])
    # action servers only read the index that the setup job writes
    assert any("knowledge" in m and (m.endswith(":ro") or m.endswith(":True")) for m in mounts["actions"])
    assert any("nginx.conf" in m for m in mounts["proxy"])


def test_missing_secrets_are_refused(tmp_path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    done = run_config(str(empty))
    assert done.returncode != 0
    assert "in .env" in (done.stderr + done.stdout)


def test_dockerfiles_reference_existing_files() -> None:
    for name in ("Dockerfile.bot", "Dockerfile.app"):
        text = (ROOT / "docker" / name).read_text(encoding="utf-8")
        for line in text.splitlines():
            if line.startswith("COPY ") and "--from=" not in line:
                for src in line.split()[1:-1]:
                    if src != ".":
                        assert (ROOT / src).exists(), f"{name}: {src} does not exist"
    assert "rasa/rasa:3.6.21" in (ROOT / "docker" / "Dockerfile.bot").read_text(encoding="utf-8")


def test_shared_secrets_reach_the_processes_that_use_them(config: dict) -> None:
    services = config["services"]
    placeholder = "ci-placeholder-ci-placeholder-ci-placeholder"
    # the attestation key: signed by the connectors (Rasa, gateway), checked by the action server
    for name in ("rasa1", "rasa2", "whatsapp-gateway", "actions"):
        assert services[name]["environment"]["ATENDE_ATTESTATION_SECRET"] == placeholder, name
    # Rasa's API secret: Rasa checks the console's bearer tokens
    for name in ("rasa1", "rasa2", "console"):
        assert services[name]["environment"]["RASA_JWT_SECRET"] == placeholder, name
    # no query-string token any more
    assert not any("RASA_TOKEN" in (svc.get("environment") or {}) for svc in services.values())


@pytest.mark.parametrize("secret", ["RASA_JWT_SECRET", "ATENDE_ATTESTATION_SECRET"])
def test_each_new_secret_is_required(tmp_path, secret: str) -> None:
    env_file = tmp_path / "partial.env"
    env_file.write_text("".join(line + "\n" for line in CI_ENV.read_text(encoding="utf-8").splitlines()
                                if not line.startswith(f"{secret}=")), encoding="utf-8")
    done = run_config(str(env_file))
    assert done.returncode != 0
    assert f"set {secret} in .env" in (done.stderr + done.stdout)


def test_the_bot_image_serves_the_production_channels() -> None:
    entrypoint = (ROOT / "docker" / "bot-entrypoint.sh").read_text(encoding="utf-8")
    assert "python -m ops.credentials /app/var/credentials.yml" in entrypoint
    assert "--credentials /app/var/credentials.yml" in entrypoint
    assert "ops.rasa_launch run" in entrypoint
    assert "--auth-token" not in entrypoint and "--jwt-secret" not in entrypoint and "--cors" not in entrypoint
