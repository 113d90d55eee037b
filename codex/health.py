"""Liveness and readiness endpoints."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait

import psycopg
import redis
from django.conf import settings
from django.http import JsonResponse

from codex.env import database_config

# Each check gets this long; both run in parallel, so /readyz answers in about this much.
CHECK_TIMEOUT_S = 1.5
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")


def healthz(request):
    """Liveness: the process answers; touches no dependency."""
    return JsonResponse({"status": "ok", "version": settings.VERSION})


def _check_postgres() -> None:
    db = database_config(settings.DATABASE_URL)
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        connect_timeout=1,
        options="-c statement_timeout=1000",
        autocommit=True,
    ) as conn:
        conn.execute("SELECT 1")


def _check_redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


CHECKS = {"postgres": _check_postgres, "redis": _check_redis}


def readyz(request):
    """Readiness: PostgreSQL and Redis both answer, checked in parallel with short timeouts."""
    started = time.monotonic()
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
    failing = [name for name, state in results.items() if state != "ok"]
    body = {
        "status": "ok" if not failing else "unavailable",
        "checks": results,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    if failing:
        from codex.context import request_id

        body["error"] = {
            "code": "dependency_unavailable",
            "message": f"not ready: {', '.join(failing)} failing",
            "rid": request_id.get(),
        }
        return JsonResponse(body, status=503)
    return JsonResponse(body)
