"""Load benchmark: the real ingest service against a bare Django endpoint and a minimal ingest view.

    python scripts/bench_ingest.py [--rounds 3] [--duration 8] [--sustain 20] [--json out.json]

One run, one machine, the same gunicorn worker class, workers and threads for all three servers:

  (a) bare Django answering 204 (scripts/bench/minimal_app.py /bare);
  (b) a minimal ingest view: HMAC check, JSON parse, one INSERT .. ON CONFLICT DO NOTHING
      RETURNING, commit, on its own table (/minimal): the floor for durable ingest on this stack;
  (c) the service (gunicorn.conf.py, codex.wsgi) on a fresh database, CODEX_ENV=production, with
      the benchmark tenant's rate limit lifted.

wrk (Debian's; installed when missing and root) replays pre-signed requests at concurrency 50
(each once: the service accepts a webhook-id once, so a list that wraps shows as non-2xx):
single events with 20% unique keys, then 100-event batches of new keys. Each round also measures
enrichment: the drain rate of the backlog the runs left (one Celery worker alone), and, with the
worker running, a sustained single-event load followed by the seconds until every accepted event
is in events_enriched. Prints a table of medians over the rounds (and each round's figures).
Uses DATABASE_URL/REDIS_URL when set, else the embedded servers.
"""

from __future__ import annotations

import argparse
import base64
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
        """User + system CPU of the live workers so far."""
        total = 0
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
                            self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
                except OSError:
                    continue

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


