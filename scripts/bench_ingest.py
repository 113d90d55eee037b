"""Load benchmark: the service against bare Django and a minimal ingest view, pooled, by tenants.

    python scripts/bench_ingest.py [--rounds 3] [--duration 8] [--sustain 20] [--json out.json]
                                   [--only PARTS | --skip PARTS] [--sweep-tenants 10000]
                                   [--sweep-keys 10] [--sweep-prime 10000] [--profile DIR]

One run, one machine, the same gunicorn worker class, workers and threads for every server. PARTS
(comma-separated; all by default):

  baselines  (a) bare Django answering 204 (scripts/bench/minimal_app.py /bare) and (b) a minimal
             ingest view: HMAC check, JSON parse, one INSERT .. ON CONFLICT DO NOTHING RETURNING,
             commit, on its own table (/minimal): the floor for durable ingest on this stack;
  service    (c) the service (gunicorn.conf.py, codex.wsgi) on a fresh database,
             CODEX_ENV=production, with the benchmark tenant's rate limit lifted;
  pgbouncer  the minimal view's and the service's rows again, DATABASE_URL through PgBouncer
             (Debian's, 1.18 here; started as scripts/pgbouncer_run.py does: transaction pooling,
             the app role's login, DATABASE_OWNER_URL direct, CODEX_DB_POOL_MODE=transaction);
             embedded PostgreSQL only;
  enrich     after each round's rows: the drain rate of the backlog the runs left (one Celery
             worker alone), then, with the worker running, a sustained single-event load and the
             seconds until every accepted event is in events_enriched;
  sweep      the service (its own gunicorn) with 1, 100 and 10,000 active tenants (one key each)
             and over 100,000 signing keys (10,000 tenants x 10): --sweep-tenants x --sweep-keys
             provisioned once per run in bulk (scripts/bench/tenants.py: the real encryption, a
             named system scope), single events with new idempotency keys, signed round-robin
             over the row's keys. The 1-tenant row is the bench tenant (limit lifted); the others
             keep the default ingestRatePerSec (50/s), which round-robin keeps them under (a
             tenant of the 100 gets ~1% of the requests; a warning says when it nears the limit).
             In round 1, before the rows past 100 tenants, each of the first --sweep-prime keys
             gets one request once ("first use": cold caches). Per row: req/s, p95, web CPU per
             request, the peak RSS of a worker during the row (round 1; rows run in this order)
             and how often the measured run used each key.

wrk (Debian's; installed when missing and root) replays pre-signed requests at concurrency 50
(each once: the service accepts a webhook-id once, so a list that wraps shows as non-2xx; every
list is signed again after its warm-up): single events with 20% unique keys, then 100-event batches
of new keys. Web workers' CPU comes from /proc. Prints a table per part of medians over the rounds
(each round's figures on stderr), then every ratio the performance issue asks for (service/minimal
single and batch, the sweep rows against one tenant, PgBouncer/direct). Uses DATABASE_URL/REDIS_URL
when set, else the embedded servers (CODEX_DATA_DIR picks their directory).
"""

from __future__ import annotations

import argparse
import base64
import collections
import functools
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent
LUA = ROOT / "scripts" / "bench" / "replay.lua"
CONCURRENCY = 50
WRK_THREADS = 2
BATCH = 100
DB_NAME = "codex_bench"


# --- servers and processes ---------------------------------------------------------------------


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_shape() -> tuple[str, int, int]:
    """(worker class, workers, threads) exactly as gunicorn.conf.py sets them for the service."""
    import runpy

    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    return conf["worker_class"], int(conf["workers"]), int(conf["threads"])


def ensure_wrk() -> str:
    """Path of wrk, installing Debian's package when missing and allowed."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (Debian package) ...", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is required: apt-get install wrk")
    return found


@dataclass
class Server:
    """A gunicorn master we started, and the peak RSS seen of any of its workers."""

    name: str
    port: int
    proc: subprocess.Popen
    peak_rss_kb: int = 0
    window_rss_kb: int = 0  # peak of any worker since the last window_start()
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def cpu_seconds(self) -> float:
        """User + system CPU of every worker so far: the live ones and those the master reaped.

        A worker that gunicorn replaced (max_requests) leaves the live list; its CPU moves into
        the master's cutime/cstime when reaped, so the sum never goes back (the live workers
        alone once gave a row a negative CPU per request).
        """
        total = 0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped workers
        except OSError:
            pass
        for pid in self.workers():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        return total / os.sysconf("SC_CLK_TCK")

    def sample_rss(self) -> None:
        while not self._stop.wait(0.25):
            for pid in self.workers():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            kb = int(line.split()[1])
                            self.peak_rss_kb = max(self.peak_rss_kb, kb)
                            self.window_rss_kb = max(self.window_rss_kb, kb)
                except OSError:
                    continue

    def window_start(self) -> None:
        """Start a new window for window_rss_kb (the peak RSS of one row)."""
        self.window_rss_kb = 0

    def stop(self) -> None:
        self._stop.set()
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, wait, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_gunicorn(name: str, args: list[str], env: dict, probe: str, port: int) -> Server:
    """Start gunicorn and wait until `probe` answers."""
    log = open(Path(tempfile.gettempdir()) / f"bench-{name}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), *args], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    server = Server(name, port, proc)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited at start; see {log.name}")
        try:
            urllib.request.urlopen(server.url + probe, timeout=2)
            break
        except urllib.error.HTTPError:
            break  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not answer within 60 s; see {log.name}") from None
            time.sleep(0.2)
    threading.Thread(target=server.sample_rss, daemon=True).start()
    return server


def profile_worker(server: Server, out: Path, seconds: float) -> subprocess.Popen:
    """py-spy record (GIL-holding samples, collapsed stacks) of one worker of `server`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            str(VENV_BIN / "py-spy"),
            "record",
            "--pid",
            str(server.workers()[0]),
            "--duration",
            str(max(1, round(seconds) - 1)),
            "--gil",
            "--rate",
            "400",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# --- database ----------------------------------------------------------------------------------


