"""PostgreSQL, Redis and nginx for the loopback production topology (`make run-prod`, bench/load).

Each is either a server that already answers on its usual loopback port (used as is, never
stopped or restarted by us) or one started here from the Debian packages, in a directory under
var/prod, on a free port, and stopped when the topology stops. The load test always starts its
own PostgreSQL so that it can restart it without touching anybody else's server.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import procs


def _say(msg: str) -> None:
    print(msg, flush=True)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def apt_install(*packages: str) -> None:
    """Install Debian packages (root or sudo), with a clear message."""
    _say(f"==> Installing {' '.join(packages)} from Debian packages")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *packages], check=True, env=env)


def pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not found:
        apt_install("postgresql")
        return pg_bindir()
    return found[-1].parent


# ---------------------------------------------------------------------------------------------
@dataclass
class Postgres:
    """A PostgreSQL server: `external` ones are used as is; owned ones live in `datadir`."""

    url: str
    port: int
    external: bool
    datadir: Path | None = None
    bindir: Path | None = None
    log: Path | None = None

    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def start(self) -> None:
        if self.external:
            return
        assert self.datadir and self.bindir and self.log
        subprocess.run(self._as_owner([
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "60",
            "-o", f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1", "start"]),
            check=True, stdout=subprocess.DEVNULL)

    def stop(self, mode: str = "fast") -> None:
        if self.external or self.datadir is None or not (self.datadir / "postmaster.pid").exists():
            return
        assert self.bindir
        subprocess.run(self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode,
                                       "-w", "-t", "60", "stop"]), check=False, stdout=subprocess.DEVNULL)

    def restart(self) -> None:
        """Stop (fast: connections are cut) and start again; only for servers started here."""
        if self.external:
            raise RuntimeError("refusing to restart a PostgreSQL server that was not started here")
        self.stop("fast")
        self.start()

    def psql(self, sql: str, db: str = "postgres") -> str:
        base = self.url.rsplit("/", 1)[0]
        out = subprocess.run(["psql", f"{base}/{db}", "-Atqc", sql], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def ensure_database(self, name: str) -> str:
        if not self.psql(f"select 1 from pg_database where datname = '{name}'"):
            self.psql(f'create database "{name}"')
        return f"{self.url.rsplit('/', 1)[0]}/{name}"


def own_postgres(workdir: Path, port: int | None = None) -> Postgres:
    """A fresh cluster under `workdir` (initdb once), started on a free loopback port."""
    bindir = pg_bindir()
    datadir = workdir / "pgdata"
    port = port or procs.free_port()
    if not (datadir / "PG_VERSION").exists():
        _say(f"==> Creating a PostgreSQL cluster in {datadir}")
        datadir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(datadir, pw.pw_uid, pw.pw_gid)
        cmd = [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
               "--locale=C.UTF-8"]
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd,
                       check=True, stdout=subprocess.DEVNULL)
        with open(datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\nmax_connections = 200\nfsync = on\nshared_buffers = 128MB\n")
    log = workdir / "postgres.log"
    if os.geteuid() == 0 and not log.exists():
        log.touch()
        pw = pwd.getpwnam("postgres")
        os.chown(log, pw.pw_uid, pw.pw_gid)
    pg = Postgres(f"postgresql://postgres@127.0.0.1:{port}/postgres", port, False, datadir, bindir, log)
    pg.start()
    return pg


def postgres(workdir: Path, *, own: bool = False) -> Postgres:
    """The server on 127.0.0.1:5432 when it answers (and `own` is false), else one started here."""
    if not own and port_open(5432) and shutil.which("psql"):
        for user in ("postgres", "root", os.environ.get("USER", "")):
            url = f"postgresql://{user}@127.0.0.1:5432/postgres"
            ok = subprocess.run(["psql", url, "-Atqc", "select 1"], capture_output=True).returncode == 0
            if user and ok:
                return Postgres(url, 5432, True)
    if not shutil.which("psql"):
        apt_install("postgresql")
    return own_postgres(workdir)


# ---------------------------------------------------------------------------------------------
@dataclass
class Redis:
    url: str
    proc: procs.Proc | None = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def redis(workdir: Path, *, own: bool = False) -> Redis:
    if not own and port_open(6379):
        return Redis("redis://127.0.0.1:6379/0")
    if not shutil.which("redis-server"):
        apt_install("redis-server")
    port = procs.free_port()
    proc = procs.Proc("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                "--appendonly", "no", "--dir", str(workdir)],
                      "", {}, workdir / "redis.log")
    proc.start()
    deadline = time.monotonic() + 20
    while not port_open(port):
        if time.monotonic() > deadline or not proc.alive():
            raise RuntimeError(f"redis-server did not start; see {workdir / 'redis.log'}")
        time.sleep(0.1)
    return Redis(f"redis://127.0.0.1:{port}/0", proc)


# ---------------------------------------------------------------------------------------------
def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found:
        return found
    apt_install("nginx")
    return nginx_binary()


def nginx_test(conf: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t -c conf`: returns the completed process (returncode 0 when the file is valid)."""
    return subprocess.run([nginx_binary(), "-t", "-q", "-c", str(conf), "-p", str(conf.parent)],
                          capture_output=True, text=True)


def nginx_proc(conf: Path, port: int, log: Path) -> procs.Proc:
    return procs.Proc("nginx", [nginx_binary(), "-c", str(conf), "-p", str(conf.parent)],
                      f"http://127.0.0.1:{port}/healthz", {}, log)