# --- the run -------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8, help="seconds per wrk run")
    parser.add_argument("--sustain", type=float, default=20, help="seconds of sustained load")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--only", choices=["service"], help="skip the baselines (quicker)")
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

    wrk_bin = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="codex-bench-"))
    db_url, env, key = prepare_service(tmp, f"bench-{os.getpid()}", DB_NAME)
    worker_class, workers, threads = gunicorn_shape()
    shape = ["--worker-class", worker_class, "--workers", str(workers), "--threads", str(threads)]
    base_env = dict(
        os.environ, BENCH_DATABASE_URL=db_url, BENCH_SECRET=key["secret"], PYTHONPATH=str(ROOT)
    )
    subprocess.run(
        [sys.executable, "-c", "import scripts.bench.minimal_app as m; m.create_table()"],
        cwd=ROOT,
        env=base_env,
        check=True,
    )
    servers: dict[str, Server] = {}
    if args.only != "service":
        port = free_port()
        servers["baseline"] = start_gunicorn(
            "baseline",
            [*shape, "--bind", f"127.0.0.1:{port}", "scripts.bench.minimal_app:application"],
            base_env,
            "/bare",
            port,
        )
    port = free_port()
    servers["service"] = start_gunicorn(
        "service",
        ["-c", "gunicorn.conf.py", "codex.wsgi:application"],
        dict(env, BIND=f"127.0.0.1:{port}"),
        "/healthz",
        port,
    )
    conn = pg(db_url)
    targets = []
    if args.only != "service":
        targets += [
            ("bare Django 204", "baseline", "/bare", 1),
            ("minimal ingest", "baseline", "/minimal", 1),
        ]
    targets += [("service /v1/events", "service", "/v1/events", 1)]
    if args.only != "service":
        targets += [("minimal ingest", "baseline", "/minimal", BATCH)]
    targets += [("service /v1/events", "service", "/v1/events", BATCH)]

    results: dict[tuple[str, int], list[Run]] = {}
    drains: list[float] = []
    backlogs: list[int] = []
    sustained: list[tuple[float, int, float | None]] = []
    print(
        f"gunicorn {worker_class} x{workers} workers x{threads} threads; wrk c={CONCURRENCY}, "
        f"{args.duration:g} s per run; {args.rounds} rounds",
        file=sys.stderr,
    )
    try:
        for rnd in range(1, args.rounds + 1):
            for label, server, path, batch in targets:
                srv = servers[server]
                expect = 6000 if batch == 1 else 400  # requests/s we size the request list for
                lines = int(expect * (args.duration + 2))
                req_file = tmp / "requests.txt"
                presign = functools.partial(
                    write_requests,
                    req_file,
                    key_id=key["key_id"],
                    secret=key["secret"],
                    url_path=path,
                    count=lines,
                    batch=batch,
                    unique=0.2,
                )
                presign()
                wrk(wrk_bin, srv.url, req_file, 1, lines, batch)  # warm-up
                # Each webhook-id is accepted once: the measured run gets fresh signatures.
                presign()
                spy = None
                if args.profile and server == "service" and rnd == 1:
                    spy = profile_worker(srv, args.profile / f"batch{batch}.txt", args.duration)
                cpu = srv.cpu_seconds()
                run = wrk(wrk_bin, srv.url, req_file, args.duration, lines, batch)
                run.cpu_ms = (srv.cpu_seconds() - cpu) * 1000 / max(1, run.requests)
                if spy is not None:
                    spy.wait()
                results.setdefault((label, batch), []).append(run)
                print(
                    f"round {rnd}: {label:<20} batch={batch:<3} {run.rps:8.0f} req/s "
                    f"{run.events_s:9.0f} ev/s p50 {run.p50_ms:6.1f} p95 {run.p95_ms:6.1f} "
                    f"p99 {run.p99_ms:6.1f} ms cpu {run.cpu_ms:5.2f} ms/req "
                    f"non2xx={run.non2xx} errors={run.socket_errors}"
                    + (" (request list wrapped)" if run.wrapped else ""),
                    file=sys.stderr,
                )
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
                run = wrk(wrk_bin, servers["service"].url, req_file, args.sustain, lines, 1)
                ended = time.monotonic()
                after = conn.execute("SELECT count(*) FROM ingest_event").fetchone()[0]
                _, zero, _ = wait_enriched(conn, timeout=120)
                catch_up = (zero - ended) if zero else None
                sustained.append((run.rps, after - before, catch_up))
                print(
                    f"round {rnd}: sustained {run.rps:.0f} req/s for {args.sustain:g} s "
                    f"({after - before} new events, p95 {run.p95_ms:.1f} ms); all enriched "
                    + (
                        f"{catch_up:.1f} s after the end"
                        if catch_up is not None
                        else "NOT in 120 s"
                    ),
                    file=sys.stderr,
                )
            finally:
                stop_process(worker)
    finally:
        for srv in servers.values():
            srv.stop()
        conn.close()

    rss = {name: srv.peak_rss_kb / 1024 for name, srv in servers.items()}
    print()
    print(
        f"gunicorn {worker_class}, {workers} workers x {threads} threads; wrk c={CONCURRENCY}; "
        f"median of {args.rounds} rounds of {args.duration:g} s"
    )
    header = (
        f"{'endpoint':<22}{'events/req':>10}{'req/s':>9}{'events/s':>10}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'CPU ms/req':>11}{'non-2xx':>9}"
        f"{'peak RSS/worker':>17}"
    )
    print(header)
    print("-" * len(header))
    med: dict[tuple[str, int], dict[str, float]] = {}
    for (label, batch), runs in results.items():
        m = {
            f: _median([getattr(r, f) for r in runs])
            for f in ("rps", "events_s", "p50_ms", "p95_ms", "p99_ms", "cpu_ms")
        }
        m["non2xx"] = sum(r.non2xx + r.socket_errors for r in runs)
        med[(label, batch)] = m
        server = "service" if label.startswith("service") else "baseline"
        print(
            f"{label:<22}{batch:>10}{m['rps']:>9.0f}{m['events_s']:>10.0f}{m['p50_ms']:>8.1f}"
            f"{m['p95_ms']:>8.1f}{m['p99_ms']:>8.1f}{m['cpu_ms']:>11.2f}{int(m['non2xx']):>9}"
            f"{rss[server]:>13.0f} MB"
        )
    svc1 = med[("service /v1/events", 1)]
    svcb = med[("service /v1/events", BATCH)]
    if args.only != "service":
        mini1, bare1 = med[("minimal ingest", 1)], med[("bare Django 204", 1)]
        minib = med[("minimal ingest", BATCH)]
        print(
            f"ratios (req/s): single service/minimal {svc1['rps'] / mini1['rps']:.2f}, "
            f"service/bare {svc1['rps'] / bare1['rps']:.2f}; "
            f"batch events/s service/minimal {svcb['events_s'] / minib['events_s']:.2f}"
        )
    print(
        f"enrichment drain (one worker, nothing else running): {_median(drains):.0f} events/s "
        f"(backlogs {', '.join(str(b) for b in backlogs)})"
    )
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
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "runs": {
                        f"{k[0]} x{k[1]}": [r.__dict__ for r in v] for k, v in results.items()
                    },
                    "drain_events_s": drains,
                    "backlogs": backlogs,
                    "sustained": sustained,
                    "peak_rss_mb": rss,
                },
                indent=2,
            )
        )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