def with_db(url: str, name: str) -> str:
    """The same server URL naming database `name`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def pg(url: str):
    """An autocommit psycopg connection that sees every tenant's rows (system scope)."""
    import psycopg

    from codex.env import database_config

    cfg = database_config(url)
    conn = psycopg.connect(
        dbname=cfg["NAME"],
        user=cfg["USER"],
        password=cfg["PASSWORD"] or None,
        host=cfg["HOST"] or None,
        port=cfg["PORT"] or None,
        autocommit=True,
    )
    conn.execute("SELECT set_config('app.system_scope', 'bench', false)")
    return conn


def fresh_database(owner_url: str, name: str = DB_NAME) -> str:
    """Drop and create database `name` on the owner's server; return its URL."""
    with pg(with_db(owner_url, "postgres")) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [name],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_db(owner_url, name)


def unenriched(conn) -> int:
    """Accepted events not yet in events_enriched (all tenants)."""
    return conn.execute("SELECT count(*) FROM ingest_event WHERE enriched_at IS NULL").fetchone()[0]


# --- requests ----------------------------------------------------------------------------------


def _sign(secret: bytes, url_path: str, body: bytes) -> tuple[str, str, str]:
    """(webhook-id, webhook-timestamp, webhook-signature) of one POST, v2 (docs/api.md)."""
    msg_id = "msg_" + uuid.uuid4().hex
    ts = str(int(time.time()))
    content = f"v2\nPOST\n{url_path}\n\n{msg_id}\n{ts}\n".encode() + body
    mac = hmac.new(secret, content, hashlib.sha256).digest()
    return msg_id, ts, "v2," + base64.b64encode(mac).decode()


def _event(key: str) -> dict:
    return {
        "idempotency_key": key,
        "type": "sale.completed",
        "occurred_at": "2026-12-01T10:00:00Z",
        "source": "bench",
        "payload": {"amount": "12.50", "currency": "EUR", "store": "s-17", "items": 3},
    }


def write_requests(
    path: Path, *, key_id: str, secret: str, url_path: str, count: int, batch: int, unique: float
) -> None:
    """Pre-sign `count` requests into `path` (the format replay.lua reads).

    batch == 1: single events whose keys are drawn from count*unique keys (duplicates carry the
    same body, so they are duplicates, never conflicts). batch > 1: every event key is new.
    """
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    prefix = uuid.uuid4().hex[:12]
    rng = random.Random(prefix)
    with path.open("w") as out:
        if batch == 1:
            keys = max(1, int(count * unique))
            for _ in range(count):
                body = json.dumps(_event(f"{prefix}-{rng.randrange(keys)}")).encode()
                signature = _sign(raw, url_path, body)
                out.write("\t".join((url_path, key_id, *signature, body.decode())) + "\n")
        else:
            for i in range(count):
                events = [_event(f"{prefix}-{i}-{j}") for j in range(batch)]
                body = json.dumps({"events": events}).encode()
                signature = _sign(raw, url_path, body)
                out.write("\t".join((url_path, key_id, *signature, body.decode())) + "\n")


@dataclass
class Run:
    """One wrk run's figures."""

    rps: float
    events_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int
    wrapped: bool
    cpu_ms: float = float("nan")  # web workers' CPU per request


def wrk(wrk_bin: str, url: str, file: Path, seconds: float, lines: int, batch: int) -> Run:
    """Drive `url` with the requests in `file` for `seconds` at concurrency 50."""
    out = subprocess.run(
        [
            wrk_bin,
            f"-t{WRK_THREADS}",
            f"-c{CONCURRENCY}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
            "--",
            str(file),
            str(WRK_THREADS),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"wrk failed: {out.stderr[-2000:]}")
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    seconds_run = doc["duration_us"] / 1e6
    rps = doc["requests"] / seconds_run
    return Run(
        rps=rps,
        events_s=rps * batch,
        p50_ms=doc["p50_us"] / 1000,
        p95_ms=doc["p95_us"] / 1000,
        p99_ms=doc["p99_us"] / 1000,
        requests=doc["requests"],
        non2xx=doc["non2xx"],
        socket_errors=doc["socket_errors"],
        wrapped=doc["requests"] > lines,
    )


# --- setup of the service's database -------------------------------------------------------------


def setup_tenant() -> None:
    """(--setup, in the service's environment) provision `bench`, lift its limit, print a key."""
    import django

    django.setup()
    from flags.services import flag_update
    from tenants.selectors import tenant_get
    from tenants.services.keys import signing_key_create
    from tenants.services.tenants import tenant_provision

    result = tenant_provision(slug="bench", name="Benchmark tenant", actor="bench")
    flag_update(
        tenant_id=result.tenant_id,
        values={"ingestRatePerSec": 100_000},
        actor="bench",
        via="cli",
        reason="benchmark: no rate limit",
    )
    key = signing_key_create(tenant=tenant_get(slug="bench"))
    print(json.dumps({"key_id": key.key_id, "secret": key.secret}))


def service_env(db_url: str, redis_url: str, tmp: Path, queue: str) -> dict:
    """The environment of the service's web and worker processes: production settings."""
    from cryptography.fernet import Fernet

    metrics = tmp / "metrics"
    (metrics / "web").mkdir(parents=True, exist_ok=True)
    (metrics / "worker").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        CODEX_ENV="production",
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        SECRET_KEY=uuid.uuid4().hex + uuid.uuid4().hex,
        CODEX_SECRETS_KEY=Fernet.generate_key().decode(),
        METRICS_TOKEN=uuid.uuid4().hex,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CODEX_SSL_REDIRECT="0",
        CODEX_CELERY_QUEUE=queue,
        CODEX_CACHE_PREFIX=queue,
        LOG_LEVEL="INFO",
        CODEX_DATA_DIR=str(tmp / "data"),
        PROMETHEUS_MULTIPROC_DIR=str(metrics / "web"),
        CODEX_METRICS_DIRS=str(metrics / "worker"),
    )
    return env


