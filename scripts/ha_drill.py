#!/usr/bin/env python3
"""High-availability drill: Patroni + etcd + HAProxy + Redis Sentinel under signed load, 0 lost.

    python scripts/ha_drill.py [--faults kill9,switchover,sigstop,redis] [--out result.json]

Runs the reference topology of infra/ha/ on this machine, on 127.0.0.1 ports in one temporary
directory (the shipped files with loopback addresses, ports, paths and secrets overridden):
3 etcd members, 2 PostgreSQL 15 nodes under Patroni (synchronous_mode), HAProxy checking
Patroni's /primary, a Redis master + replica and 3 Sentinels. Missing Debian packages (patroni,
etcd-server, haproxy, redis-sentinel) are installed when we are root. Patroni and PostgreSQL run
as the `postgres` OS user.

As the superuser only a managed-shaped owner is made (codex.db.bootstrap.managed_owner_ensure:
NOSUPERUSER NOBYPASSRLS CREATEDB CREATEROLE); migrate and the service run as that owner through
HAProxy, with REDIS_SENTINELS. gunicorn + a Celery worker + beat serve a steady signed load: raw
signed batches (retried with the same keys on 503 / refused connections) and SDK clients
(codex_sdk.Client, durable queues). Every idempotency key answered 2xx is recorded. Faults:

  kill9       kill -9 of the primary's postmaster (Patroni restarts it; the lease is held)
  switchover  a planned `patronictl switchover` to the synchronous standby
  sigstop     SIGSTOP of the leader's Patroni until its lease lapses and the standby takes
              over; then SIGCONT (the old primary rejoins as a replica)
  redis       kill -9 of the Redis master; the Sentinels promote the replica

After each: every acknowledged key is in the (new) primary's ledger exactly once and enriched
(read as the owner in a system scope: forced RLS), clients saw only 503 + Retry-After or
refused connections (retried), the SDK queues drain to zero, reconcile shows no drift, and
gunicorn and the worker are the same processes as at the start. A table per fault on stdout,
the figures as JSON in --out; exit 1 when a check fails. Every process is stopped on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # codex, the SDK
sys.path.insert(0, str(Path(__file__).resolve().parent))

from restore_drill import (  # the peer drill's plumbing, reused as is
    DRIFT_SNIPPET,
    ROOT,
    VENV_BIN,
    Drill,
    DrillError,
    free_port,
    http_get,
    result_report,
    signed,
    tail,
)

OWNER = "codex_owner"
DATABASE = "codex"
TENANT = "ha-drill"
SCOPE = "codex"
MASTER = "codex"
HA = ROOT / "infra" / "ha"
FAULTS = ("kill9", "switchover", "sigstop", "redis")
PACKAGES = {
    "patroni": "patroni",
    "etcd": "etcd-server",
    "etcdctl": "etcd-client",
    "haproxy": "haproxy",
    "redis-sentinel": "redis-sentinel",
    # Patroni's etcd (v2) client; a Recommends of patroni only, so not there by itself.
    "/usr/lib/python3/dist-packages/etcd/__init__.py": "python3-etcd",
}
# Patroni's floor (it raises anything lower): lease 20 s, loop 2 s, retries 4 s.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 20, 2, 4


def ensure_packages() -> None:
    """apt-get install what is missing (once, as root); DrillError when it stays missing."""
    missing = [pkg for cmd, pkg in PACKAGES.items() if not _which(cmd)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise DrillError(
            f"missing {', '.join(missing)}: sudo apt-get install -y {' '.join(missing)}"
        )
    apt = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-o", "DPkg::Lock::Timeout=300"]
    print(f"ha-drill: apt-get install {' '.join(missing)}", flush=True)
    for argv in (
        [*apt, "update", "-qq"],
        [*apt, "install", "-y", "-qq", "--no-install-recommends"],
    ):
        argv = argv + (missing if argv[-1] == "--no-install-recommends" else [])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if done.returncode:
            raise DrillError(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    still = [pkg for cmd, pkg in PACKAGES.items() if not _which(cmd)]
    if still:
        raise DrillError(f"still missing after apt-get: {', '.join(still)}")


def _which(cmd: str) -> str | None:
    if cmd.startswith("/"):
        return cmd if Path(cmd).exists() else None
    return shutil.which(cmd) or next(
        (str(p) for d in ("/usr/bin", "/usr/sbin") if (p := Path(d) / cmd).exists()), None
    )


class HADrill(Drill):
    """The peer drill's process and file plumbing, with the HA topology on top."""

    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        super().__init__(workdir, args)
        self.su_password = secrets.token_hex(16)
        self.repl_password = secrets.token_hex(16)
        self.redis_password = secrets.token_hex(16)
        self.etcd = [(free_port(), free_port()) for _ in range(3)]  # (client, peer)
        self.nodes = {f"pg-{i}": {"pg": free_port(), "rest": free_port()} for i in (1, 2)}
        self.haproxy_port = free_port()
        self.redis_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]

    # --- processes as the postgres OS user --------------------------------------------------

    def spawn_postgres(self, name: str, argv: list[str]) -> subprocess.Popen:
        """setpriv execs (no fork): the Popen pid is Patroni's own, for SIGSTOP."""
        if self.as_root:
            argv = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "PATRONI"))}
        env["HOME"] = str(self.workdir)
        return self.spawn(name, argv, env)

    def proc(self, name: str) -> subprocess.Popen:
        return next(p for n, p in self.processes if n == name)

    # --- etcd -----------------------------------------------------------------------------

    def start_etcd(self) -> None:
        cluster = ",".join(f"e{i}=http://127.0.0.1:{p}" for i, (_, p) in enumerate(self.etcd, 1))
        for i, (client, peer) in enumerate(self.etcd, 1):
            argv = [_which("etcd"), "--name", f"e{i}", "--data-dir", str(self.workdir / f"etcd{i}")]
            argv += ["--listen-client-urls", f"http://127.0.0.1:{client}"]
            argv += ["--advertise-client-urls", f"http://127.0.0.1:{client}"]
            argv += ["--listen-peer-urls", f"http://127.0.0.1:{peer}"]
            argv += ["--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}"]
            argv += ["--initial-cluster", cluster, "--initial-cluster-state", "new"]
            argv += ["--initial-cluster-token", f"ha-drill-{os.getpid()}"]
            argv += ["--heartbeat-interval", "100", "--election-timeout", "1000"]
            argv += ["--enable-v2=true"]  # infra/ha/etcd/etcd-1.conf.yml says why
            self.spawn(f"etcd{i}", argv, dict(os.environ))
        self.wait(
            "etcd quorum",
            lambda: (
                http_get(f"http://127.0.0.1:{self.etcd[0][0]}/health")[1].get("health") == "true"
            ),
        )

    # --- Patroni --------------------------------------------------------------------------

    def patroni_config(self, name: str) -> Path:
        """infra/ha/patroni/<name>.yml with loopback addresses, drill ports, paths, secrets."""
        import yaml

        conf = yaml.safe_load((HA / "patroni" / f"{name}.yml").read_text())
        node = self.nodes[name]
        conf["restapi"].update(
            listen=f"127.0.0.1:{node['rest']}", connect_address=f"127.0.0.1:{node['rest']}"
        )
        dcs_api = "etcd3" if "etcd3" in conf else "etcd"
        conf[dcs_api]["hosts"] = [f"127.0.0.1:{c}" for c, _ in self.etcd]
        dcs = conf["bootstrap"]["dcs"]
        dcs.update(ttl=TTL, loop_wait=LOOP_WAIT, retry_timeout=RETRY_TIMEOUT)
        params = dcs["postgresql"]["parameters"]
        params.update(max_connections=60, wal_keep_size="128MB", shared_buffers="32MB")
        conf["bootstrap"]["initdb"] = [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"]
        conf["bootstrap"]["pg_hba"] = [
            "local all all trust",
            "host replication replicator 127.0.0.1/32 scram-sha-256",
            "host all all 127.0.0.1/32 scram-sha-256",
        ]
        pg = conf["postgresql"]
        pg.update(
            listen=f"127.0.0.1:{node['pg']}",
            connect_address=f"127.0.0.1:{node['pg']}",
            data_dir=str(self.workdir / name),
            bin_dir=str(self.pg_bin),
            pgpass=str(self.workdir / f"pgpass-{name}"),
        )
        pg["authentication"]["superuser"]["password"] = self.su_password
        pg["authentication"]["replication"]["password"] = self.repl_password
        pg["parameters"]["unix_socket_directories"] = str(self.sock)
        conf["log"] = {"level": "INFO", "dir": str(self.workdir / f"patroni-{name}-log")}
        (self.workdir / f"patroni-{name}-log").mkdir(exist_ok=True)
        self.chown(self.workdir / f"patroni-{name}-log")
        path = self.workdir / f"patroni-{name}.yml"
        path.write_text(yaml.safe_dump(conf, sort_keys=False))
        os.chmod(path, 0o600)
        self.chown(path)
        return path

    def start_patroni(self, name: str) -> None:
        self.running_pg.append(self.workdir / name)  # stop_all stops a postmaster left behind
        self.spawn_postgres(f"patroni-{name}", [_which("patroni"), str(self.patroni_config(name))])

    def cluster(self) -> list[dict]:
        """Members from any Patroni REST API that answers (GET /cluster)."""
        for node in self.nodes.values():
            status, body = http_get(f"http://127.0.0.1:{node['rest']}/cluster")
            if status == 200 and body.get("members"):
                return body["members"]
        return []

    def leader(self) -> str | None:
        return next((m["name"] for m in self.cluster() if m["role"] == "leader"), None)

    def healthy(self) -> str | None:
        """The leader's name once the primary behind HAProxy is it, with a streaming sync standby.

        Patroni's own view (GET /cluster) is not enough: a demoted member can be listed as
        running while it cannot follow the new timeline. pg_stat_replication on the primary says.
        """
        leader = self.leader()
        if not leader:
            return None
        with self.superuser() as su:
            in_recovery, port, sync = su.execute(
                "SELECT pg_is_in_recovery(), current_setting('port')::int,"
                " (SELECT count(*) FROM pg_stat_replication"
                "  WHERE state = 'streaming' AND sync_state = 'sync')"
            ).fetchone()
        if in_recovery or port != self.nodes[leader]["pg"] or not sync:
            return None
        return leader

    def postmaster_pid(self, name: str) -> int:
        return int((self.workdir / name / "postmaster.pid").read_text().split()[0])

    # --- HAProxy, Redis, Sentinel ---------------------------------------------------------

    def start_haproxy(self) -> None:
        text = (HA / "haproxy.cfg").read_text()
        text = text.replace("bind *:5000", f"bind 127.0.0.1:{self.haproxy_port}")
        text = text.replace("bind *:5001", f"bind 127.0.0.1:{free_port()}")
        text = text.replace("bind 127.0.0.1:7000", f"bind 127.0.0.1:{free_port()}")
        text = text.replace("log stdout format raw local0", "")
        for name, node in self.nodes.items():
            text = text.replace(f"{name}.internal:5432", f"127.0.0.1:{node['pg']}")
            text = re.sub(
                rf"(server {name} 127\.0\.0\.1:{node['pg']} .*check port) 8008",
                rf"\g<1> {node['rest']}",
                text,
            )
        path = self.workdir / "haproxy.cfg"
        path.write_text(text)
        self.run([_which("haproxy"), "-c", "-f", str(path)], timeout=30, what="haproxy -c")
        self.spawn("haproxy", [_which("haproxy"), "-db", "-f", str(path)], dict(os.environ))

    def redis_conf(self, source: str, port: int, extra: str = "") -> Path:
        text = (HA / "redis" / source).read_text()
        text = text.replace("bind 0.0.0.0", "bind 127.0.0.1").replace("port 6379", f"port {port}")
        text = text.replace("port 26379", f"port {port}").replace("CHANGE_ME", self.redis_password)
        text = text.replace("redis-1.internal 6379", f"127.0.0.1 {self.redis_ports[0]}")
        text = text.replace("protected-mode yes", "protected-mode no")
        path = self.workdir / f"{source.removesuffix('.conf')}-{port}.conf"
        path.write_text(text + f"\ndir {self.workdir}\n{extra}\n")
        return path

    def start_redis_ha(self) -> None:
        server = _which("redis-server")
        master, replica = self.redis_ports
        self.spawn("redis-1", [server, str(self.redis_conf("redis-master.conf", master))], {})
        self.spawn("redis-2", [server, str(self.redis_conf("redis-replica.conf", replica))], {})
        for i, port in enumerate(self.sentinel_ports, 1):
            conf = self.redis_conf("sentinel.conf", port)
            text = conf.read_text()
            text = text.replace(
                "down-after-milliseconds codex 5000", "down-after-milliseconds codex 2000"
            )
            text = text.replace("failover-timeout codex 30000", "failover-timeout codex 10000")
            conf.write_text(text)
            self.spawn(f"sentinel{i}", [server, str(conf), "--sentinel"], {})
        self.wait("the Sentinels to agree on the master", lambda: self.redis_master() is not None)

    def redis_master(self, *, with_replica: bool = True) -> int | None:
        """The master's port as a quorum of Sentinels reports it (or None).

        with_replica: only once a replica streams from it (the start, and after the old master
        has rejoined); right after a failover the new master is alone.
        """
        import redis

        seen = []
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError, OSError):
                client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
                _host, mport = client.sentinel_get_master_addr_by_name(MASTER)
                replicas = client.sentinel_slaves(MASTER)
                if not with_replica or any(r.get("master-link-status") == "ok" for r in replicas):
                    seen.append(int(mport))
                client.close()
        # Every Sentinel, not just a quorum: a client asking one that lags would be sent to the
        # old master, which the drill restarts right after.
        return seen[0] if len(seen) == len(self.sentinel_ports) and len(set(seen)) == 1 else None

    # --- waiting --------------------------------------------------------------------------

    def wait(self, what: str, predicate, timeout: float | None = None, interval: float = 0.25):
        deadline = time.monotonic() + (timeout or self.args.step_timeout)
        while True:
            with contextlib.suppress(Exception):
                value = predicate()
                if value:
                    return value
            if time.monotonic() > deadline:
                raise DrillError(f"no {what} within {timeout or self.args.step_timeout:g} s")
            time.sleep(interval)

    # --- the service ----------------------------------------------------------------------

    @property
    def owner_url(self) -> str:
        return (
            f"postgresql://{OWNER}:{self.owner_password}@127.0.0.1:{self.haproxy_port}/{DATABASE}"
        )

    def superuser(self):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.haproxy_port,
            user="postgres",
            password=self.su_password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        )

    def service_env(self) -> dict[str, str]:
        env = super().service_env()
        env.update(
            REDIS_URL=f"redis://:{self.redis_password}@127.0.0.1:{self.redis_ports[0]}/0",
            REDIS_SENTINELS=",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports),
            REDIS_SENTINEL_MASTER=MASTER,
            CODEX_CELERY_QUEUE="ha-drill",
            CODEX_CACHE_PREFIX="ha-drill",
            CODEX_INGEST_RATE_PER_SEC="100000",
        )
        return env

    def start_beat(self) -> None:
        argv = [str(VENV_BIN / "celery"), "-A", "codex", "beat", "--loglevel", "WARNING"]
        self.spawn("beat", argv, dict(self.env))


