"""Starting and stopping the two servers under test: the façade and the floor.

Each runs in its own process group on a free loopback port, logs to a file,
and is always stopped (SIGTERM to the group, then SIGKILL) by the context
manager. Peak RSS is read from /proc for the gunicorn workers, the master's
children.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.legacy import LegacyDatabase, driver_args

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


_issued: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on, never the same one twice in this run."""
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        if port not in _issued:
            _issued.add(port)
            return port


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus any FHIR_FACADE_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_FACADE_")}
    env.update(extra)
    return env


class Server:
    """One gunicorn master (plus workers) in its own process group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path, headers: dict[str, str] | None = None):
        self.name, self.argv, self.env, self.port, self.log = name, argv, env, port, log
        self.headers = headers or {}  # sent with every request (the bearer token)
        self.proc: subprocess.Popen | None = None

    def start(self, ready_path: str, timeout: float = 120) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode}; log {self.log}:\n{self.log_tail()}")
            try:
                status, body = self.get(ready_path, timeout=30)
            except (OSError, http.client.HTTPException):  # not listening yet
                time.sleep(0.2)
                continue
            if status == 200:
                return
            raise RuntimeError(f"{self.name} answered {ready_path} with HTTP {status}: {body[:300]!r}; log {self.log}:\n{self.log_tail()}")
        raise RuntimeError(f"{self.name} did not answer {ready_path} within {timeout:.0f} s; log {self.log}:\n{self.log_tail()}")

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=self.headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        pid = self.proc.pid
        with contextlib.suppress(OSError):
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        return [int(d) for d in os.listdir("/proc") if d.isdigit() and _ppid(int(d)) == pid]

    def connections_per_worker(self) -> list[int]:
        """Established client connections each worker has accepted (from /proc/net/tcp)."""
        established = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    fields = line.split()
                    if fields[3] == "01" and int(fields[1].rpartition(":")[2], 16) == self.port:
                        established.add(fields[9])
        counts = []
        for pid in self.worker_pids():
            inodes = set()
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                        if target.startswith("socket:["):
                            inodes.add(target[8:-1])
            counts.append(len(inodes & established))
        return counts

    def workers_cpu_seconds(self) -> float:
        """User plus system CPU the workers have spent so far (all their threads)."""
        total = 0
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        return total / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> list[float]:
        """VmHWM (peak resident set) of each worker, in MiB."""
        peaks = []
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(round(int(line.split()[1]) / 1024, 1))
        return sorted(peaks)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
                return


def _ppid(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    return None


def facade_command() -> list[str]:
    """``fhir-facade`` from this interpreter's environment (as deployed), else the module."""
    script = Path(sys.executable).parent / "fhir-facade"
    if script.exists():
        return [str(script)]
    found = shutil.which("fhir-facade")
    return [found] if found else [sys.executable, "-m", "facade.cli"]


def facade_server(db: LegacyDatabase, workers: int, log_dir: Path, audit_delivery: str = "spool", threads: int | None = None) -> Server:
    """``fhir-facade serve`` as the README deploys it, configured through the environment.

    Access control on (auth_mode builtin) and the audit trail on, its state database
    fresh under ``log_dir``. SQLite: the demo file as ``demo_path``; a server: its URL as
    ``database_url`` (the demo mapping is the default) and the token's signing key as
    ``signing_key_path``. The bearer token is minted with ``fhir-facade token`` from the
    same data directory (signing key) and base URL the server uses, so the server accepts it.
    """
    port = free_port()
    argv = [*facade_command(), "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    log_dir.mkdir(parents=True, exist_ok=True)
    state = log_dir / "state.sqlite"
    for stale in (state, state.with_name("state.sqlite-wal"), state.with_name("state.sqlite-shm")):
        stale.unlink(missing_ok=True)  # one run's audit trail, verified at the end
    shutil.rmtree(state.with_name("state.sqlite-audit-spool"), ignore_errors=True)
    env = _clean_env(
        FHIR_FACADE_DEMO_PATH=str(db.sqlite_path or log_dir / "unused-demo.sqlite"),
        FHIR_FACADE_STATE_URL=f"sqlite:///{state}",
        FHIR_FACADE_AUDIT_DELIVERY=audit_delivery,
        FHIR_FACADE_BASE_URL=f"http://{HOST}:{port}/fhir",
        XDG_DATA_HOME=str(log_dir / "data"),
        **({"FHIR_FACADE_THREADS": str(threads)} if threads else {}),
    )
    token = mint_token(env, scope="user/*.rs")  # as the demo: it creates the signing key in the data directory
    if not db.sqlite_path:
        # A real database: the façade needs its signing key configured; it is the demo's, just made.
        del env["FHIR_FACADE_DEMO_PATH"]
        key = log_dir / "data" / "fhir-facade" / "signing-key.pem"  # facade.config.data_home() under XDG_DATA_HOME
        env.update(FHIR_FACADE_DATABASE_URL=db.url, FHIR_FACADE_SIGNING_KEY_PATH=str(key))
    return Server("façade", argv, env, port, log_dir / "facade.log", headers={"Authorization": f"Bearer {token}"})


def mint_token(env: dict[str, str], scope: str) -> str:
    """A demo access token (the longest lifetime allowed: a run at two sizes takes minutes)."""
    done = subprocess.run(
        [*facade_command(), "token", "--scope", scope],
        env={**env, "FHIR_FACADE_TOKEN_LIFETIME": "3600"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"fhir-facade token failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def audit_state(facade: Server) -> dict:
    """The façade's audit trail after a run: how many records, and whether the chain is intact."""
    from facade.audit.store import AuditStore
    from facade.state import StateStore

    store = StateStore(facade.env["FHIR_FACADE_STATE_URL"])
    try:
        result = AuditStore(store.engine, delivery="spool").verify()  # ships spools a worker left behind
    finally:
        store.dispose()
    return {"records": result.count, "intact": result.ok, "problems": result.problems[:5]}


def floor_server(
    db: LegacyDatabase,
    workers: int,
    log_dir: Path,
    headers: dict[str, str] | None = None,
    threads: int | None = None,
    in_flask: bool = False,
) -> Server:
    """The floor gets the façade's headers too, and ignores them: it has no access control.
    ``in_flask``: the floor inside a minimal Flask app (bench.floor.in_flask)."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.floor", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    if threads:
        argv += ["--threads", str(threads)]
    name, log = ("Flask floor", log_dir / "flask-floor.log") if in_flask else ("floor", log_dir / "floor.log")
    if in_flask:
        argv.append("--flask")
    if db.sqlite_path:
        return Server(name, [*argv, "--db", str(db.sqlite_path)], _clean_env(), port, log, headers=headers)
    env = _clean_env(BENCH_FLOOR_CONNECT=json.dumps(driver_args(db.url)))  # not on the command line: it may hold a password
    return Server(name, argv, env, port, log, headers=headers)


@contextlib.contextmanager
def running(*servers: Server, ready_path: str) -> Iterator[tuple[Server, ...]]:
    """Start the servers, yield them, and stop them on exit whatever happens."""
    try:
        for server in servers:
            server.log.parent.mkdir(parents=True, exist_ok=True)
            server.start(ready_path)
        yield servers
    finally:
        for server in reversed(servers):
            server.stop()