def prepare_service(tmp: Path, queue: str, db_name: str) -> tuple[str, dict, dict]:
    """A fresh, migrated database with the `bench` tenant: (its URL, the service env, a key).

    Uses DATABASE_URL/REDIS_URL when set, else the embedded servers. Shared with
    scripts/reliability_drill.py.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
    owner_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if not owner_url or not redis_url:
        from codex import embedded

        owner_url = owner_url or embedded.postgres_url()
        redis_url = redis_url or embedded.redis_url()
    db_url = fresh_database(owner_url, db_name)
    env = service_env(db_url, redis_url, tmp, queue)
    for command in (
        ["migrate", "--no-input", "-v", "0"],
        ["collectstatic", "--no-input", "-v", "0"],
    ):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True)
    setup = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--setup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if setup.returncode:
        raise SystemExit(f"benchmark tenant set-up failed:\n{setup.stderr[-3000:]}")
    return db_url, env, json.loads(setup.stdout.strip().splitlines()[-1])


def start_worker(env: dict, tmp: Path) -> subprocess.Popen:
    """One Celery worker (concurrency 2), as the Procfile runs it."""
    wenv = dict(env, PROMETHEUS_MULTIPROC_DIR=env["CODEX_METRICS_DIRS"])
    log = open(tmp / "worker.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [
            str(VENV_BIN / "celery"),
            "-A",
            "codex",
            "--quiet",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            "2",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            env["CODEX_CELERY_QUEUE"],
        ],
        cwd=ROOT,
        env=wenv,
        stdout=log,
        stderr=log,
    )


def wait_enriched(conn, *, timeout: float) -> tuple[float | None, float | None, int]:
    """Poll until nothing is unenriched: (time of the first drop, time of zero, count at drop)."""
    start = unenriched(conn)
    first_drop = at_drop = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        left = unenriched(conn)
        if first_drop is None and left < start:
            first_drop, at_drop = now, left
        if left == 0:
            return first_drop or now, now, start if at_drop is None else at_drop
        time.sleep(0.1)
    return first_drop, None, at_drop or start


# --- the tenant sweep and the pooled rows ------------------------------------------------------


LUA_ONCE = ROOT / "scripts" / "bench" / "replay_once.lua"
# The sweep's tenants (all but the bench tenant) follow the default ingestRatePerSec.
SWEEP_TENANT_LIMIT = int(os.environ.get("CODEX_INGEST_RATE_PER_SEC") or 50)
# Filled by the validation part: {event name: {"body_us", "validate_fingerprint_us",
# "declined_body_us"}}.
VALIDATION: dict[str, dict] = {}
PARTS = ("validation", "baselines", "service", "pgbouncer", "enrich", "sweep")
PART_HELP = (
    "validation: in-process microseconds per event to validate and fingerprint (and to parse the "
    "whole body) of a 100-event batch; "
    "baselines: bare Django and the minimal ingest view (direct); service: the service's single "
    "and 100-batch rows (direct); pgbouncer: the minimal and service rows again with "
    "DATABASE_URL through PgBouncer (transaction pooling); enrich: the drain and the sustained "
    "load; sweep: the service with 1, 100, 10,000 active tenants and 100,000 signing keys"
)


def write_spread(
    path: Path, *, keys: list[tuple[str, bytes]], start: int, count: int, url_path: str
) -> None:
    """Pre-sign `count` single events (every idempotency key new) round-robin over `keys`.

    Request i is signed with keys[(start + i) % len(keys)], so consecutive requests go to
    different keys and a run of len(keys) requests uses each once.
    """
    prefix = uuid.uuid4().hex[:12]
    n = len(keys)
    with path.open("w") as out:
        for i in range(count):
            key_id, raw = keys[(start + i) % n]
            body = json.dumps(_event(f"{prefix}-{i}")).encode()
            signature = _sign(raw, url_path, body)
            out.write("\t".join((url_path, key_id, *signature, body.decode())) + "\n")


def wrk_once(wrk_bin: str, url: str, file: Path, lines: int) -> Run:
    """Send every request of `file` once at concurrency 50 (replay_once.lua); its figures."""
    done = file.with_suffix(".done")
    done.unlink(missing_ok=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            wrk_bin,
            f"-t{WRK_THREADS}",
            f"-c{CONCURRENCY}",
            "-d3600s",
            "--timeout",
            "10s",
            "-s",
            str(LUA_ONCE),
            url,
            "--",
            str(file),
            str(WRK_THREADS),
            str(done),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while proc.poll() is None:
        if done.exists() and len(done.read_text().splitlines()) >= WRK_THREADS:
            break
        time.sleep(0.05)  # polling for wrk's threads to finish their lines
    elapsed = time.monotonic() - started
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # wrk then joins its (stopped) threads and reports
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"wrk failed: {err[-2000:]}")
    doc = json.loads(out.strip().splitlines()[-1])
    rps = lines / elapsed
    return Run(
        rps=rps,
        events_s=rps,
        p50_ms=doc["p50_us"] / 1000,
        p95_ms=doc["p95_us"] / 1000,
        p99_ms=doc["p99_us"] / 1000,
        requests=lines,
        non2xx=doc["non2xx"],
        socket_errors=doc["socket_errors"],
        wrapped=False,
    )


def provision_sweep(env: dict, tmp: Path, tenants: int, keys_per_tenant: int) -> tuple[list, dict]:
    """Bulk-provision the sweep's tenants and keys (scripts/bench/tenants.py); (keys, timings)."""
    out = tmp / "sweep-keys.tsv"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench" / "tenants.py"),
            str(tenants),
            str(keys_per_tenant),
            str(out),
        ],
        cwd=ROOT,
        env=dict(env, LOG_LEVEL="WARNING"),
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"sweep provisioning failed:\n{proc.stderr[-3000:]}")
    timings = json.loads(proc.stdout.strip().splitlines()[-1])
    keys = []
    for line in out.read_text().splitlines():
        key_id, secret = line.split("\t")
        keys.append((key_id, base64.b64decode(secret.removeprefix("whsec_"))))
    out.unlink()
    return keys, timings