# --- load -------------------------------------------------------------------------------------


class Load:
    """Raw signed batches and SDK clients; every answer and every 2xx'd key, per phase."""

    def __init__(self, url: str, key: dict, workdir: Path, raw: int, sdk: int, batch: int):
        self.url, self.key, self.batch = url, key, batch
        self.lock = threading.Lock()
        self.stop_evt = threading.Event()
        self.abort = threading.Event()  # the drill failed: stop retrying at once
        self.phase = "setup"
        self.acked: dict[str, set[str]] = {}
        self.answers: dict[str, dict[str, int]] = {}
        self.bad: list[str] = []
        self.ok_times: list[float] = []
        self.seq = 0
        self.threads = [threading.Thread(target=self._raw, args=(i,)) for i in range(raw)]
        from codex_sdk import Client

        self.clients = [
            Client(
                url,
                key["key_id"],
                key["secret"],
                queue_path=workdir / f"sdk-{i}.sqlite3",
                timeout=15,
                backoff_base=0.2,
                backoff_max=2.0,
                on_sync=self._on_sync,
            )
            for i in range(sdk)
        ]
        self.threads += [
            threading.Thread(target=self._sdk, args=(c, i)) for i, c in enumerate(self.clients)
        ]

    def note(self, status: str, keys: list[str] = (), ok: bool = False) -> None:
        with self.lock:
            answers = self.answers.setdefault(self.phase, {})
            answers[status] = answers.get(status, 0) + 1
            if ok:
                self.acked.setdefault(self.phase, set()).update(keys)
                self.ok_times.append(time.monotonic())

    def _on_sync(self, result) -> None:
        keys = [k for k, s in result.statuses.items() if s in ("accepted", "duplicate")]
        if keys:
            self.note("sdk 2xx", keys, ok=True)
        if result.error:
            self.note(f"sdk error: {result.error[:60]}")

    def _sdk(self, client, i: int) -> None:
        # 25 events/s queued; a flush every second (the app's own trigger: the background
        # thread would wait for the server's minIntervalSec between syncs).
        while not self.stop_evt.is_set():
            for _ in range(5):
                for _ in range(5):
                    client.track("drill.event", {"amount": "1.00", "currency": "EUR", "sdk": i})
                time.sleep(0.2)
            try:
                client.flush(timeout=10)
            except Exception as exc:  # noqa: BLE001 - counted and shown: the check fails on it
                self.note(f"sdk exception {type(exc).__name__}")

    def _raw(self, i: int) -> None:
        while not self.stop_evt.is_set():
            with self.lock:
                self.seq += 1
                n = self.seq
            occurred = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            events = [
                {
                    "idempotency_key": f"raw-{i}-{n:06d}-{j:02d}",
                    "type": "drill.event",
                    "occurred_at": occurred,
                    "source": "ha-drill",
                    "payload": {"n": n, "amount": "1.00", "currency": "EUR"},
                }
                for j in range(self.batch)
            ]
            body = json.dumps({"events": events}).encode()
            # The same batch until it is answered 2xx (the SDK's contract); bounded by the run.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not self.abort.is_set():
                status, answer, retry_after = self._post(body)
                if 200 <= status < 300:
                    keys = [
                        r["idempotency_key"]
                        for r in answer.get("results", [])
                        if r.get("status") in ("accepted", "duplicate")
                    ]
                    self.note(str(status), keys, ok=True)
                    break
                label = "refused" if status == 0 else str(status)
                if status == 503 and retry_after is None:
                    label = "503 without Retry-After"
                self.note(label)
                if status not in (0, 503):
                    with self.lock:
                        self.bad.append(f"{status}: {json.dumps(answer)[:200]}")
                time.sleep(min(1.0, float(retry_after or 0.5)) * 0.5)
            else:
                with self.lock:
                    self.bad.append(f"batch raw-{i}-{n} never answered 2xx in 120 s")

    def _post(self, body: bytes) -> tuple[int, dict, str | None]:
        request = urllib.request.Request(
            self.url + "/v1/events", data=body, headers=signed(self.key, body), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read()), None
        except urllib.error.HTTPError as exc:
            with contextlib.suppress(ValueError):
                return exc.code, json.loads(exc.read() or b"{}"), exc.headers.get("Retry-After")
            return exc.code, {}, exc.headers.get("Retry-After")
        except OSError:
            return 0, {}, None

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self, *, abort: bool = False) -> None:
        if abort:
            self.abort.set()
        self.stop_evt.set()
        for t in self.threads:
            t.join(timeout=150)

    def drain_sdk(self, timeout: float) -> list[int]:
        """flush() every SDK client until its queue is empty; the depths left."""
        depths = []
        for client in self.clients:
            deadline = time.monotonic() + timeout
            while client.status().queue_depth and time.monotonic() < deadline:
                client.flush(timeout=max(1.0, deadline - time.monotonic()))
            depths.append(client.status().queue_depth + client.status().dead_letters)
        return depths

    def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                client.close(timeout=5, flush=False)

    def longest_gap(self, since: float, until: float) -> float:
        with self.lock:
            times = sorted(t for t in self.ok_times if since <= t <= until)
        points = [since, *times, until] if times else [since, until]
        return max(b - a for a, b in itertools.pairwise(points))


