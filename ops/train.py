"""Train the Rasa model only when the training data or config changed.

The model file is named after a hash of config.yml, domain.yml and bot/data, so an unchanged
checkout finds its model and skips training. A file lock keeps parallel callers (make run, test
sessions) from training the same model twice.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from .paths import BOT_DATA, CONFIG, DOMAIN, MODELS, RASA_BIN, ROOT


def training_files(config: Path = CONFIG, domain: Path = DOMAIN, data: Path = BOT_DATA) -> list[Path]:
    files = [config]
    files += sorted(domain.rglob("*.yml")) if domain.is_dir() else [domain]
    files += sorted(p for p in data.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml", ".md", ".txt"))
    return files


def fingerprint(config: Path = CONFIG, domain: Path = DOMAIN, data: Path = BOT_DATA) -> str:
    """A hash of the training files' contents and their paths relative to the project, so the same
    data gives the same model name in any checkout."""
    digest = hashlib.sha256()
    base = Path(os.path.commonpath([config.resolve(), domain.resolve(), data.resolve()]))
    for path in training_files(config, domain, data):
        digest.update(str(path.resolve().relative_to(base)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def train_if_changed(config: Path = CONFIG, domain: Path = DOMAIN, data: Path = BOT_DATA,
                     out: Path = MODELS, name: str = "atende", quiet: bool = False) -> Path:
    """Return the model for the current training data, training it first if needed."""
    out.mkdir(parents=True, exist_ok=True)
    model_name = f"{name}-{fingerprint(config, domain, data)}"
    model = out / f"{model_name}.tar.gz"
    with open(out / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if model.exists():
            if not quiet:
                print(f"Model is up to date: {model.relative_to(ROOT) if model.is_relative_to(ROOT) else model}")
            return model
        if not quiet:
            print(f"Training data changed: training {model_name} (2-3 minutes on 2 cores).", flush=True)
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", RASA_TELEMETRY_ENABLED="false")
        cmd = [str(RASA_BIN), "train", "--config", str(config), "--domain", str(domain),
               "--data", str(data), "--out", str(out), "--fixed-model-name", model_name]
        proc = subprocess.run(cmd, cwd=ROOT, env=env,
                              stdout=subprocess.PIPE if quiet else None,
                              stderr=subprocess.STDOUT if quiet else None, text=True)
        if proc.returncode != 0 or not model.exists():
            if quiet and proc.stdout:
                sys.stderr.write(proc.stdout[-5000:])
            raise RuntimeError(f"rasa train failed (exit {proc.returncode})")
        return model


if __name__ == "__main__":
    print(train_if_changed())
