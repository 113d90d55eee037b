"""Liveness and readiness endpoints."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

import psycopg
import redis
from django.conf import settings
from django.http import JsonResponse

from codex import error_codes as codes
from codex.build import BUILD
from codex.env import database_config
from codex.errors import error_body

# Each check gets this long; both run in parallel, so /readyz answers in about this much.
CHECK_TIMEOUT_S = 1.5
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")


def healthz(request):
    """Liveness: the process answers; touches no dependency."""
    return JsonResponse({"status": "ok", "version": BUILD.version, "commit": BUILD.commit})


class _Probe:
    """One long-lived connection per process, re-opened after a failure.

    /readyz is public: a connection per call would let anyone exhaust PostgreSQL's connection
    slots (and pay a backend start each time). Calls are serialised on one connection and
    coalesced (READY_CACHE_S), so a flood costs at most one check a second per process.
    """

    def __init__(self, setting: str, connect, check):
        self._setting, self._connect, self._check = setting, connect, check
        self._conn = None
        self._url: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            url = getattr(settings, self._setting)
            if url != self._url:  # settings changed (tests): never probe the old server
                self.reset()
                self._url = url
            for _attempt in range(2):
                fresh = self._conn is None
                try:
                    if fresh:
                        self._conn = self._connect(url)
                    self._check(self._conn)
                    return
                except Exception:
                    self.reset()
                    # A kept connection may have died with a server that failed over since: one
                    # more try on a new connection says whether the service is ready now.
                    if fresh:
                        raise

    def reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def _pg_connect(url: str):
    db = database_config(url)
    return psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        connect_timeout=1,
        options="-c statement_timeout=1000",
        autocommit=True,
    )


def _redis_connect(url: str):
    if settings.REDIS_SENTINELS:  # the current master, wherever the Sentinels say it is
        from codex.sentinel import master_client

        return master_client(
            url,
            settings.REDIS_SENTINELS,
            settings.REDIS_SENTINEL_MASTER,
            timeout=1,
            sentinel_password=settings.REDIS_SENTINEL_PASSWORD,
        )
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


_check_postgres = _Probe("DATABASE_URL", _pg_connect, lambda conn: conn.execute("SELECT 1"))
_check_redis = _Probe("REDIS_URL", _redis_connect, lambda client: client.ping())


CHECKS = {"postgres": _check_postgres, "redis": _check_redis}


READY_CACHE_S = 1.0
_last: tuple[float, tuple[str, str], dict[str, str]] | None = None
_last_lock = threading.Lock()


def _run_checks() -> dict[str, str]:
    futures = {name: _pool.submit(check) for name, check in CHECKS.items()}
    wait(futures.values(), timeout=CHECK_TIMEOUT_S)
    results: dict[str, str] = {}
    for name, future in futures.items():
        if not future.done():
            results[name] = "timeout"
        elif future.exception() is not None:
            exc = future.exception()
            results[name] = f"error: {type(exc).__name__}"
        else:
            results[name] = "ok"
    return results


def readyz(request):
    """Readiness: PostgreSQL and Redis both answer, checked in parallel with short timeouts."""
    global _last
    started = time.monotonic()
    target = (settings.DATABASE_URL, settings.REDIS_URL)
    with _last_lock:  # concurrent callers share one check
        if _last is None or _last[1] != target or started - _last[0] >= READY_CACHE_S:
            _last = (time.monotonic(), target, _run_checks())
        results = _last[2]
    failing = [name for name, state in results.items() if state != "ok"]
    body = {
        "status": "ok" if not failing else "unavailable",
        "checks": results,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    if failing:
        error = codes.DEPENDENCY_UNAVAILABLE.error(f"not ready: {', '.join(failing)} failing")
        body.update(error_body(error.code, error.message))
        return JsonResponse(body, status=error.status_code)
    return JsonResponse(body)
