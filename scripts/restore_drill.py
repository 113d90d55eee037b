#!/usr/bin/env python3
"""Backup and point-in-time-restore drill with pgBackRest: nothing answered before the mark is lost.

    python scripts/restore_drill.py [--target-type time|name] [--out result.json] [--keep]

Everything runs on 127.0.0.1 and unix sockets, in one temporary directory that is removed at
the end; every process the drill starts is stopped on the way out (also on failure and Ctrl-C),
and every wait is bounded.

1. A throwaway PostgreSQL 15 cluster (initdb; run as the `postgres` OS user when we are root)
   on a free port: wal_level=replica, archive_mode=on,
   archive_command='pgbackrest --config=<tmp>/pgbackrest.conf --stanza=codex archive-push %p',
   and a pgBackRest configuration with a local repository in the temporary directory
   (repo1-retention-full=1).
2. As the superuser, only a managed-shaped owner and its database:
   CREATE ROLE codex_owner LOGIN ... NOSUPERUSER NOBYPASSRLS CREATEDB CREATEROLE;
   CREATE DATABASE codex OWNER codex_owner. Everything after runs as codex_owner.
3. pgbackrest stanza-create, check, a full backup.
4. manage.py migrate (as codex_owner; it creates the restricted role codex_app), a private
   redis-server, provision_tenant, gunicorn, and signed batches of POST /v1/events (signed with
   the SDK's codex_sdk.signing); every idempotency key answered 2xx is recorded.
5. The mark: load stopped, `SELECT now()` (--target-type time, default) or
   pg_create_restore_point() (--target-type name), then pg_switch_wal() and the segment archived.
6. More signed load after the mark (other keys, also recorded); pg_switch_wal() again so the
   WAL past the mark is in the repository as it would be after a real incident.
7. gunicorn and PostgreSQL stopped; `pgbackrest restore --type=time|name --target=...
   --target-action=promote` into a FRESH data directory; PostgreSQL started on it. The restore
   time runs from the restore command's start until the database accepts connections and
   pg_is_in_recovery() is false.
8. gunicorn and a Celery worker on the restored database (same Redis: only the database was
   lost); /readyz 200; as codex_owner in a system scope: every key answered before the mark is
   in ingest_event exactly once, no key answered after the mark is; the signed lookup
   GET /v1/events/<key> agrees for the first and last key of each side; once the worker has
   enriched everything, `manage.py reconcile --date today --json` reports no drift, and so does
   the same service (reconcile.services.drift_compute) with no settle window, which counts the
   drill's events (the command leaves out the last 10 minutes).
9. A table on stdout, the figures as JSON in --out; exit 1 when any check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
STANZA = "codex"
OWNER = "codex_owner"
DATABASE = "codex"
TENANT = "restore-drill"
RESTORE_POINT = "codex-restore-drill-mark"

# The drift figure both reconcile passes are checked with; run through `manage.py shell -c` as the
# service would (owner login, restricted role, tenant scopes): the service without a settle window.
DRIFT_SNIPPET = """
import json
from datetime import date, timedelta
from reconcile import services
days = {days!r}
runs = []
failed = {{}}
for day in days:
    outcome = services.drift_compute(day=date.fromisoformat(day), settle=timedelta(0))
    failed.update(outcome.failed)
    runs += [
        {{"tenant": r.slug, "day": r.day.isoformat(), "accepted": r.accepted,
          "enriched": r.enriched, "dead_lettered": r.dead_lettered, "pending": r.pending,
          "drift": r.drift}}
        for r in outcome.runs
    ]
