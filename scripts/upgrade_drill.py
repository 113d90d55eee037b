#!/usr/bin/env python3
"""Upgrade drill: the previous release serves signed load behind HAProxy while this one takes over.

    python scripts/upgrade_drill.py [--online] [--from REV] [--to worktree|REV] [--admin-url URL]
        [--tenants 3] [--events 200] [--threads 3] [--before 3] [--after 5] [--out result.json]

1. The previous release (--from, default the commit before the partitioned ledger, 9a38cd1^) is
   exported with `git archive` into a temporary directory; the new code is the working tree
   (--to worktree, the default) or another commit exported the same way. Both run on this
   repository's .venv (the old release's requirements are the same pins).
2. On the PostgreSQL of --admin-url (default: the system one on 127.0.0.1:5432 when it answers,
   else the embedded one of `python -m codex.embedded urls`), the superuser creates only what a
   managed provider hands out: a login without SUPERUSER or BYPASSRLS (CREATEDB, CREATEROLE)
   and a fresh database it owns (plus, when `codex_app` already exists in the cluster, that role
   granted to the owner WITH ADMIN OPTION). Everything else runs as that owner.
3. Old code: migrate, provision --tenants tenants (`provision_tenant --json`), gunicorn (2
   workers) + a Celery worker, with a redis-server of its own. In front of it, as in production,
   HAProxy (Debian's `haproxy`, installed by scripts/ensure_haproxy.sh when missing) runs
   infra/haproxy/haproxy.cfg on a loopback port (CODEX_HAPROXY_LOOPBACK): slot `blue` is the old
   gunicorn, slot `green` (idle, nothing listening) gets the new one, both health-checked on
   /healthz; with no server up HAProxy answers 503 + Retry-After. Clients only talk to HAProxy.
4. Fill: --events signed events per tenant through `POST /v1/events` (half single, half in
   batches); every idempotency key answered 2xx is recorded.
5. Steady load from --threads threads; after --before seconds, the cutover:
   * drain (the default; for a migration the old code cannot run on, such as ingest 0005):
     blue is put in maintenance over HAProxy's runtime API (clients get 503 + Retry-After),
     its in-flight requests finish (its sessions reach 0), the old gunicorn and worker stop
     (SIGTERM); the new code's `manage.py migrate --no-input` runs as the owner (the ledger's
     exclusive locks watched in pg_locks); the new gunicorn starts on green and takes traffic
     once HAProxy's health check passes; then the new worker.
   * --online (expand-shaped migrations only): migrate while the old release serves; the new
     gunicorn starts on green and takes traffic once healthy; then blue goes to maintenance,
     drains and stops. Across ingest 0005 the old release answers 500 between the migration's
     commit and its removal, which this mode reports (and fails on).
   The load client retries 503 and 429 (at least Retry-After, capped at --retry-cap for the
   drill) and connection errors with full jitter, as the SDK does, and counts every attempt.
   --after seconds on the new code, then the load stops.
6. Checks, as the owner in a transaction that first sets `app.system_scope` (the tenant tables
   force row-level security): every key answered 2xx is in ingest_event exactly once, with the
   id it was answered with, and in ingest_idempotency; no 5xx but 503-with-Retry-After.

Prints a table (the longest stall without a 2xx, the maintenance window, migrate and lock
times), writes the figures as JSON to --out, exits 1 when a check fails (2 when the drill itself
could not run). Every wait is bounded; every process is stopped (its whole process group) and
the database and the owner role dropped on the way out, also on failure and Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
REDIS_SERVER = VENV_BIN / "redis-server"
SYSTEM_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PARTITIONED_LEDGER = "9a38cd1"
APP_ROLE = "codex_app"
LEDGER_RELATIONS = ("ingest_event", "ingest_event_unpartitioned")
APPLIED_RE = re.compile(r"Applying (\S+)\.\.\. OK \(([\d.]+)s\)")
GRACEFUL_TIMEOUT_S = 10  # GUNICORN_GRACEFUL_TIMEOUT of both releases' gunicorn
HAPROXY_CFG = ROOT / "infra" / "haproxy" / "haproxy.cfg"
ENSURE_HAPROXY = ROOT / "scripts" / "ensure_haproxy.sh"
BACKEND = "app"  # infra/haproxy/haproxy.cfg: servers blue and green
# Every process the drill starts carries this variable (its value the run's id): the test looks
# for leftovers by it.
RUN_MARKER = "CODEX_UPGRADE_DRILL_RUN"


class DrillError(Exception):
    """The drill could not run as designed (not the same as a failed check)."""


def log(msg: str) -> None:
    print(f"upgrade-drill: {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode:
        raise DrillError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def export_tree(rev: str, dest: Path) -> None:
    """`git archive REV | tar -x` into dest (the repository's index and work tree untouched)."""
    dest.mkdir(parents=True)
    archive = dest.with_suffix(".tar")
    with archive.open("wb") as fh:
        result = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", rev],
            stdout=fh,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    if result.returncode:
        raise DrillError(f"git archive {rev}: {result.stderr.decode(errors='replace').strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()


# --- PostgreSQL --------------------------------------------------------------------------------


def admin_url_find(explicit: str | None) -> str:
    """--admin-url, else the system PostgreSQL if it answers, else the embedded one's superuser."""
    if explicit:
        return explicit
    try:
        with psycopg.connect(SYSTEM_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return SYSTEM_ADMIN_URL
    except psycopg.Error:
        pass
    result = subprocess.run(
        [str(PYTHON), "-m", "codex.embedded", "urls"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r"^DATABASE_URL=(\S+)$", result.stdout, re.MULTILINE)
    if not match:
        raise DrillError(f"no PostgreSQL: {SYSTEM_ADMIN_URL} refused, embedded: {result.stderr}")
    params = conninfo_to_dict(match.group(1))
    # The embedded server's superuser is `postgres` on its socket directory (trust).
    return psycopg.conninfo.make_conninfo(
        host=params.get("host", ""),
        port=params.get("port", "5432"),
        user="postgres",
        dbname="postgres",
    )


@dataclass
class Database:
    """The drill's database and its managed-shaped owner on the server of admin_url."""

    admin_url: str
    name: str
    owner: str
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    app_role_created: bool = False
    server: str = ""

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)

    def owner_params(self) -> dict:
        params = conninfo_to_dict(self.admin_url)
        return {
            "host": params.get("host") or "127.0.0.1",
            "port": params.get("port") or "5432",
            "user": self.owner,
            "password": self.password,
            "dbname": self.name,
        }

    def owner_url(self) -> str:
        """DATABASE_URL for the service and manage.py (a socket directory goes in ?host=)."""
        p = self.owner_params()
        if p["host"].startswith("/"):
            return (
                f"postgresql://{p['user']}:{p['password']}@:{p['port']}/{p['dbname']}"
                f"?host={quote(p['host'], safe='/')}"
            )
        return f"postgresql://{p['user']}:{p['password']}@{p['host']}:{p['port']}/{p['dbname']}"

    def owner_connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(**self.owner_params(), connect_timeout=5, **kwargs)

    def create(self) -> None:
        with self.admin() as conn:
            self.server = conn.execute("SHOW server_version").fetchone()[0]
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOBYPASSRLS CREATEDB CREATEROLE"
                ).format(sql.Identifier(self.owner), sql.Literal(self.password))
            )
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE])
            if exists.fetchone():
                # A role made by someone else: the owner must be able to SET ROLE to it and
                # ALTER it (its time limits), as on a managed server where it pre-exists.
                conn.execute(
                    sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(
                        sql.Identifier(APP_ROLE), sql.Identifier(self.owner)
                    )
                )
            else:
                self.app_role_created = True
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.name), sql.Identifier(self.owner)
                )
            )

    def drop(self) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.owner)))
            if self.app_role_created:
                # Made by this drill's migrate; still in use elsewhere (privileges in another
                # database) it stays.
                with contextlib.suppress(psycopg.Error):
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(APP_ROLE)))