# --- checks -----------------------------------------------------------------------------------


def ledger_counts(drill: HADrill, tenant_id: str, keys: list[str]) -> dict[str, tuple[int, int]]:
    """key -> (rows, enriched rows) in ingest_event, as the owner in a system scope."""
    with drill.owner() as conn, conn.transaction():
        conn.execute("SELECT set_config('app.system_scope', 'ha-drill', true)")
        rows = conn.execute(
            "SELECT idempotency_key, count(*), count(*) FILTER (WHERE enriched_at IS NOT NULL)"
            " FROM ingest_event WHERE tenant_id = %s AND idempotency_key = ANY(%s) GROUP BY 1",
            [tenant_id, keys],
        ).fetchall()
    return {k: (n, e) for k, n, e in rows}


def all_enriched(drill: HADrill, tenant_id: str, keys: list[str]) -> bool:
    """Every key in the ledger and enriched (a missing key keeps it false; lost counts it)."""
    counts = ledger_counts(drill, tenant_id, keys)
    return len(counts) == len(keys) and all(e >= 1 for _, e in counts.values())


def until(predicate, timeout: float, interval: float = 0.5) -> bool:
    """Poll `predicate` (errors count as false) until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return True
        time.sleep(interval)
    return False


def unenriched(drill: HADrill, tenant_id: str) -> tuple[int, list[str]]:
    with drill.owner() as conn, conn.transaction():
        conn.execute("SELECT set_config('app.system_scope', 'ha-drill', true)")
        left = conn.execute(
            "SELECT count(*) FROM ingest_event WHERE tenant_id = %s AND enriched_at IS NULL",
            [tenant_id],
        ).fetchone()[0]
        days = conn.execute(
            "SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date::text FROM ingest_event"
            " WHERE tenant_id = %s ORDER BY 1",
            [tenant_id],
        ).fetchall()
    return left, [d for (d,) in days]


def inject(drill: HADrill, fault: str) -> dict:
    """Inject one fault; return what was done. Waits (bounded) until the cluster is whole."""
    info: dict = {}
    if fault == "redis":
        port = drill.redis_master()
        name = f"redis-{drill.redis_ports.index(port) + 1}"
        info["killed"] = name
        os.kill(drill.proc(name).pid, signal.SIGKILL)
        new = drill.wait(
            "new Redis master",
            lambda: (m := drill.redis_master(with_replica=False)) and m != port and m,
        )
        info["new_master"] = f"redis-{drill.redis_ports.index(new) + 1}"
        # The old master returns empty and the Sentinels make it a replica of the new one.
        server = _which("redis-server")
        conf = drill.workdir / f"redis-{'master' if name == 'redis-1' else 'replica'}-{port}.conf"
        drill.processes = [(n, p) for n, p in drill.processes if n != name]
        drill.spawn(name, [server, str(conf)], {})
        drill.wait("the old master back as a replica", lambda: drill.redis_master() == new)
        return info
    leader = drill.leader()
    info["leader_before"] = leader
    if fault == "kill9":
        pid = drill.postmaster_pid(leader)
        os.kill(pid, signal.SIGKILL)
        info["killed_postmaster"] = pid
        time.sleep(LOOP_WAIT)
    elif fault == "switchover":
        candidate = next(n for n in drill.nodes if n != leader)
        conf = drill.workdir / f"patroni-{leader}.yml"
        argv = [_which("patronictl"), "-c", str(conf), "switchover", SCOPE]
        argv += ["--leader", leader, "--candidate", candidate, "--force"]
        info["patronictl"] = drill.run(argv, timeout=90, what="patronictl switchover").stdout[-400:]
    elif fault == "sigstop":
        patroni = drill.proc(f"patroni-{leader}")
        os.kill(patroni.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            drill.wait(
                "promotion of the standby",
                lambda: (lead := drill.leader()) and lead != leader,
                timeout=TTL * 4,
            )
            info["promoted_after_s"] = round(time.monotonic() - stopped, 2)
        finally:
            os.kill(patroni.pid, signal.SIGCONT)
    drill.wait("whole cluster (leader + streaming sync standby)", drill.healthy, timeout=180)
    info["leader_after"] = drill.leader()
    return info


def run(drill: HADrill, result: dict) -> None:
    args, log = drill.args, drill.log
    drill.sock.mkdir()
    for path in (drill.workdir, drill.sock):
        drill.chown(path)

    log(f"etcd x3, Patroni x2 (PostgreSQL 15, ttl {TTL} s), HAProxy :{drill.haproxy_port}")
    drill.start_etcd()
    drill.start_haproxy()
    drill.start_patroni("pg-1")
    drill.wait("Patroni leader", drill.leader, timeout=120)
    drill.start_patroni("pg-2")
    drill.wait("synchronous standby", drill.healthy, timeout=180)
    log("Redis master + replica, 3 Sentinels")
    drill.start_redis_ha()

    from codex.db.bootstrap import login_is_privileged, managed_owner_ensure

    with drill.superuser() as su:
        managed_owner_ensure(su, owner=OWNER, database=DATABASE, password=drill.owner_password)
    with drill.owner() as conn:
        if login_is_privileged(conn):
            raise DrillError(f"{OWNER} is a superuser or has BYPASSRLS")
    drill.env = drill.service_env()
    log(f"manage.py migrate as {OWNER} (NOSUPERUSER NOBYPASSRLS) through HAProxy")
    drill.manage("migrate", "--no-input", "-v", "0", timeout=300)
    creds = json.loads(drill.manage("provision_tenant", TENANT, "--json").stdout)
    tenant_id = creds["tenant_id"]
    key = next(k for k in creds["keys"] if k["device"] is None)
    drill.start_web("web")
    drill.start_worker()
    drill.start_beat()
    pids = {n: drill.proc(n).pid for n in ("web", "worker", "beat")}

    load = Load(drill.url, key, drill.workdir, args.raw_clients, args.sdk_clients, args.batch)
    result["faults"] = []
    try:
        load.start()
        for fault in args.faults:
            row: dict = {"fault": fault}
            result["faults"].append(row)
            load.phase = fault
            time.sleep(args.settle)
            log(f"fault {fault}")
            started = time.monotonic()
            row.update(inject(drill, fault))
            recovered = time.monotonic()
            drill.wait(
                "a 2xx after the fault",
                lambda since=recovered: load.ok_times[-1] > since,
                timeout=120,
            )
            time.sleep(args.settle)
            with load.lock:
                so_far = sorted(load.acked.get(fault, set()))
            if until(lambda keys=so_far: all_enriched(drill, tenant_id, keys), args.enrich_timeout):
                row["enrichment_caught_up_s"] = round(time.monotonic() - recovered, 2)
            row["fault_to_whole_s"] = round(recovered - started, 2)
            row["longest_unavailability_s"] = round(load.longest_gap(started, time.monotonic()), 2)
            log(f"{fault}: {row}")
    except BaseException:
        load.stop(abort=True)
        load.close()
        raise
    load.phase = "drain"
    load.stop()
    depths = load.drain_sdk(timeout=120)
    result["sdk_queue_left"] = depths
    caught_up_from = time.monotonic()
    drill.wait(
        "enrichment of every ledger row",
        lambda: unenriched(drill, tenant_id)[0] == 0,
        timeout=args.enrich_timeout,
        interval=0.5,
    )
    result["final_enrichment_s"] = round(time.monotonic() - caught_up_from, 2)
    left, days = unenriched(drill, tenant_id)

    for row in result["faults"]:
        phase = row["fault"]
        keys = sorted(load.acked.get(phase, set()))
        counts = ledger_counts(drill, tenant_id, keys)
        answers = load.answers.get(phase, {})
        row.update(
            requests=sum(answers.values()),
            acknowledged=len(keys),
            stored=sum(1 for k in keys if counts.get(k, (0, 0))[0] >= 1),
            lost=sum(1 for k in keys if k not in counts),
            duplicates=sum(1 for n, _ in counts.values() if n > 1),
            enriched=sum(e for _, e in counts.values()),
            answers_503=answers.get("503", 0),
            answers=answers,
        )
    drain_keys = sorted(load.acked.get("drain", set()))
    drain_counts = ledger_counts(drill, tenant_id, drain_keys)
    result["drain_acknowledged"] = len(drain_keys)
    result["drain_lost"] = sum(1 for k in drain_keys if k not in drain_counts)

    snippet = DRIFT_SNIPPET.format(days=days)
    drift = json.loads(drill.manage("shell", "-c", snippet).stdout.strip().splitlines()[-1])
    runs = [r for r in drift["runs"] if r["tenant"] == TENANT]
    result["reconcile"] = runs
    result["readyz"] = drill.wait(
        "/readyz 200", lambda: http_get(drill.url + "/readyz")[0] == 200 and 200, timeout=15
    )
    same = {n: drill.proc(n).pid == pid and drill.proc(n).poll() is None for n, pid in pids.items()}
    result["same_processes"] = same
    result["bad_answers"] = load.bad[:20]
    load.close()

    rows = result["faults"]
    result["checks"] = {
        "every_fault_ran": [r["fault"] for r in rows] == list(args.faults),
        "load_acknowledged": all(r["acknowledged"] > 0 for r in rows),
        "zero_lost": all(r["lost"] == 0 for r in rows) and result["drain_lost"] == 0,
        "zero_duplicates": all(r["duplicates"] == 0 for r in rows),
        "all_enriched": left == 0 and all(r["enriched"] == r["acknowledged"] for r in rows),
        "enrichment_caught_up_after_each_fault": all(
            r.get("enrichment_caught_up_s") is not None for r in rows
        ),
        "only_503_or_refused": not load.bad
        and all(
            label.startswith(("2", "503", "refused", "sdk 2xx", "sdk error"))
            and label != "503 without Retry-After"
            for r in rows
            for label in r["answers"]
        ),
        "sdk_queues_drained": not any(depths),
        "reconcile_no_drift": bool(runs)
        and not drift["failed"]
        and all(r["drift"] == 0 for r in runs),
        "readyz_200": result["readyz"] == 200,
        "web_worker_beat_not_restarted": all(same.values()),
    }


COLUMNS = (
    ("fault", "fault"),
    ("requests", "requests"),
    ("acknowledged", "acked"),
    ("stored", "stored"),
    ("lost", "lost"),
    ("duplicates", "dups"),
    ("answers_503", "503s"),
    ("longest_unavailability_s", "longest unavail s"),
    ("enrichment_caught_up_s", "enriched after s"),
)


def table(result: dict) -> str:
    rows = result.get("faults") or []
    head = [title for _, title in COLUMNS]
    body = [[str(r.get(key, "-")) for key, _ in COLUMNS] for r in rows]
    widths = [max(len(c) for c in col) for col in zip(head, *body, strict=False)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=False))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) for row in body]
    for r in rows:
        extra = {k: r.get(k) for k in ("leader_before", "leader_after", "killed", "new_master")}
        extra = {k: v for k, v in extra.items() if v}
        lines.append(f"{r['fault']}: answers {r.get('answers')} {extra}")
    for name, ok in (result.get("checks") or {}).items():
        lines.append(f"check {name}: {'PASS' if ok else 'FAIL'}")
    lines.append(f"RESULT: {'PASS' if result.get('passed') else 'FAIL'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of {FAULTS}")
    p.add_argument("--raw-clients", type=int, default=2)
    p.add_argument("--sdk-clients", type=int, default=2)
    p.add_argument("--batch", type=int, default=10, help="events per raw signed batch")
    p.add_argument("--settle", type=float, default=3.0, help="load before and after each fault")
    p.add_argument("--pg-bin", default="/usr/lib/postgresql/15/bin")
    p.add_argument("--step-timeout", type=float, default=60.0, help="bound of every start/wait")
    p.add_argument("--enrich-timeout", type=float, default=150.0)
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    args.faults = [f for f in args.faults.split(",") if f]
    if unknown := set(args.faults) - set(FAULTS):
        p.error(f"unknown faults: {', '.join(sorted(unknown))}")

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    workdir = Path(tempfile.mkdtemp(prefix="ha-drill-"))
    os.chmod(workdir, 0o700)
    drill = HADrill(workdir, args)
    drill.log = lambda msg: print(f"ha-drill: {msg}", flush=True)
    result: dict = {"workdir": str(workdir), "error": None}
    code = 0
    failed_logs: dict[str, str] = {}
    try:
        ensure_packages()
        run(drill, result)
    except DrillError as exc:
        result["error"] = str(exc)
    except KeyboardInterrupt:
        result["error"] = "interrupted"
        code = 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if result["error"] or not all((result.get("checks") or {"ran": False}).values()):
            logs = sorted(workdir.glob("*.log")) + sorted(workdir.glob("patroni-*-log/*.log"))
            failed_logs = {p.name: tail(p, 1500) for p in logs}
        for _, proc in drill.processes:  # a SIGSTOPped Patroni must be able to take SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
        drill.stop_all()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        result["cleaned_up"] = not workdir.exists()
    passed = result_report(
        result, render=table, name="ha-drill", failed_logs=failed_logs, out=args.out
    )
    return code or (0 if passed else 1)


if __name__ == "__main__":
    sys.exit(main())