print(json.dumps({{"runs": runs, "failed": failed}}))
"""


class DrillError(Exception):
    """The drill could not run as designed."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class Drill:
    """The drill's processes and files; remembers everything it must stop."""

    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        self.workdir = workdir
        self.args = args
        self.as_root = os.geteuid() == 0
        self.pg_bin = Path(args.pg_bin)
        self.pgbackrest = shutil.which("pgbackrest") or "/usr/bin/pgbackrest"
        self.sock = workdir / "sock"
        self.conf = workdir / "pgbackrest.conf"
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.web_port = free_port()
        self.owner_password = secrets.token_hex(16)
        self.running_pg: list[Path] = []
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.env: dict[str, str] = {}

    # --- plumbing -------------------------------------------------------------------------------

    def log(self, msg: str) -> None:
        print(f"drill: {msg}", flush=True)

    def as_postgres(self, argv: list[str]) -> list[str]:
        """PostgreSQL refuses root: run its binaries (and pgBackRest) as the postgres OS user."""
        return ["runuser", "-u", "postgres", "--", *argv] if self.as_root else argv

    def chown(self, path: Path) -> None:
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        postgres: bool = False,
        env: dict[str, str] | None = None,
        what: str | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a command to completion (bounded); DrillError with its output when it fails."""
        argv = self.as_postgres(argv) if postgres else argv
        try:
            done = subprocess.run(
                argv,
                cwd=ROOT if not postgres else self.workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise DrillError(f"{what or argv[0]} did not finish within {timeout:g} s") from exc
        except OSError as exc:
            raise DrillError(f"{what or argv[0]} could not run: {exc}") from exc
        if done.returncode:
            raise DrillError(
                f"{what or ' '.join(argv)} exited with {done.returncode}:\n"
                f"{done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
        return done

    def pgbr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = [self.pgbackrest, f"--config={self.conf}", f"--stanza={STANZA}", *args]
        return self.run(argv, timeout=timeout, postgres=True, what=f"pgbackrest {args[-1]}")

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        logfile = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: gunicorn/celery and their children
        )
        logfile.close()
        self.processes.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL after `timeout` seconds."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # children left behind by a dead parent

    def stop_named(self, *names: str) -> None:
        for name, proc in list(self.processes):
            if name in names:
                self.stop(proc)
                self.processes.remove((name, proc))

    # --- PostgreSQL -----------------------------------------------------------------------------

    def initdb(self, data: Path) -> None:
        pwfile = self.workdir / "initdb.pw"
        pwfile.write_text(secrets.token_hex(16))  # a superuser password nobody needs (local: trust)
        self.chown(pwfile)
        argv = [
            str(self.pg_bin / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ]
        self.run(argv, timeout=120, postgres=True, what="initdb")
        pwfile.unlink()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# restore drill\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.pg_port}\n"
                f"unix_socket_directories = '{self.sock}'\n"
                "wal_level = replica\n"
                "archive_mode = on\n"
                f"archive_command = '{self.pgbackrest} --config={self.conf} "
                f"--stanza={STANZA} archive-push %p'\n"
                "max_wal_senders = 3\n"
                "max_connections = 60\n"
                "shared_buffers = 32MB\n"
            )

    def write_pgbackrest_conf(self, data: Path) -> None:
        """The pgBackRest configuration: a local repository in the drill's directory."""
        self.conf.write_text(
            "[global]\n"
            f"repo1-path={self.workdir / 'repo'}\n"
            "repo1-retention-full=1\n"
            f"log-path={self.workdir / 'pgbackrest-log'}\n"
            f"lock-path={self.workdir / 'pgbackrest-lock'}\n"
            f"spool-path={self.workdir / 'pgbackrest-spool'}\n"
            "log-level-console=warn\n"
            "log-level-file=info\n"
            "start-fast=y\n"
            "archive-timeout=60\n"
            f"\n[{STANZA}]\n"
            f"pg1-path={data}\n"
            f"pg1-port={self.pg_port}\n"
            f"pg1-socket-path={self.sock}\n"
            "pg1-user=postgres\n"
        )
        self.chown(self.conf)

    def pg_start(self, data: Path, log_name: str) -> None:
        argv = [
            str(self.pg_bin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.workdir / log_name),
            "-w",
            "-t",
            str(int(self.args.step_timeout)),
            "start",
        ]
        self.running_pg.append(data)
        try:
            self.run(argv, timeout=self.args.step_timeout + 10, postgres=True, what="pg_ctl start")
        except DrillError as exc:
            raise DrillError(f"{exc}\n{tail(self.workdir / log_name)}") from exc

    def pg_stop(self, data: Path) -> None:
        """Fast shutdown, immediate if that hangs, SIGKILL of the postmaster as the last resort."""
        pg_ctl = str(self.pg_bin / "pg_ctl")
        for mode in ("fast", "immediate"):
            with contextlib.suppress(DrillError):
                self.run(
                    [pg_ctl, "-D", str(data), "-m", mode, "-w", "-t", "30", "stop"],
                    timeout=40,
                    postgres=True,
                    what=f"pg_ctl stop -m {mode}",
                )
                break
        else:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int((data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
        if data in self.running_pg:
            self.running_pg.remove(data)

    def superuser(self):
        import psycopg

        return psycopg.connect(
            host=str(self.sock),
            port=self.pg_port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        )

    @property
    def owner_url(self) -> str:
        return f"postgresql://{OWNER}:{self.owner_password}@127.0.0.1:{self.pg_port}/{DATABASE}"

    def owner(self):
        import psycopg

        return psycopg.connect(self.owner_url, autocommit=True, connect_timeout=5)

    def switch_wal_and_wait_archived(self) -> str:
        """pg_switch_wal(); wait (bounded) until the segment it closed is in the repository."""
        with self.superuser() as conn:
            segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
            deadline = time.monotonic() + self.args.step_timeout
            while True:
                last, failed = conn.execute(
                    "SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, '')"
                    " FROM pg_stat_archiver"
                ).fetchone()
                if last[:24] >= segment:
                    return segment
                if time.monotonic() > deadline:
                    raise DrillError(
                        f"WAL segment {segment} not archived within {self.args.step_timeout:g} s"
                        f" (last archived {last or 'none'}, last failed {failed or 'none'})"
                    )
                time.sleep(0.1)

    # --- the service ----------------------------------------------------------------------------

    def service_env(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CODEX_", "DATABASE_", "REDIS_", "PROMETHEUS_", "GUNICORN_"))
            and k not in ("PYTEST_VERSION", "DJANGO_SETTINGS_MODULE", "BIND", "WEB_CONCURRENCY")
        }
        data = self.workdir / "service-data"
        data.mkdir(exist_ok=True)
        env.update(
            DATABASE_URL=self.owner_url,
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            CODEX_DATA_DIR=str(data),
            SECRET_KEY=secrets.token_urlsafe(50),
            CODEX_SECRETS_KEY=Fernet.generate_key().decode(),
            CODEX_CELERY_QUEUE="restore-drill",
            CODEX_CACHE_PREFIX="restore-drill",
            LOG_LEVEL="WARNING",
            CODEX_LOG_STREAM="stderr",
            PYTHONUNBUFFERED="1",
        )
        return env

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = [sys.executable, "manage.py", *args]
        return self.run(argv, timeout=timeout, env=self.env, what=f"manage.py {args[0]}")

    def start_redis(self) -> None:
        server = VENV_BIN / "redis-server"
        (self.workdir / "redis").mkdir()
        argv = [str(server if server.exists() else shutil.which("redis-server") or server)]
        argv += ["--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.workdir / "redis")]
        proc = self.spawn("redis", argv, dict(os.environ))
        deadline = time.monotonic() + self.args.step_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DrillError(f"redis-server exited:\n{tail(self.workdir / 'redis.log')}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.1)
        raise DrillError(f"redis-server did not answer within {self.args.step_timeout:g} s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start_web(self, name: str) -> None:
        metrics = self.workdir / f"metrics-{name}"
        metrics.mkdir()
        env = dict(
            self.env,
            BIND=f"127.0.0.1:{self.web_port}",
            WEB_CONCURRENCY="1",
            GUNICORN_THREADS="4",
            GUNICORN_GRACEFUL_TIMEOUT="5",
            PROMETHEUS_MULTIPROC_DIR=str(metrics),
        )
        argv = [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "codex.wsgi:application"]
        proc = self.spawn(name, argv, env)
        deadline = time.monotonic() + self.args.step_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DrillError(f"gunicorn exited ({proc.returncode}):\n{tail(self.log_of(name))}")
            status, _ = http_get(self.url + "/readyz")
            if status == 200:
                return
            time.sleep(0.2)
        raise DrillError(
            f"/readyz not 200 within {self.args.step_timeout:g} s:\n{tail(self.log_of(name))}"
        )

    def start_worker(self) -> None:
        metrics = self.workdir / "metrics-worker"
        metrics.mkdir()
        env = dict(self.env, PROMETHEUS_MULTIPROC_DIR=str(metrics))
        argv = [str(VENV_BIN / "celery"), "-A", "codex", "worker", "--loglevel", "WARNING"]
        argv += ["--concurrency", "1", "--without-gossip", "--without-mingle"]
        argv += ["-Q", env["CODEX_CELERY_QUEUE"]]
        self.spawn("worker", argv, env)

    def log_of(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def stop_all(self) -> None:
        for _, proc in reversed(self.processes):
            self.stop(proc, timeout=10)
        self.processes.clear()
        for data in list(self.running_pg):
            self.pg_stop(data)


# --- HTTP -----------------------------------------------------------------------------------------


def http_get(url: str, headers: dict | None = None) -> tuple[int | None, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except (OSError, ValueError):
        return None, {}


def signed(key: dict, body: bytes, *, method: str = "POST", path: str = "/v1/events") -> dict:
    """The SDK's signature headers (v2: method, path and body) for one request."""
    from codex_sdk import signing

    secret = signing.decode_secret(key["secret"])
    headers = signing.sign_headers(key["key_id"], secret, body, method=method, path=path)
    headers["Content-Type"] = "application/json"
    return headers


def send_load(url: str, key: dict, prefix: str, batches: int, size: int) -> dict:
    """Signed batches of new events; the keys answered 2xx (accepted or duplicate) and counts."""
    answered: list[str] = []
    statuses: dict[str, int] = {}
    n = 0
    for _ in range(batches):
        occurred = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        events = []
        for _ in range(size):
            n += 1
            events.append(
                {
                    "idempotency_key": f"{prefix}-{n:05d}",
                    "type": "drill.event",
                    "occurred_at": occurred,
                    "source": "restore-drill",
                    "payload": {"n": n, "amount": "1.00", "currency": "EUR"},
                }
            )
        body = json.dumps({"events": events}).encode()
        for _attempt in range(20):  # a 429 (the tenant's rate limit) waits and sends again
            request = urllib.request.Request(
                url + "/v1/events", data=body, headers=signed(key, body), method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=15) as response:
                    status, answer = response.status, json.loads(response.read())
            except urllib.error.HTTPError as exc:
                status, answer = exc.code, {}
                if status == 429:
                    time.sleep(min(2.0, float(exc.headers.get("Retry-After") or 1)))
                    continue
            except OSError:
                status, answer = 0, {}
            break
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if 200 <= status < 300:
            for result in answer.get("results", []):
                if result.get("status") in ("accepted", "duplicate"):
                    answered.append(result["idempotency_key"])
    return {"answered": answered, "sent": n, "batches": statuses}


def lookup(url: str, key: dict, ikey: str) -> int | None:
    """Status of the signed GET /v1/events/<key> (the service's own read path)."""
    path = "/v1/events/" + urllib.parse.quote(ikey, safe="")
    return http_get(url + path, signed(key, b"", method="GET", path=path))[0]


# --- the run --------------------------------------------------------------------------------------


def owner_counts(drill: Drill, tenant_id: str, keys: list[str]) -> dict[str, int]:
    """key -> rows in ingest_event, read as the owner in a system scope (RLS is forced)."""
    if not keys:
        return {}
    with drill.owner() as conn, conn.transaction():
        conn.execute("SELECT set_config('app.system_scope', 'restore-drill', true)")
        rows = conn.execute(
            "SELECT idempotency_key, count(*) FROM ingest_event"
            " WHERE tenant_id = %s AND idempotency_key = ANY(%s) GROUP BY 1",
            [tenant_id, keys],
        ).fetchall()
    return dict(rows)


def enrichment_state(drill: Drill, tenant_id: str) -> tuple[int, int, list[str]]:
    """(ledger rows, enriched rows, UTC days of receipt) of the tenant, as the owner."""
    with drill.owner() as conn, conn.transaction():
        conn.execute("SELECT set_config('app.system_scope', 'restore-drill', true)")
        ledger, enriched = conn.execute(
            "SELECT (SELECT count(*) FROM ingest_event WHERE tenant_id = %(t)s),"
            " (SELECT count(*) FROM events_enriched WHERE tenant_id = %(t)s)",
            {"t": tenant_id},
        ).fetchone()
        days = conn.execute(
            "SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date::text FROM ingest_event"
            " WHERE tenant_id = %s ORDER BY 1",
            [tenant_id],
        ).fetchall()
    return ledger, enriched, [d for (d,) in days]


def run(drill: Drill, result: dict) -> None:
    args = drill.args
    log = drill.log
    tmp = drill.workdir
    sock = drill.sock
    sock.mkdir()
    for path in (tmp, sock):
        drill.chown(path)
    version = drill.run([drill.pgbackrest, "version"], timeout=30).stdout.strip()
    result["pgbackrest_version"] = version

    # 1. the cluster and pgBackRest
    data = tmp / "pgdata"
    log(f"initdb {data} (PostgreSQL 15, port {drill.pg_port}); {version}")
    drill.initdb(data)
    drill.write_pgbackrest_conf(data)
    drill.pg_start(data, "postgres-original.log")

    # 2. the managed-shaped owner: the last thing the superuser does
    log(f"as the superuser: role {OWNER} (NOSUPERUSER NOBYPASSRLS) and database {DATABASE}")
    with drill.superuser() as su:
        su.execute(
            f"CREATE ROLE {OWNER} LOGIN PASSWORD '{drill.owner_password}'"
            " NOSUPERUSER NOBYPASSRLS CREATEDB CREATEROLE"
        )
        su.execute(f"CREATE DATABASE {DATABASE} OWNER {OWNER}")

    # 3. stanza, check, full backup
    log("pgbackrest stanza-create, check, full backup")
    drill.pgbr("stanza-create")
    drill.pgbr("check")
    started = time.monotonic()
    drill.pgbr("--type=full", "backup", timeout=300)
    result["backup_seconds"] = round(time.monotonic() - started, 2)
    info = json.loads(drill.pgbr("--output=json", "info").stdout)
    backups = info[0]["backup"]
    result["backup_label"] = backups[-1]["label"]
    log(f"full backup {result['backup_label']} in {result['backup_seconds']:.2f} s")

    # 4. migrate, redis, tenant, gunicorn, load before the mark -- all as codex_owner
    drill.env = drill.service_env()
    drill.start_redis()
    log(f"manage.py migrate as {OWNER}")
    started = time.monotonic()
    drill.manage("migrate", "--no-input", "-v", "0", timeout=300)
    result["migrate_seconds"] = round(time.monotonic() - started, 2)
    with drill.owner() as conn:
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    if any(role):
        raise DrillError(f"{OWNER} is privileged (superuser, bypassrls) = {role}")
    creds = json.loads(drill.manage("provision_tenant", TENANT, "--json").stdout)
    tenant_id = creds["tenant_id"]
    key = next(k for k in creds["keys"] if k["device"] is None)
    log(f"tenant {TENANT} ({tenant_id}); gunicorn on {drill.url}")
    drill.start_web("web-original")
    before = send_load(drill.url, key, "before", args.batches, args.batch_size)
    result["events_before_mark"] = len(before["answered"])
    log(f"before the mark: {len(before['answered'])} keys answered 2xx ({before['batches']})")

    # 5. the mark
    with drill.superuser() as su:
        su.execute("SET TIME ZONE 'UTC'")
        if args.target_type == "time":
            target = su.execute("SELECT now()::text").fetchone()[0]
        else:
            target = RESTORE_POINT
            lsn = su.execute("SELECT pg_create_restore_point(%s)::text", [target]).fetchone()[0]
            result["restore_point_lsn"] = lsn
    result["target_type"], result["target"] = args.target_type, target
    segment = drill.switch_wal_and_wait_archived()
    log(f"mark: --type={args.target_type} --target='{target}' (WAL {segment} archived)")

    # 6. load after the mark
    after = send_load(drill.url, key, "after", args.batches, args.batch_size)
    result["events_after_mark"] = len(after["answered"])
    log(f"after the mark: {len(after['answered'])} keys answered 2xx ({after['batches']})")
    drill.switch_wal_and_wait_archived()

    # 7. stop, restore into a fresh data directory, time it
    drill.stop_named("web-original")
    drill.pg_stop(data)
    restored = tmp / "pgdata-restored"
    restored.mkdir(mode=0o700)
    drill.chown(restored)
    drill.write_pgbackrest_conf(restored)  # pg1-path: the fresh directory
    log(f"service and cluster stopped; restoring into {restored}")
    started = time.monotonic()
    drill.pgbr(
        f"--type={args.target_type}",
        f"--target={target}",
        "--target-action=promote",
        "restore",
        timeout=300,
    )
    restore_cmd_s = time.monotonic() - started
    drill.pg_start(restored, "postgres-restored.log")
    deadline = time.monotonic() + args.step_timeout
    while True:
        with contextlib.suppress(Exception), drill.superuser() as su:
            if not su.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                break
        if time.monotonic() > deadline:
            raise DrillError(f"still in recovery after {args.step_timeout:g} s")
        time.sleep(0.05)
    restore_s = time.monotonic() - started
    result["restore_seconds"] = round(restore_s, 2)
    result["restore_command_seconds"] = round(restore_cmd_s, 2)
    result["recovery_seconds"] = round(restore_s - restore_cmd_s, 2)
    stops = [
        line.split("LOG:", 1)[-1].strip()
        for line in tail(tmp / "postgres-restored.log", 20000).splitlines()
        if "recovery stopping" in line or "recovery stopped" in line
    ]
    result["recovery_stop"] = stops[-1] if stops else None
    log(
        f"restored and promoted in {restore_s:.2f} s (pgbackrest restore {restore_cmd_s:.2f} s,"
        f" start + recovery {restore_s - restore_cmd_s:.2f} s)"
    )

    # 8. the service on the restored database, and the checks
    drill.start_web("web-restored")
    drill.start_worker()
    result["readyz"] = http_get(drill.url + "/readyz")[0]
    before_keys, after_keys = before["answered"], after["answered"]
    found_before = owner_counts(drill, tenant_id, before_keys)
    found_after = owner_counts(drill, tenant_id, after_keys)
    result["found_before"] = sum(1 for k in before_keys if found_before.get(k) == 1)
    result["found_before_more_than_once"] = sum(1 for c in found_before.values() if c > 1)
    result["found_after"] = len(found_after)
    sample_before = {k: lookup(drill.url, key, k) for k in before_keys[:1] + before_keys[-1:]}
    sample_after = {k: lookup(drill.url, key, k) for k in after_keys[:1] + after_keys[-1:]}
    result["lookups"] = {**sample_before, **sample_after}

    log("waiting for the worker to enrich the restored events")
    started = time.monotonic()
    deadline = started + args.enrich_timeout
    while True:
        ledger, enriched, days = enrichment_state(drill, tenant_id)
        if ledger and enriched >= ledger:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    result["ledger_rows"], result["enriched_rows"] = ledger, enriched
    result["enrich_seconds"] = round(time.monotonic() - started, 2)

    reconcile = {}
    command = json.loads(drill.manage("reconcile", "--date", "today", "--json").stdout)
    reconcile["command"] = [r for r in command["runs"] if r["tenant"] == TENANT]
    snippet = DRIFT_SNIPPET.format(days=days)
    unsettled = json.loads(drill.manage("shell", "-c", snippet).stdout.strip().splitlines()[-1])
    reconcile["no_settle"] = [r for r in unsettled["runs"] if r["tenant"] == TENANT]
    reconcile["failed"] = unsettled["failed"]
    result["reconcile"] = reconcile

    checks = {
        "backup_taken": bool(result.get("backup_label")),
        "load_before_answered": len(before_keys) == before["sent"] > 0,
        "load_after_answered": len(after_keys) == after["sent"] > 0,
        "recovery_ended": result["restore_seconds"] > 0,
        "recovery_stopped_at_the_target": result["recovery_stop"] is not None,
        "readyz_200": result["readyz"] == 200,
        "every_key_before_the_mark_once": result["found_before"] == len(before_keys)
        and result["found_before_more_than_once"] == 0,
        "no_key_after_the_mark": result["found_after"] == 0,
        "ledger_is_exactly_the_keys_before": ledger == len(before_keys),
        "lookups_agree": set(sample_before.values()) == {200}
        and set(sample_after.values()) == {404},
        "enriched_all": enriched == ledger,
        "reconcile_command_no_drift": bool(reconcile["command"])
        and all(r["drift"] == 0 for r in reconcile["command"]),
        "reconcile_no_settle_no_drift": not reconcile["failed"]
        and sum(r["accepted"] for r in reconcile["no_settle"]) == len(before_keys)
        and sum(r["enriched"] for r in reconcile["no_settle"]) == len(before_keys)
        and all(r["drift"] == 0 for r in reconcile["no_settle"]),
    }
    result["checks"] = checks


def table(result: dict) -> str:
    rec = result.get("reconcile") or {}
    cmd = rec.get("command") or []
    nos = rec.get("no_settle") or []

    def runs(rows):
        if not rows:
            return "-"
        return ", ".join(
            f"{r['day']}: accepted {r['accepted']} enriched {r['enriched']} drift {r['drift']:.3%}"
            for r in rows
        )

    rows = [
        ("pgBackRest", result.get("pgbackrest_version", "-")),
        ("full backup", f"{result.get('backup_label', '-')} ({result.get('backup_seconds')} s)"),
        ("recovery target", f"--type={result.get('target_type')} '{result.get('target')}'"),
        ("events answered 2xx before the mark", result.get("events_before_mark")),
        ("events answered 2xx after the mark", result.get("events_after_mark")),
        ("before-mark keys found exactly once", result.get("found_before")),
        ("after-mark keys found", result.get("found_after")),
        ("restore seconds (restore -> promoted)", result.get("restore_seconds")),
        ("  pgbackrest restore / start+recovery", _pair(result)),
        ("PostgreSQL: where recovery stopped", result.get("recovery_stop") or "-"),
        ("/readyz on the restored database", result.get("readyz")),
        ("ledger rows / enriched rows", _ledger(result)),
        ("reconcile --date today (10 min settle)", runs(cmd)),
        ("reconcile service, no settle", runs(nos)),
    ]
    for name, ok in (result.get("checks") or {}).items():
        rows.append((f"check {name}", "PASS" if ok else "FAIL"))
    rows.append(("RESULT", "PASS" if result.get("passed") else "FAIL"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _pair(result: dict) -> str:
    return f"{result.get('restore_command_seconds')} s / {result.get('recovery_seconds')} s"


def _ledger(result: dict) -> str:
    return f"{result.get('ledger_rows')} / {result.get('enriched_rows')}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target-type", choices=("time", "name"), default="time")
    p.add_argument("--batches", type=int, default=6, help="signed batches on each side of the mark")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--pg-bin", default="/usr/lib/postgresql/15/bin")
    p.add_argument("--step-timeout", type=float, default=60.0, help="bound of every start/wait")
    p.add_argument("--enrich-timeout", type=float, default=60.0)
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    if not shutil.which("pgbackrest") and not Path("/usr/bin/pgbackrest").exists():
        print("drill: pgbackrest is missing (bash scripts/ensure_pgbackrest.sh)", file=sys.stderr)
        return 2
    # Under /tmp (not a caller's private directory): the postgres OS user must reach it.
    workdir = Path(tempfile.mkdtemp(prefix="restore-drill-"))
    os.chmod(workdir, 0o700)
    drill = Drill(workdir, args)
    result: dict = {"workdir": str(workdir), "error": None}
    code = 0
    try:
        run(drill, result)
    except DrillError as exc:
        result["error"] = str(exc)
    except KeyboardInterrupt:
        result["error"] = "interrupted"
        code = 130
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        failed_logs = {}
        if result["error"] or not all((result.get("checks") or {"ran": False}).values()):
            failed_logs = {p.name: tail(p, 2000) for p in sorted(workdir.glob("*.log"))}
        drill.stop_all()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        result["cleaned_up"] = not workdir.exists()
    passed = result_report(
        result, render=table, name="drill", failed_logs=failed_logs, out=args.out
    )
    return code or (0 if passed else 1)


def result_report(result: dict, *, render, name: str, failed_logs: dict, out) -> bool:
    """Print a drill's table, its failure and failed logs' tails, write `out`; True if passed."""
    checks = result.get("checks") or {"ran": False}
    result["passed"] = result["error"] is None and all(checks.values())
    print(render(result), flush=True)
    if result["error"]:
        print(f"{name}: FAIL {result['error']}", file=sys.stderr)
    for log, text in failed_logs.items():
        print(f"--- {log} (tail) ---\n{text}", file=sys.stderr)
    if out:
        Path(out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result["passed"]


if __name__ == "__main__":
    sys.exit(main())