class LockWatch:
    """Samples pg_locks while migrate runs: how long the ledger was exclusively locked."""

    def __init__(self, db: Database, interval: float = 0.02) -> None:
        self.db, self.interval = db, interval
        self.locked_s = 0.0
        self.first: float | None = None
        self.last: float | None = None
        self.waiting_max = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        query = """
            SELECT count(*) FILTER (WHERE l.granted AND l.mode = 'AccessExclusiveLock'),
                   count(*) FILTER (WHERE NOT l.granted)
            FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
            WHERE l.locktype = 'relation' AND l.database = (
                SELECT oid FROM pg_database WHERE datname = current_database())
              AND c.relname = ANY(%s)"""
        try:
            conn = self.db.owner_connect(autocommit=True)
        except psycopg.Error:
            return
        with conn:
            previous = time.monotonic()
            while not self._stop.is_set():
                try:
                    held, waiting = conn.execute(query, [list(LEDGER_RELATIONS)]).fetchone()
                except psycopg.Error:
                    return
                now = time.monotonic()
                if held:
                    self.locked_s += now - previous
                    self.first = self.first or now
                    self.last = now
                self.waiting_max = max(self.waiting_max, waiting)
                previous = now
                self._stop.wait(self.interval)


# --- processes ---------------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "DATABASE_OWNER_URL", "CODEX_ENV", "PYTHONPATH"):
        env.pop(name, None)
    return env


class Processes:
    """Starts processes in their own process groups; stops every one of them on the way out."""

    def __init__(self, workdir: Path, run_id: str) -> None:
        self.workdir = workdir
        self.run_id = run_id
        self.running: list[subprocess.Popen] = []

    def spawn(self, name: str, argv: list[str], cwd: Path, env: dict) -> subprocess.Popen:
        with (self.workdir / f"{name}.log").open("ab") as logfile:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**env, RUN_MARKER: self.run_id},
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running.append(proc)
        return proc

    def terminate(self, proc: subprocess.Popen) -> None:
        """SIGTERM to the process itself, as a platform sends it to a container's first process.

        gunicorn's master then lets its workers finish their in-flight requests, and Celery's
        warm shutdown lets its pool finish the current task. Signalling the whole group would
        kill Celery's pool children in the middle of a task.
        """
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)

    def stop(self, proc: subprocess.Popen, timeout: float = 15.0) -> None:
        """terminate(), then SIGKILL the whole group after timeout (and any leftover of it)."""
        if proc.poll() is None:
            self.terminate(proc)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # children left behind by a dead parent
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.running)):
            self.stop(proc, timeout=10)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def run_checked(argv: list[str], cwd: Path, env: dict, timeout: float, what: str):
    try:
        result = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DrillError(f"{what}: no answer within {timeout:g} s") from exc
    if result.returncode:
        raise DrillError(f"{what} failed ({result.returncode}): {result.stderr[-3000:]}")
    return result