def server_env(env: dict, tmp: Path, name: str, **extra: str) -> dict:
    """`env` with its own Prometheus directory (gunicorn.conf.py empties it at start)."""
    metrics = tmp / f"metrics-{name}"
    metrics.mkdir(parents=True, exist_ok=True)
    return dict(env, PROMETHEUS_MULTIPROC_DIR=str(metrics), **extra)


def start_service(name: str, env: dict) -> Server:
    """The service under gunicorn.conf.py on a free port."""
    port = free_port()
    return start_gunicorn(
        name,
        ["-c", "gunicorn.conf.py", "codex.wsgi:application"],
        dict(env, BIND=f"127.0.0.1:{port}"),
        "/healthz",
        port,
    )


def drain_quietly(env: dict, tmp: Path, conn) -> None:
    """Enrich whatever is pending (not measured), so the next round's drain starts as before."""
    if not unenriched(conn):
        return
    worker = start_worker(env, tmp)
    try:
        wait_enriched(conn, timeout=300)
    finally:
        stop_process(worker)


# --- the run -------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _parts(only: str | None, skip: str | None) -> set[str]:
    """The parts to run from --only/--skip (comma-separated)."""

    def names(text: str | None) -> set[str]:
        got = {p.strip() for p in (text or "").split(",") if p.strip()}
        unknown = got - set(PARTS)
        if unknown:
            raise SystemExit(f"unknown part(s) {', '.join(sorted(unknown))}; parts: {PARTS}")
        return got

    chosen = names(only) or set(PARTS)
    return chosen - names(skip)


def prime_pass(wrk_bin: str, srv: Server, keys: list, count: int, tmp: Path) -> tuple[Run, float]:
    """Send each of the first `count` keys one request, once: (its figures, peak RSS MB)."""
    srv.window_start()
    chunk = 10_000  # each chunk is signed just before it is sent (the 300 s timestamp tolerance)
    runs = []
    cpu = srv.cpu_seconds()
    for start in range(0, count, chunk):
        req_file = tmp / "prime.txt"
        lines = min(chunk, count - start)
        write_spread(req_file, keys=keys, start=start, count=lines, url_path="/v1/events")
        runs.append(wrk_once(wrk_bin, srv.url, req_file, lines))
    spent = srv.cpu_seconds() - cpu
    total_s = sum(r.requests / r.rps for r in runs)
    run = Run(
        rps=count / total_s,
        events_s=count / total_s,
        p50_ms=_median([r.p50_ms for r in runs]),
        p95_ms=_median([r.p95_ms for r in runs]),
        p99_ms=_median([r.p99_ms for r in runs]),
        requests=count,
        non2xx=sum(r.non2xx for r in runs),
        socket_errors=sum(r.socket_errors for r in runs),
        wrapped=False,
        cpu_ms=spent * 1000 / count,
    )
    return run, srv.window_rss_kb / 1024


@dataclass
class Row:
    """One line of a table: what is driven, and where."""

    section: str  # "direct", "pgbouncer", "sweep"
    label: str
    server: str
    path: str
    batch: int