def redis_wait(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise DrillError(f"redis-server on {port} did not answer within {timeout:g} s")


def service_wait(port: int, version: str, proc: subprocess.Popen, timeout: float) -> float:
    """Seconds until /healthz reports `version` and /readyz is 200."""
    started = time.monotonic()
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                raise DrillError(f"gunicorn ({version}) exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                health = client.get(f"{base}/healthz")
                if (
                    health.status_code == 200
                    and health.json().get("version") == version
                    and client.get(f"{base}/readyz").status_code == 200
                ):
                    return time.monotonic() - started
            time.sleep(0.05)
    raise DrillError(f"gunicorn ({version}) not ready within {timeout:g} s")


# --- HAProxy -------------------------------------------------------------------------------------


def haproxy_binary() -> str:
    """The haproxy executable; scripts/ensure_haproxy.sh installs Debian's package when missing."""

    def find() -> str | None:
        return shutil.which("haproxy") or next(
            (p for p in ("/usr/sbin/haproxy",) if os.access(p, os.X_OK)), None
        )

    found = find()
    if found:
        return found
    log("haproxy missing: scripts/ensure_haproxy.sh")
    try:
        result = subprocess.run(
            ["bash", str(ENSURE_HAPROXY)], capture_output=True, text=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DrillError("scripts/ensure_haproxy.sh: not done in 600 s") from exc
    found = find()
    if not found:
        raise DrillError(f"haproxy is missing and was not installed: {result.stderr[-2000:]}")
    return found


class Proxy:
    """HAProxy running infra/haproxy/haproxy.cfg on loopback; blue = old release, green = new.

    Driven like production, over the runtime API on its stats socket (`set server app/blue
    state maint`, `show servers state`, `show stat`).
    """

    def __init__(
        self, binary: str, workdir: Path, port: int, blue: int, green: int, inter_ms: int
    ) -> None:
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.socket = workdir / "haproxy.sock"
        self.env = {
            **clean_env(),
            "CODEX_HAPROXY_LOOPBACK": "1",
            "CODEX_HAPROXY_BIND": f"127.0.0.1:{port}",
            "CODEX_HAPROXY_SOCKET": str(self.socket),
            "CODEX_BLUE": f"127.0.0.1:{blue}",
            "CODEX_GREEN": f"127.0.0.1:{green}",
            "CODEX_HAPROXY_CHECK_HOST": "127.0.0.1",
            "CODEX_HAPROXY_CHECK_INTER": f"{inter_ms}ms",
        }
        self.proc: subprocess.Popen | None = None

    def version(self) -> str:
        out = subprocess.run(
            [self.binary, "-v"], capture_output=True, text=True, timeout=10, check=False
        )
        return " ".join(out.stdout.split()[:3])

    def start(self, procs: Processes, timeout: float) -> None:
        argv = [self.binary, "-f", str(HAPROXY_CFG)]
        checked = subprocess.run(
            [*argv, "-c", "-q"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if checked.returncode:
            raise DrillError(f"haproxy -c {HAPROXY_CFG}: {checked.stdout}{checked.stderr}")
        self.proc = procs.spawn("haproxy", [*argv, "-db"], self.workdir, self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DrillError(f"haproxy exited: {procs.log_tail('haproxy')}")
            with contextlib.suppress(OSError):
                self.cmd("show info")
                return
            time.sleep(0.05)
        raise DrillError(f"haproxy's runtime API did not answer within {timeout:g} s")

    def cmd(self, line: str) -> str:
        """One runtime API command; its answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def set_state(self, server: str, state: str) -> None:
        answer = self.cmd(f"set server {BACKEND}/{server} state {state}").strip()
        if answer:
            raise DrillError(f"haproxy: set server {server} state {state}: {answer}")

    def serving(self, server: str) -> bool:
        """UP (operational state 2, running) and in no administrative state (maintenance)."""
        for line in self.cmd(f"show servers state {BACKEND}").splitlines():
            fields = line.split()
            if len(fields) > 6 and not line.startswith("#") and fields[3] == server:
                return fields[5] == "2" and fields[6] == "0"
        raise DrillError(f"haproxy: no server {BACKEND}/{server}")

    def sessions(self, server: str) -> int:
        """The server's current sessions (`show stat`, scur): requests it is still serving."""
        rows = csv.DictReader(self.cmd("show stat").lstrip("# ").splitlines())
        for row in rows:
            if row.get("pxname") == BACKEND and row.get("svname") == server:
                return int(row.get("scur") or 0)
        raise DrillError(f"haproxy: no stats for {BACKEND}/{server}")

    def wait_serving(
        self, server: str, serving: bool, timeout: float, proc: subprocess.Popen | None = None
    ) -> float:
        """Seconds until HAProxy's own checks put `server` in (or out of) service."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.serving(server) == serving:
                return time.monotonic() - started
            if proc is not None and proc.poll() is not None:
                raise DrillError(f"the process behind {server} exited with {proc.returncode}")
            time.sleep(0.02)
        word = "in" if serving else "out of"
        raise DrillError(f"haproxy: {server} not {word} service within {timeout:g} s")

    def wait_idle(self, server: str, timeout: float) -> float:
        """Seconds until a server in maintenance has finished its in-flight requests."""
        started = time.monotonic()
        while self.sessions(server):
            if time.monotonic() - started > timeout:
                raise DrillError(f"haproxy: {server} still busy after {timeout:g} s")
            time.sleep(0.02)
        return time.monotonic() - started


# --- load ----------------------------------------------------------------------------------------


def signed_headers(key_id: str, secret: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks signature + X-Codex-Key-Id (docs/api.md), fresh for every attempt."""
    msg_id, ts = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Codex-Key-Id": key_id,
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def event(key: str, n: int) -> dict:
    return {
        "idempotency_key": key,
        "type": "drill.sale",
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "source": "upgrade-drill",
        "payload": {"n": n, "amount": "1.25", "currency": "EUR"},
    }


@dataclass
class Tenant:
    slug: str
    tenant_id: str
    key_id: str
    secret: str


class Recorder:
    """Every attempt (time, status, phase) and every key answered 2xx, shared by the threads."""

    def __init__(self, retry_cap: float = 1.0) -> None:
        self.lock = threading.Lock()
        self.retry_cap = retry_cap
        self.retried: Counter = Counter()  # attempts answered with something retried, by status
        self.phase = "fill"
        self.attempts: list[tuple[float, str, bool, str]] = []  # (t, status, forbidden, phase)
        self.answered: dict[tuple[str, str], int | None] = {}
        self.abandoned: list[tuple[str, str]] = []
        self.refused: Counter = Counter()

    def attempt(self, status: str, forbidden: bool, phase: str) -> None:
        """One answer, under the drill's phase when its request was sent.

        A request sent before the migration and answered during it counts as sent before.
        """
        with self.lock:
            self.attempts.append((time.monotonic(), status, forbidden, phase))

    def accepted(self, tenant: Tenant, items: list[tuple[str, int | None]]) -> None:
        with self.lock:
            for key, event_id in items:
                self.answered[(tenant.tenant_id, key)] = event_id


def backoff(attempt: int, retry_after: str | None, cap: float) -> float:
    """Full jitter (SDK codex_sdk.retry), at least Retry-After; at most `cap` for the drill.

    The SDK waits the whole Retry-After (HAProxy's and the app's say 5 s); the drill caps it so
    that its longest stall measures the cutover, not the clients' patience.
    """
    jitter = random.uniform(0.0, min(1.0, 0.05 * 2 ** min(attempt, 10)))
    wait = float(retry_after) if retry_after and retry_after.isdigit() else 0.0
    return min(cap, max(wait, jitter))


def send(
    client: httpx.Client,
    url: str,
    tenant: Tenant,
    events: list[dict],
    rec: Recorder,
    deadline_s: float,
) -> bool:
    """POST one event (or a batch) until it is answered 2xx; False when it gave up."""
    batch = len(events) > 1
    body = json.dumps({"events": events} if batch else events[0]).encode()
    started = time.monotonic()
    attempt = 0
    while True:
        retry_after = None
        phase = rec.phase
        try:
            response = client.post(
                url, content=body, headers=signed_headers(tenant.key_id, tenant.secret, body)
            )
        except httpx.ConnectError:
            status = "connect_error"
        except httpx.TimeoutException:
            status = "timeout"
        except httpx.TransportError:
            status = "transport_error"  # e.g. a keep-alive connection closed by a stopping server
        else:
            status = str(response.status_code)
            retry_after = response.headers.get("Retry-After")
            code = response.status_code
            rec.attempt(status, code >= 500 and not (code == 503 and retry_after), phase)
            if 200 <= code < 300:
                doc = response.json()
                if batch:
                    items = [
                        (r["idempotency_key"], r["id"])
                        for r in doc["results"]
                        if r["status"] in ("accepted", "duplicate")
                    ]
                    if len(items) != len(events):
                        with rec.lock:
                            rec.refused[f"batch item {doc['results']}"] += 1
                else:
                    items = [(events[0]["idempotency_key"], doc.get("id"))]
                rec.accepted(tenant, items)
                return True
            if code < 500 and code != 429:
                with rec.lock:
                    rec.refused[f"{code} {response.text[:200]}"] += 1
                return False
        if status in ("connect_error", "timeout", "transport_error"):
            rec.attempt(status, False, phase)
        with rec.lock:
            rec.retried[status] += 1
        if time.monotonic() - started > deadline_s:
            with rec.lock:
                rec.abandoned.append((tenant.slug, events[0]["idempotency_key"]))
            return False
        time.sleep(backoff(attempt, retry_after, rec.retry_cap))
        attempt += 1


def fill(port: int, tenants: list[Tenant], per_tenant: int, batch: int, rec: Recorder) -> None:
    """per_tenant events per tenant: half (at most 100) one by one, the rest in batches."""
    url = f"http://127.0.0.1:{port}/v1/events"
    errors: list[BaseException] = []

    def one(tenant: Tenant) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(15.0, connect=2.0)) as client:
                singles = min(per_tenant // 2, 100)
                for n in range(singles):
                    send(client, url, tenant, [event(f"fill-{n}", n)], rec, 60)
                for start in range(singles, per_tenant, batch):
                    evs = [
                        event(f"fill-{n}", n) for n in range(start, min(per_tenant, start + batch))
                    ]
                    send(client, url, tenant, evs, rec, 60)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(t,), daemon=True) for t in tenants]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if errors:
        raise DrillError(f"fill failed: {errors[0]!r}")


class Load:
    """Steady signed load: each thread sends singles (every 5th request a batch of 5)."""

    def __init__(self, port: int, tenants: list[Tenant], threads: int, rate: float, rec: Recorder):
        self.url = f"http://127.0.0.1:{port}/v1/events"
        self.tenants, self.rate, self.rec = tenants, rate, rec
        self.stop_event = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]
        self.requests = 0
        self.errors: list[BaseException] = []
        self.started = self.stopped = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        for t in self.threads:
            t.start()

    def stop(self, timeout: float) -> None:
        self.stopped = time.monotonic()
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=timeout)

    def _run(self, index: int) -> None:
        n = 0
        interval = 1.0 / self.rate
        try:
            with httpx.Client(timeout=httpx.Timeout(15.0, connect=2.0)) as client:
                while not self.stop_event.is_set():
                    began = time.monotonic()
                    tenant = self.tenants[(index + n) % len(self.tenants)]
                    size = 5 if n % 5 == 4 else 1
                    evs = [event(f"load-{index}-{n}-{j}", n) for j in range(size)]
                    send(client, self.url, tenant, evs, self.rec, 60)
                    with self.rec.lock:
                        self.requests += 1
                    n += 1
                    self.stop_event.wait(max(0.0, interval - (time.monotonic() - began)))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.errors.append(exc)


def longest_stall(rec: Recorder, start: float, end: float) -> tuple[float, float]:
    """(seconds, start of it) of the longest interval in [start, end] without a 2xx answer."""
    ok = sorted(t for t, status, _, _ in rec.attempts if status.startswith("2") and start <= t)
    marks = [start, *[t for t in ok if t <= end], end]
    gaps = [(b - a, a) for a, b in itertools.pairwise(marks)]
    return max(gaps) if gaps else (0.0, start)


# --- verification --------------------------------------------------------------------------------


def ledger_check(db: Database, rec: Recorder) -> dict:
    """As the owner, in the explicit system scope: every 2xx key in the ledger exactly once."""
    with db.owner_connect() as conn, conn.transaction():
        conn.execute("SELECT set_config('app.system_scope', 'upgrade-drill', true)")
        ledger = {
            (str(t), k): (n, lo, hi)
            for t, k, n, lo, hi in conn.execute(
                "SELECT tenant_id, idempotency_key, count(*), min(id), max(id)"
                " FROM ingest_event GROUP BY 1, 2"
            )
        }
        try:
            with conn.transaction():
                idem = {
                    (str(t), k): event_id
                    for t, k, event_id in conn.execute(
                        "SELECT tenant_id, idempotency_key, event_id FROM ingest_idempotency"
                    )
                }
        except psycopg.errors.UndefinedTable:
            idem = None
    answered = rec.answered
    lost = [key for key in answered if key not in ledger]
    duplicates = [key for key, (n, _, _) in ledger.items() if n > 1]
    id_changed = [
        key
        for key, event_id in answered.items()
        if key in ledger and event_id is not None and ledger[key][1] != event_id
    ]
    idem_missing = [key for key in answered if idem is None or key not in idem]
    idem_wrong = [
        key for key, (_, lo, _) in ledger.items() if idem is not None and idem.get(key) != lo
    ]
    return {
        "keys_2xx": len(answered),
        "ledger_rows": sum(n for n, _, _ in ledger.values()),
        "lost": len(lost),
        "duplicates": len(duplicates),
        "id_changed": len(id_changed),
        "idempotency_rows": None if idem is None else len(idem),
        "idempotency_missing": len(idem_missing),
        "idempotency_mismatched": len(idem_wrong),
        "in_ledger_not_answered_2xx": len([k for k in ledger if k not in answered]),
        "lost_sample": [list(k) for k in lost[:5]],
        "duplicates_sample": [list(k) for k in duplicates[:5]],
    }


# --- the drill -----------------------------------------------------------------------------------


class Drill:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.run_id = secrets.token_hex(4)
        self.procs = Processes(workdir, self.run_id)
        self.port = args.port or free_port()  # HAProxy: the only port clients talk to
        self.blue_port = free_port()  # the old release's gunicorn
        self.green_port = free_port()  # the new release's gunicorn
        self.redis_port = free_port()
        self.result: dict = {}

    def env(self, db: Database, version: str, name: str, port: int = 0) -> dict[str, str]:
        metrics = self.workdir / "metrics" / name
        metrics.mkdir(parents=True, exist_ok=True)
        env = clean_env()
        env.update(
            {
                "CODEX_ENV": "development",
                "DATABASE_URL": db.owner_url(),
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "SECRET_KEY": self.secret_key,
                "CODEX_SECRETS_KEY": self.secrets_key,
                "CODEX_DATA_DIR": str(self.workdir / "data"),
                "CODEX_STATIC_ROOT": str(self.workdir / "static"),
                "CODEX_INGEST_RATE_PER_SEC": "100000",
                "CODEX_VERSION": version,
                "CODEX_COMMIT": version,
                "BIND": f"127.0.0.1:{port or self.blue_port}",
                "WEB_CONCURRENCY": "2",
                "GUNICORN_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT_S),
                "LOG_LEVEL": "WARNING",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def manage(self, tree: Path, env: dict, *argv: str, timeout: float | None = None):
        return run_checked(
            [str(PYTHON), "manage.py", *argv],
            tree,
            env,
            timeout or self.args.step_timeout,
            f"manage.py {argv[0]} ({tree.name})",
        )

    def start_web(
        self, tree: Path, db: Database, version: str, port: int
    ) -> tuple[subprocess.Popen, float]:
        """gunicorn (gunicorn.conf.py, 2 workers) of `tree` on `port`; seconds until it is ready.

        Ready as seen directly on its port (/healthz reports `version`, /readyz 200); HAProxy
        decides on its own, with its health check, when it takes traffic.
        """
        web = self.procs.spawn(
            f"web-{version}",
            [str(PYTHON), "-m", "gunicorn", "-c", "gunicorn.conf.py", "codex.wsgi:application"],
            tree,
            self.env(db, version, f"web-{version}", port),
        )
        return web, round(service_wait(port, version, web, self.args.step_timeout), 2)

    def start_worker(self, tree: Path, db: Database, version: str) -> subprocess.Popen:
        return self.procs.spawn(
            f"worker-{version}",
            [
                *(str(PYTHON), "-m", "celery", "-A", "codex", "worker", "--loglevel", "WARNING"),
                *("--concurrency", "1", "--without-gossip", "--without-mingle"),
            ],
            tree,
            self.env(db, version, f"worker-{version}"),
        )

    def worker_check(self, worker: subprocess.Popen, version: str) -> None:
        if worker.poll() is not None:
            raise DrillError(
                f"celery worker ({version}) exited: {self.procs.log_tail(f'worker-{version}')}"
            )

    def migrate_new(self, tree: Path, db: Database) -> dict:
        """The new code's `manage.py migrate --no-input` as the owner, pg_locks watched."""
        started = time.monotonic()
        with LockWatch(db) as watch:
            try:
                out = subprocess.run(
                    [str(PYTHON), "manage.py", "migrate", "--no-input", "-v", "2"],
                    cwd=tree,
                    env=self.env(db, "new", "manage-new"),
                    capture_output=True,
                    text=True,
                    timeout=self.args.migrate_timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise DrillError(f"migrate: not done in {self.args.migrate_timeout:g} s") from exc
        (self.workdir / "migrate-new.log").write_text(out.stdout + out.stderr)
        return {
            "seconds": round(time.monotonic() - started, 2),
            "returncode": out.returncode,
            "applied": [
                {"name": name, "seconds": float(s)} for name, s in APPLIED_RE.findall(out.stdout)
            ],
            "ledger_exclusive_lock_s": round(watch.locked_s, 2),
            "ledger_lock_waiters_max": watch.waiting_max,
        }

    def run(self) -> dict:
        args = self.args
        old_rev = git("rev-parse", "--verify", f"{args.from_rev}^{{commit}}")
        if args.to == "worktree":
            new_label, new_tree = f"worktree@{git('rev-parse', '--short', 'HEAD')}", ROOT
        else:
            new_rev = git("rev-parse", "--verify", f"{args.to}^{{commit}}")
            new_label, new_tree = new_rev[:12], self.workdir / "new"
            export_tree(new_rev, new_tree)
        old_tree = self.workdir / "old"
        export_tree(old_rev, old_tree)
        proxy = Proxy(
            haproxy_binary(),
            self.workdir,
            self.port,
            self.blue_port,
            self.green_port,
            args.check_inter_ms,
        )
        self.secret_key = secrets.token_urlsafe(50)
        self.secrets_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        admin_url = admin_url_find(args.admin_url)
        run_id = self.run_id
        db = Database(admin_url, name=f"codex_drill_{run_id}", owner=f"codex_drill_owner_{run_id}")
        r = self.result
        r.update(
            {
                "from": old_rev[:12],
                "to": new_label,
                "mode": "online" if args.online else "drain",
                "run_id": run_id,
                "port": self.port,
                "backends": {"blue (old)": self.blue_port, "green (new)": self.green_port},
                "haproxy": proxy.version(),
                "database": db.name,
                "owner": db.owner,
            }
        )
        rec = Recorder(retry_cap=args.retry_cap)
        load: Load | None = None
        try:
            db.create()
            r["postgres"] = f"{db.server} ({conninfo_to_dict(admin_url).get('host', '')})"
            log(f"PostgreSQL {r['postgres']}: database {db.name}, owner {db.owner} (no superuser)")
            self.procs.spawn(
                "redis",
                [
                    *(str(REDIS_SERVER), "--port", str(self.redis_port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
                ],
                self.workdir,
                clean_env(),
            )
            redis_wait(self.redis_port, 10)

            old_env = self.env(db, "old", "manage-old")
            started = time.monotonic()
            self.manage(old_tree, old_env, "migrate", "--no-input", timeout=args.step_timeout * 3)
            log(f"old release {old_rev[:12]} migrated in {time.monotonic() - started:.1f} s")
            tenants = []
            for i in range(args.tenants):
                out = self.manage(old_tree, old_env, "provision_tenant", f"drill-{i}", "--json")
                doc = json.loads(out.stdout)
                key = doc["keys"][0]
                tenants.append(Tenant(doc["slug"], doc["tenant_id"], key["key_id"], key["secret"]))
            log(f"{len(tenants)} tenants provisioned with the old code")

            old_worker = self.start_worker(old_tree, db, "old")
            old_web, r["old_ready_s"] = self.start_web(old_tree, db, "old", self.blue_port)
            self.worker_check(old_worker, "old")
            proxy.start(self.procs, args.step_timeout)
            proxy.wait_serving("blue", True, args.step_timeout, old_web)
            proxy.wait_serving("green", False, args.step_timeout)
            log(
                f"{r['haproxy']} on 127.0.0.1:{self.port} ({HAPROXY_CFG.relative_to(ROOT)}): "
                f"blue = old gunicorn (2 workers) on {self.blue_port}, green idle on "
                f"{self.green_port}; old worker running"
            )
            started = time.monotonic()
            fill(self.port, tenants, args.events, args.batch, rec)
            r["fill_s"] = round(time.monotonic() - started, 2)
            log(f"fill: {len(rec.answered)} events answered 2xx in {r['fill_s']} s")

            rec.phase = "old"
            load = Load(self.port, tenants, args.threads, args.rate, rec)
            load.start()
            time.sleep(args.before)

            upgrade_started = time.monotonic()
            timeline: dict[str, float] = {}
            r["timeline_s"] = timeline

            def mark(name: str) -> None:
                timeline[name] = round(time.monotonic() - upgrade_started, 2)

            def stop_old_worker() -> None:
                """The old worker's warm shutdown (it finishes its current task) and exit.

                It may be writing to the ledger, so it is gone before the migration. It is not
                on the request path: ingestion goes on, enrichment waits for the new worker.
                """
                mark("old_worker_stop")
                self.procs.stop(old_worker, timeout=GRACEFUL_TIMEOUT_S + 5)
                mark("old_worker_stopped")
                r["old_worker_stop_s"] = round(
                    timeline["old_worker_stopped"] - timeline["old_worker_stop"], 2
                )

            def take_old_web_out() -> None:
                """blue in maintenance; its in-flight requests finish; the old gunicorn stops."""
                rec.phase = "drain"
                mark("old_maint")
                proxy.set_state("blue", "maint")
                r["old_drain_s"] = round(proxy.wait_idle("blue", GRACEFUL_TIMEOUT_S + 5), 2)
                mark("old_drained")
                # Out of rotation with nothing in flight, the old web touches nothing any more
                # (its idle connections hold no lock): its exit is off the critical path.
                self.procs.terminate(old_web)

                def exited() -> None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        old_web.wait(timeout=GRACEFUL_TIMEOUT_S + 5)
                        mark("old_web_exited")

                threading.Thread(target=exited, daemon=True).start()

            def bring_new_in() -> subprocess.Popen:
                """New gunicorn on green; HAProxy's health check puts it in service."""
                mark("new_start")
                new_web, boot_s = self.start_web(new_tree, db, "new", self.green_port)
                r["new_boot_s"] = round(boot_s, 2)
                mark("new_listening")
                proxy.wait_serving("green", True, args.step_timeout, new_web)
                mark("new_in_service")
                r["new_check_s"] = round(timeline["new_in_service"] - timeline["new_listening"], 2)
                return new_web

            def migrate() -> None:
                rec.phase = "migrate"
                log(f"migrating with the new code ({new_label}) as {db.owner}, {r['mode']}")
                mark("migrate_start")
                # The rows 0005 copies: every key answered so far (nothing lost or twice, checked
                # at the end); exact in the drain mode, where nothing is written meanwhile.
                rows = len(rec.answered)
                r["migrate"] = self.migrate_new(new_tree, db)
                mark("migrate_end")
                locked = r["migrate"]["ledger_exclusive_lock_s"]
                r["migrate"]["ledger_rows_before"] = rows
                r["migrate"]["lock_us_per_row"] = round(locked * 1e6 / rows, 1) if rows else None
                rec.phase = "switch"
                if r["migrate"]["returncode"]:
                    raise DrillError(f"new migrate failed: {self.procs.log_tail('migrate-new')}")
                log(
                    f"migrate done in {r['migrate']['seconds']} s (ledger exclusively locked "
                    f"{r['migrate']['ledger_exclusive_lock_s']} s)"
                )

            if args.online:
                migrate()
                bring_new_in()
                take_old_web_out()
                stop_old_worker()
                r["maintenance_s"] = 0.0  # green served before blue went to maintenance
            else:
                stop_old_worker()
                take_old_web_out()
                log(f"blue in maintenance, drained in {r['old_drain_s']} s; old web stopping")
                migrate()
                bring_new_in()
                r["maintenance_s"] = round(timeline["new_in_service"] - timeline["old_maint"], 2)
            # The worker is not on the request path: it starts once the new web serves.
            new_worker = self.start_worker(new_tree, db, "new")
            self.procs.stop(old_web)  # normally long gone
            log(
                f"green (new) in service at t+{timeline['new_in_service']} s; "
                f"maintenance window {r['maintenance_s']} s"
            )
            rec.phase = "new"
            time.sleep(args.after)
            self.worker_check(new_worker, "new")
            load.stop(timeout=90)
            rec.phase = "done"
            if load.errors:
                raise DrillError(f"load thread failed: {load.errors[0]!r}")
            stall, stall_at = longest_stall(rec, load.started, load.stopped)
            r["load"] = {
                "seconds": round(load.stopped - load.started, 2),
                "threads": args.threads,
                "requests": load.requests,
                "longest_stall_s": round(stall, 2),
                "longest_stall_from_upgrade_start_s": round(stall_at - upgrade_started, 2),
            }
            forbidden = [t - upgrade_started for t, _, bad, _ in rec.attempts if bad]
            if forbidden:
                timeline["first_forbidden_5xx"] = round(min(forbidden), 2)
                timeline["last_forbidden_5xx"] = round(max(forbidden), 2)
        finally:
            if load is not None and not load.stop_event.is_set():
                load.stop(timeout=30)
            self.procs.stop_all()
            try:
                if "load" in r or "migrate" in r:
                    r["ledger"] = ledger_check(db, rec)
            except psycopg.Error as exc:
                r["ledger_error"] = str(exc)
            finally:
                try:
                    db.drop()
                except psycopg.Error as exc:
                    r["cleanup_error"] = f"{db.name} / {db.owner} not dropped: {exc}"
            r["statuses"] = dict(sorted(Counter(s for _, s, _, _ in rec.attempts).items()))
            by_phase: dict[str, Counter] = {}
            for _, status, _, phase in rec.attempts:
                by_phase.setdefault(phase, Counter())[status] += 1
            r["statuses_by_phase"] = {p: dict(sorted(c.items())) for p, c in by_phase.items()}
            r["retried"] = dict(sorted(rec.retried.items()))
            r["forbidden_5xx"] = sum(1 for _, _, forbidden, _ in rec.attempts if forbidden)
            r["forbidden_5xx_by_phase"] = dict(
                Counter(phase for _, _, forbidden, phase in rec.attempts if forbidden)
            )
            r["refused"] = dict(rec.refused.most_common(5))
            r["abandoned"] = len(rec.abandoned)
        return r


def verdict(r: dict) -> list[str]:
    failures = []
    ledger = r.get("ledger") or {}
    for name in ("lost", "duplicates", "id_changed", "idempotency_missing"):
        if ledger.get(name, 1):
            failures.append(f"{name} = {ledger.get(name)}")
    if r.get("forbidden_5xx"):
        failures.append(f"forbidden 5xx = {r['forbidden_5xx']}")
    if r.get("abandoned"):
        failures.append(f"abandoned requests = {r['abandoned']}")
    if r.get("refused"):
        failures.append(f"refused requests: {r['refused']}")
    for name in ("error", "ledger_error", "cleanup_error"):
        if r.get(name):
            failures.append(f"{name}: {r[name]}")
    return failures


def table(r: dict) -> str:
    ledger = r.get("ledger") or {}
    migrate = r.get("migrate") or {}
    load = r.get("load") or {}
    rows = [
        ("from -> to", f"{r.get('from')} -> {r.get('to')}"),
        ("PostgreSQL", r.get("postgres", "?")),
        ("proxy", f"{r.get('haproxy', '?')} on 127.0.0.1:{r.get('port', '?')}"),
        ("mode", r.get("mode", "?")),
        ("old worker's warm shutdown", f"{r.get('old_worker_stop_s', '?')} s"),
        ("maintenance (blue maint -> green in service)", f"{r.get('maintenance_s', '?')} s"),
        ("  blue drained (its sessions -> 0)", f"{r.get('old_drain_s', '?')} s"),
        ("  migrate (new code, owner)", f"{migrate.get('seconds', '?')} s"),
        (
            "    ledger exclusively locked",
            f"{migrate.get('ledger_exclusive_lock_s', '?')} s for "
            f"{migrate.get('ledger_rows_before', 0):,} rows "
            f"({migrate.get('lock_us_per_row', '?')} us a row)",
        ),
        *[(f"    {a['name']}", f"{a['seconds']} s") for a in migrate.get("applied", [])],
        ("  new gunicorn boot (ready on its port)", f"{r.get('new_boot_s', '?')} s"),
        ("  -> HAProxy check puts it in service", f"{r.get('new_check_s', '?')} s"),
        *[
            (f"  t+{v} s", k)
            for k, v in sorted((r.get("timeline_s") or {}).items(), key=lambda kv: kv[1])
        ],
        ("load", f"{load.get('requests', '?')} requests in {load.get('seconds', '?')} s"),
        ("longest stall without a 2xx", f"{load.get('longest_stall_s', '?')} s"),
        ("  from (s after the upgrade began)", load.get("longest_stall_from_upgrade_start_s", "?")),
        ("statuses", ", ".join(f"{k}: {v}" for k, v in r.get("statuses", {}).items())),
        ("retried by the clients", ", ".join(f"{k}: {v}" for k, v in r.get("retried", {}).items())),
        ("5xx except 503+Retry-After", r.get("forbidden_5xx", "?")),
        ("keys answered 2xx", ledger.get("keys_2xx", "?")),
        ("ledger rows", ledger.get("ledger_rows", "?")),
        ("lost", ledger.get("lost", "?")),
        ("duplicates", ledger.get("duplicates", "?")),
        ("id changed", ledger.get("id_changed", "?")),
        ("missing in ingest_idempotency", ledger.get("idempotency_missing", "?")),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--from",
        dest="from_rev",
        default=f"{PARTITIONED_LEDGER}^",
        help="the previous release (default: the commit before the partitioned ledger)",
    )
    p.add_argument("--to", default="worktree", help="'worktree' (default) or a commit")
    p.add_argument("--admin-url", help="a superuser URL (default: system PostgreSQL or embedded)")
    p.add_argument("--tenants", type=int, default=3)
    p.add_argument(
        "--events",
        type=int,
        default=200,
        help="fill events per tenant (half, at most 100, one by one)",
    )
    p.add_argument("--batch", type=int, default=20, help="fill batch size (at most 500)")
    p.add_argument("--threads", type=int, default=3, help="load threads")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second per thread")
    p.add_argument("--before", type=float, default=3.0, help="seconds of load before migrate")
    p.add_argument("--after", type=float, default=5.0, help="seconds of load on the new code")
    p.add_argument("--step-timeout", type=float, default=60.0, help="bound of each other wait")
    p.add_argument("--migrate-timeout", type=float, default=600.0)
    p.add_argument(
        "--online",
        action="store_true",
        help="migrate while the old release serves (expand-shaped migrations only; across "
        "ingest 0005 this shows the old release's 500s and fails). Default: the drain cutover",
    )
    # The drain cutover is the default; --stop-first was its name before HAProxy.
    p.add_argument("--stop-first", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--retry-cap",
        type=float,
        default=1.0,
        help="longest wait between a client's retries, Retry-After included (the SDK waits all)",
    )
    p.add_argument(
        "--check-inter-ms",
        type=int,
        default=250,
        help="HAProxy's health check interval for the drill (production: 2 s)",
    )
    p.add_argument("--port", type=int, default=0, help="HAProxy's port (default: a free one)")
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = p.parse_args(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    tmp = Path(tempfile.mkdtemp(prefix="upgrade-drill-"))
    drill = Drill(args, tmp)
    code = 0
    try:
        drill.run()
    except DrillError as exc:
        drill.result["error"] = str(exc)
        code = 2
    except KeyboardInterrupt:
        drill.result["error"] = "interrupted"
        code = 130
    except Exception as exc:  # noqa: BLE001 - reported like a DrillError, with the JSON
        drill.result["error"] = f"{type(exc).__name__}: {exc}"
        code = 2
    finally:
        if args.keep or code:
            log(f"logs kept in {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    r = drill.result
    failures = verdict(r)
    r["failures"] = failures
    r["passed"] = not failures
    print(table(r), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(r, indent=2) + "\n")
    for failure in failures:
        log(f"FAIL {failure}")
    log("PASS" if not failures else "FAIL")
    return code or (0 if not failures else 1)


if __name__ == "__main__":
    sys.exit(main())