def _log(rnd: int | str, row: Row, run: Run, extra: str = "") -> None:
    print(
        f"round {rnd}: {row.section:<9} {row.label:<22} batch={row.batch:<3} {run.rps:8.0f} req/s "
        f"{run.events_s:9.0f} ev/s p50 {run.p50_ms:6.1f} p95 {run.p95_ms:6.1f} "
        f"p99 {run.p99_ms:6.1f} ms cpu {run.cpu_ms:5.2f} ms/req "
        f"non2xx={run.non2xx} errors={run.socket_errors}"
        + (" (request list wrapped)" if run.wrapped else "")
        + extra,
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8, help="seconds per wrk run")
    parser.add_argument("--sustain", type=float, default=20, help="seconds of sustained load")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--only", help=f"comma-separated parts to run (default all): {PART_HELP}")
    parser.add_argument("--skip", help="comma-separated parts not to run")
    parser.add_argument(
        "--sweep-tenants", type=int, default=10_000, help="tenants provisioned for the sweep"
    )
    parser.add_argument(
        "--sweep-keys", type=int, default=10, help="signing keys per sweep tenant (default 10)"
    )
    parser.add_argument(
        "--sweep-prime",
        type=int,
        default=10_000,
        help="in round 1, before the sweep rows past 100 tenants, send each of the first N keys "
        "(one per tenant first) one request: the 'first use' row (default 10,000; 0: none)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy one service worker during the service runs (collapsed stacks into this dir)",
    )
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.setup:
        setup_tenant()
        return 0
    parts = _parts(args.only, args.skip)
    from scripts.bench import pooler as pooler_mod

    if "pgbouncer" in parts and (os.environ.get("DATABASE_URL") or not pooler_mod.binary()):
        print(
            "#" * 88
            + "\n# PgBouncer rows SKIPPED: "
            + (
                "they need the embedded PostgreSQL (DATABASE_URL is set)"
                if os.environ.get("DATABASE_URL")
                else "pgbouncer is missing (bash scripts/ensure_pgbouncer.sh)"
            )
            + "\n"
            + "#" * 88,
            file=sys.stderr,
        )
        parts.discard("pgbouncer")
    if not parts:
        raise SystemExit("nothing to run")

    began = time.monotonic()
    wrk_bin = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="codex-bench-"))
    db_url, env, key = prepare_service(tmp, f"bench-{os.getpid()}", DB_NAME)
    worker_class, workers, threads = gunicorn_shape()
    shape = ["--worker-class", worker_class, "--workers", str(workers), "--threads", str(threads)]
    base_env = dict(
        os.environ, BENCH_DATABASE_URL=db_url, BENCH_SECRET=key["secret"], PYTHONPATH=str(ROOT)
    )
    from scripts.pgbouncer_run import APP_ROLE

    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import scripts.bench.minimal_app as m; m.create_table({APP_ROLE!r})",
        ],
        cwd=ROOT,
        env=base_env,
        check=True,
    )
    if "validation" in parts:  # in process, before any server runs
        figures = json.loads(
            subprocess.run(
                [sys.executable, "-m", "scripts.bench.validation"],
                cwd=ROOT,
                env=dict(env, PYTHONPATH=str(ROOT)),
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        VALIDATION.update(figures)
        print(f"validation (in process, us per event): {figures}", file=sys.stderr)
    servers: dict[str, Server] = {}
    pooler = None
    conn = pg(db_url)
    rows: list[Row] = []
    sweep_keys: list[tuple[str, bytes]] = []
    sweep_rows: list[tuple[Row, int, int]] = []  # row, keys used, tenants sending
    provisioned: dict = {}
    results: dict[tuple[str, str, int], list[Run]] = {}
    sweep_rss: dict[str, list[float]] = {}
    prime: Run | None = None
    prime_rss = float("nan")
    drains: list[float] = []
    backlogs: list[int] = []
    sustained: list[tuple[float, int, float | None]] = []
    spent: dict[str, float] = collections.defaultdict(float)
    try:

        def baseline(name: str, db: str) -> Server:
            port = free_port()
            return start_gunicorn(
                name,
                [*shape, "--bind", f"127.0.0.1:{port}", "scripts.bench.minimal_app:application"],
                dict(base_env, BENCH_DATABASE_URL=db),
                "/bare",
                port,
            )

        if "baselines" in parts:
            servers["baseline"] = baseline("baseline", db_url)
        if parts & {"service", "enrich"}:
            servers["service"] = start_service("service", server_env(env, tmp, "service"))
        if "pgbouncer" in parts:
            pooler = pooler_mod.start()
            pooled = pooler.url(DB_NAME)
            servers["baseline-pgb"] = baseline("baseline-pgb", pooled)
            servers["service-pgb"] = start_service(
                "service-pgb",
                server_env(
                    env,
                    tmp,
                    "service-pgb",
                    DATABASE_URL=pooled,
                    DATABASE_OWNER_URL=db_url,
                    CODEX_DB_POOL_MODE="transaction",
                ),
            )
        if "sweep" in parts:
            started = time.monotonic()
            sweep_keys, provisioned = provision_sweep(env, tmp, args.sweep_tenants, args.sweep_keys)
            conn.execute("ANALYZE tenants_tenant, tenants_signingkey")  # as autovacuum would
            provisioned["wall_s"] = round(time.monotonic() - started, 1)
            print(f"sweep: provisioned {provisioned}", file=sys.stderr)
            servers["sweep"] = start_service("sweep", server_env(env, tmp, "sweep"))

        for section, suffix in (("direct", ""), ("pgbouncer", "-pgb")):
            if section == "pgbouncer" and "pgbouncer" not in parts:
                continue
            base, svc = "baseline" + suffix, "service" + suffix
            with_base = section == "pgbouncer" or "baselines" in parts
            with_svc = section == "pgbouncer" or "service" in parts
            if with_base and section == "direct":
                rows.append(Row(section, "bare Django 204", base, "/bare", 1))
            if with_base:
                rows.append(Row(section, "minimal ingest", base, "/minimal", 1))
            if with_svc:
                rows.append(Row(section, "service /v1/events", svc, "/v1/events", 1))
            if with_base:
                rows.append(Row(section, "minimal ingest", base, "/minimal", BATCH))
            if with_svc:
                rows.append(Row(section, "service /v1/events", svc, "/v1/events", BATCH))

        if "sweep" in parts:
            t, n = args.sweep_tenants, len(sweep_keys)
            bench_key = [(key["key_id"], base64.b64decode(key["secret"].removeprefix("whsec_")))]
            for label, keys_used, tenants in (
                ("1 tenant", 1, 1),
                (f"{min(100, t):,} tenants", min(100, t), min(100, t)),
                (f"{t:,} tenants", t, t),
                (f"{n:,} keys", n, t),
            ):
                if label not in {r.label for r, _, _ in sweep_rows}:
                    row = Row("sweep", label, "sweep", "/v1/events", 1)
                    sweep_rows.append((row, keys_used, tenants))

        print(
            f"gunicorn {worker_class} x{workers} workers x{threads} threads; wrk c={CONCURRENCY}, "
            f"{args.duration:g} s per run; {args.rounds} rounds; parts: {', '.join(sorted(parts))}",
            file=sys.stderr,
        )
        rng = random.Random()
        spent["setup (database, servers, provisioning)"] = time.monotonic() - began
        for rnd in range(1, args.rounds + 1):
            # Even rounds run the pooled rows first, so neither side always meets the fresher
            # database (the first runs on new tables are the slowest).
            ordered = rows if rnd % 2 else sorted(rows, key=lambda r: r.section != "pgbouncer")
            for row in ordered:
                t0 = time.monotonic()
                srv = servers[row.server]
                # Requests/s we size the list for: a list that wraps replays its webhook-ids,
                # which the service answers 401 (fast), so the row would not measure ingest.
                expect = 6000 if row.batch == 1 else 700
                lines = int(expect * (args.duration + 2))
                req_file = tmp / "requests.txt"
                presign = functools.partial(
                    write_requests,
                    req_file,
                    key_id=key["key_id"],
                    secret=key["secret"],
                    url_path=row.path,
                    count=lines,
                    batch=row.batch,
                    unique=0.2,
                )
                presign()
                wrk(wrk_bin, srv.url, req_file, 1, lines, row.batch)  # warm-up
                # Each webhook-id is accepted once: the measured run gets fresh signatures.
                presign()
                spy = None
                if args.profile and row.server == "service" and rnd == 1:
                    spy = profile_worker(srv, args.profile / f"batch{row.batch}.txt", args.duration)
                cpu = srv.cpu_seconds()
                run = wrk(wrk_bin, srv.url, req_file, args.duration, lines, row.batch)
                run.cpu_ms = (srv.cpu_seconds() - cpu) * 1000 / max(1, run.requests)
                if spy is not None:
                    spy.wait()
                results.setdefault((row.section, row.label, row.batch), []).append(run)
                _log(rnd, row, run)
                spent[f"{row.section} rows"] += time.monotonic() - t0
            t0 = time.monotonic()
            if "enrich" in parts:
                drain_and_sustain(
                    rnd,
                    args,
                    env,
                    tmp,
                    conn,
                    wrk_bin,
                    servers["service"],
                    key,
                    drains,
                    backlogs,
                    sustained,
                )
                spent["enrichment"] += time.monotonic() - t0
            for row, keys_used, tenants in sweep_rows:
                t0 = time.monotonic()
                srv = servers["sweep"]
                if rnd == 1 and keys_used > 100 and args.sweep_prime and prime is None:
                    # After the small rows (their RSS is measured before this pass grows it).
                    prime, prime_rss = prime_pass(
                        wrk_bin, srv, sweep_keys, min(args.sweep_prime, len(sweep_keys)), tmp
                    )
                    _log(
                        1,
                        Row("sweep", f"first use {prime.requests:,} keys", "sweep", row.path, 1),
                        prime,
                    )
                    spent["sweep first use"] += time.monotonic() - t0
                    t0 = time.monotonic()
                keys = bench_key if keys_used == 1 and tenants == 1 else sweep_keys[:keys_used]
                expect = 3000  # requests/s we size the list for (the service's single events)
                lines = int(expect * (args.duration + 2))
                warm_lines = expect * 2
                start = rng.randrange(len(keys))
                req_file = tmp / "requests.txt"
                srv.window_start()
                # The warm-up signs with the keys preceding the run's in the cycle, so the run
                # starts on keys not just warmed (it comes back to a key after a whole cycle).
                write_spread(
                    req_file,
                    keys=keys,
                    start=(start - warm_lines) % len(keys),
                    count=warm_lines,
                    url_path=row.path,
                )
                wrk(wrk_bin, srv.url, req_file, 1, warm_lines, 1)
                write_spread(req_file, keys=keys, start=start, count=lines, url_path=row.path)
                cpu = srv.cpu_seconds()
                run = wrk(wrk_bin, srv.url, req_file, args.duration, lines, 1)
                run.cpu_ms = (srv.cpu_seconds() - cpu) * 1000 / max(1, run.requests)
                results.setdefault((row.section, row.label, 1), []).append(run)
                sweep_rss.setdefault(row.label, []).append(srv.window_rss_kb / 1024)
                per_tenant = run.rps / tenants
                _log(
                    rnd,
                    row,
                    run,
                    f" uses/key {run.requests / len(keys):.2f} per tenant {per_tenant:.1f} req/s",
                )
                if tenants > 1 and per_tenant > 0.8 * SWEEP_TENANT_LIMIT:
                    print(
                        f"WARNING: {per_tenant:.0f} req/s per tenant is near the sweep tenants' "
                        f"limit ({SWEEP_TENANT_LIMIT}/s): 429s would show as non-2xx",
                        file=sys.stderr,
                    )
                spent["sweep rows"] += time.monotonic() - t0
            if sweep_rows and "enrich" in parts and rnd < args.rounds:
                t0 = time.monotonic()
                drain_quietly(env, tmp, conn)
                spent["enriching the sweep's events (not measured)"] += time.monotonic() - t0
    finally:
        for srv in servers.values():
            srv.stop()
        if pooler is not None:
            pooler.stop()
        conn.close()

    report(
        args=args,
        parts=parts,
        shape=(worker_class, workers, threads),
        results=results,
        servers=servers,
        sweep_rows=sweep_rows,
        sweep_rss=sweep_rss,
        prime=prime,
        prime_rss=prime_rss,
        provisioned=provisioned,
        pooler_version=pooler.version if pooler else None,
        drains=drains,
        backlogs=backlogs,
        sustained=sustained,
        elapsed=time.monotonic() - began,
        spent=spent,
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def drain_and_sustain(
    rnd, args, env, tmp, conn, wrk_bin, service, key, drains, backlogs, sustained
) -> None:
    """Enrichment: the backlog's drain rate, then a sustained load with the worker running."""
    # Enrichment 1: the backlog the runs left, drained by one worker with nothing else on.
    backlog = unenriched(conn)
    worker = start_worker(env, tmp)
    try:
        first, zero, at_first = wait_enriched(conn, timeout=300)
        rate = at_first / (zero - first) if zero and zero > first else float("nan")
        drains.append(rate)
        backlogs.append(backlog)
        print(
            f"round {rnd}: drained a backlog of {backlog} events at {rate:.0f} events/s",
            file=sys.stderr,
        )
        # Enrichment 2: sustained single-event load with the worker running.
        before = conn.execute("SELECT count(*) FROM ingest_event").fetchone()[0]
        lines = int(3000 * (args.sustain + 2))
        req_file = tmp / "requests.txt"
        write_requests(
            req_file,
            key_id=key["key_id"],
            secret=key["secret"],
            url_path="/v1/events",
            count=lines,
            batch=1,
            unique=0.2,
        )
        run = wrk(wrk_bin, service.url, req_file, args.sustain, lines, 1)
        ended = time.monotonic()
        after = conn.execute("SELECT count(*) FROM ingest_event").fetchone()[0]
        _, zero, _ = wait_enriched(conn, timeout=120)
        catch_up = (zero - ended) if zero else None
        sustained.append((run.rps, after - before, catch_up))
        print(
            f"round {rnd}: sustained {run.rps:.0f} req/s for {args.sustain:g} s "
            f"({after - before} new events, p95 {run.p95_ms:.1f} ms); all enriched "
            + (f"{catch_up:.1f} s after the end" if catch_up is not None else "NOT in 120 s"),
            file=sys.stderr,
        )
    finally:
        stop_process(worker)


def _medians(runs: list[Run]) -> dict[str, float]:
    m = {
        f: _median([getattr(r, f) for r in runs])
        for f in ("rps", "events_s", "p50_ms", "p95_ms", "p99_ms", "cpu_ms")
    }
    m["non2xx"] = sum(r.non2xx + r.socket_errors for r in runs)
    m["wrapped"] = any(r.wrapped for r in runs)
    return m


HEADER = (
    f"{'endpoint':<22}{'events/req':>10}{'req/s':>9}{'events/s':>10}"
    f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'CPU ms/req':>11}{'non-2xx':>9}"
    f"{'peak RSS/worker':>17}"
)


def _line(label: str, batch: int, m: dict, rss_mb: float) -> str:
    return (
        f"{label:<22}{batch:>10}{m['rps']:>9.0f}{m['events_s']:>10.0f}{m['p50_ms']:>8.1f}"
        f"{m['p95_ms']:>8.1f}{m['p99_ms']:>8.1f}{m['cpu_ms']:>11.2f}{int(m['non2xx']):>9}"
        f"{rss_mb:>13.0f} MB" + ("  (list wrapped)" if m.get("wrapped") else "")
    )


def report(
    *,
    args,
    parts,
    shape,
    results,
    servers,
    sweep_rows,
    sweep_rss,
    prime,
    prime_rss,
    provisioned,
    pooler_version,
    drains,
    backlogs,
    sustained,
    elapsed,
    spent,
) -> None:
    """Print the tables and every ratio; write --json."""
    worker_class, workers, threads = shape
    rss = {name: srv.peak_rss_kb / 1024 for name, srv in servers.items()}
    med = {k: _medians(v) for k, v in results.items()}
    ratios: dict[str, float] = {}

    def get(section: str, label: str, batch: int = 1) -> dict | None:
        return med.get((section, label, batch))

    def ratio(name: str, a: float, b: float) -> str:
        value = a / b if b and a == a and b == b else float("nan")
        ratios[name] = value
        return f"{value:.2f}"

    print()
    print(
        f"gunicorn {worker_class}, {workers} workers x {threads} threads; wrk c={CONCURRENCY}; "
        f"median of {args.rounds} rounds of {args.duration:g} s"
    )
    for section, title in (
        ("direct", "direct to PostgreSQL"),
        ("pgbouncer", f"DATABASE_URL through {pooler_version or 'PgBouncer'}, transaction pooling"),
    ):
        keys = [k for k in med if k[0] == section]
        if not keys:
            continue
        print()
        print(title)
        print(HEADER)
        print("-" * len(HEADER))
        for k in keys:
            server = ("service" if k[1].startswith("service") else "baseline") + (
                "-pgb" if section == "pgbouncer" else ""
            )
            print(_line(k[1], k[2], med[k], rss.get(server, float("nan"))))

    if sweep_rows:
        print()
        print(
            f"tenant sweep: the service (its own gunicorn, same shape), single events, every "
            f"idempotency key new, requests round-robin over the keys; {provisioned.get('tenants')}"
            f" tenants x {args.sweep_keys} keys provisioned in {provisioned.get('wall_s')} s; "
            "'1 tenant' is the bench tenant (ingestRatePerSec 100,000), the others follow the "
            f"default ({SWEEP_TENANT_LIMIT}/s each); RSS: peak of "
            "a worker during the row in round 1 (rows run in this order)"
        )
        header = HEADER + f"{'uses/key':>10}"
        print(header)
        print("-" * len(header))
        prime_shown = False
        for row, keys_used, _ in sweep_rows:
            m = get("sweep", row.label)
            if m is None:
                continue
            if prime is not None and keys_used > 100 and not prime_shown:
                print(
                    _line(f"first use {prime.requests:,} keys", 1, _medians([prime]), prime_rss)
                    + f"{1:>10.2f}"
                )
                prime_shown = True
            uses = _median([r.requests / keys_used for r in results[("sweep", row.label, 1)]])
            print(_line(row.label, 1, m, sweep_rss[row.label][0]) + f"{uses:>10.2f}")

    print()
    print("ratios (medians of the same run)")
    svc1, mini1, bare1 = (
        get("direct", "service /v1/events"),
        get("direct", "minimal ingest"),
        get("direct", "bare Django 204"),
    )
    svcb, minib = get("direct", "service /v1/events", BATCH), get("direct", "minimal ingest", BATCH)
    if svc1 and mini1:
        print(
            "  single, service/minimal: req/s "
            + ratio("single_rps_service_minimal", svc1["rps"], mini1["rps"])
            + " (target >= 0.6), p95 "
            + ratio("single_p95_service_minimal", svc1["p95_ms"], mini1["p95_ms"])
            + " (target <= 2), web CPU/req "
            + ratio("single_cpu_service_minimal", svc1["cpu_ms"], mini1["cpu_ms"])
            + " (target <= 1.5)"
        )
    if svc1 and bare1:
        print(
            "  single, service/bare req/s "
            + ratio("single_rps_service_bare", svc1["rps"], bare1["rps"])
        )
    if svcb and minib:
        print(
            "  100-batch events/s, service/minimal "
            + ratio("batch_events_service_minimal", svcb["events_s"], minib["events_s"])
            + " (target >= 0.6); p95 "
            + ratio("batch_p95_service_minimal", svcb["p95_ms"], minib["p95_ms"])
            + ", web CPU/req "
            + ratio("batch_cpu_service_minimal", svcb["cpu_ms"], minib["cpu_ms"])
        )
    if sweep_rows:
        one = get("sweep", sweep_rows[0][0].label)
        for row, _, _ in sweep_rows[1:]:
            m = get("sweep", row.label)
            if not (one and m):
                continue
            tag = row.label.replace(",", "").replace(" ", "_")
            target = " (target <= 2)" if row.label.endswith("keys") else ""
            if row.label.endswith("tenants") and row.label.startswith(f"{args.sweep_tenants:,}"):
                target = " (target <= 1.5)"
            print(
                f"  sweep {row.label} / 1 tenant: req/s "
                + ratio(f"sweep_rps_{tag}", m["rps"], one["rps"])
                + ", p95 "
                + ratio(f"sweep_p95_{tag}", m["p95_ms"], one["p95_ms"])
                + ", web CPU/req "
                + ratio(f"sweep_cpu_{tag}", m["cpu_ms"], one["cpu_ms"])
                + target
                + f"; peak RSS/worker {sweep_rss[row.label][0]:.0f} MB"
                + (" (target <= 200 MB)" if row.label.endswith("keys") else "")
            )
    for label, batch in (
        ("minimal ingest", 1),
        ("service /v1/events", 1),
        ("minimal ingest", BATCH),
        ("service /v1/events", BATCH),
    ):
        d, p = get("direct", label, batch), get("pgbouncer", label, batch)
        if not (d and p):
            continue
        tag = f"{'service' if label.startswith('service') else 'minimal'}_{batch}"
        print(
            f"  PgBouncer/direct, {label} x{batch}: req/s "
            + ratio(f"pgbouncer_rps_{tag}", p["rps"], d["rps"])
            + ", p95 "
            + ratio(f"pgbouncer_p95_{tag}", p["p95_ms"], d["p95_ms"])
            + ", web CPU/req "
            + ratio(f"pgbouncer_cpu_{tag}", p["cpu_ms"], d["cpu_ms"])
            + (" (target: within 15%)" if label.startswith("service") else "")
        )
    if drains:
        print(
            f"enrichment drain (one worker, nothing else running): {_median(drains):.0f} events/s "
            f"(backlogs {', '.join(str(b) for b in backlogs)})"
        )
    if sustained:
        catch = [c for _, _, c in sustained]
        print(
            f"sustained {args.sustain:g} s single-event load with the worker running: "
            f"{_median([s[0] for s in sustained]):.0f} req/s, "
            f"{_median([s[1] for s in sustained]):.0f} new events; all enriched "
            + (
                f"{_median([c for c in catch if c is not None]):.1f} s after the load ended"
                if all(c is not None for c in catch)
                else "NOT within 120 s in some round"
            )
        )
    bad = [f"{k[0]} {k[1]} x{k[2]}" for k, m in med.items() if m["non2xx"]]
    if bad:
        print(
            f"WARNING: non-2xx answers or socket errors in: {'; '.join(bad)}: those rows do not "
            f"measure ingest (see {tempfile.gettempdir()}/bench-<server>.log)"
        )
    for name, fig in VALIDATION.items():
        # body: what a request pays (parse_body: decode, validate, fingerprint; the fast path);
        # validate_event: the exact path on decoded events (webhooks, and any body the fast
        # path declines); declined: a body whose last event is invalid.
        print(
            f"validation + fingerprint, in process, {name} (target < 15 us/event): request body "
            f"{fig['body_us']:.2f} us/event (decode included); validate_event "
            f"{fig['validate_fingerprint_us']:.2f}; a body the fast path declines "
            f"{fig.get('declined_body_us', float('nan')):.2f}"
        )
    print(
        f"whole run {elapsed / 60:.1f} min: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in spent.items())
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "parts": sorted(parts),
                    "validation_us_per_event": VALIDATION,
                    "shape": {"worker_class": worker_class, "workers": workers, "threads": threads},
                    "rounds": args.rounds,
                    "duration_s": args.duration,
                    "runs": {
                        f"{k[0]}: {k[1]} x{k[2]}": [r.__dict__ for r in v]
                        for k, v in results.items()
                    },
                    "medians": {f"{k[0]}: {k[1]} x{k[2]}": v for k, v in med.items()},
                    "ratios": ratios,
                    "sweep": {
                        "provisioned": provisioned,
                        "first_use": prime.__dict__ if prime else None,
                        "first_use_peak_rss_mb": prime_rss,
                        "peak_rss_mb_per_round": sweep_rss,
                    },
                    "pgbouncer": pooler_version,
                    "drain_events_s": drains,
                    "backlogs": backlogs,
                    "sustained": sustained,
                    "peak_rss_mb": rss,
                    "elapsed_s": elapsed,
                    "time_s": spent,
                },
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    raise SystemExit(main())
