"""gunicorn drains on SIGTERM: in-flight requests finish, then the master exits cleanly."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
from django.conf import settings

from tests.netutil import black_hole
from tests.procs import gunicorn_server


@pytest.mark.slow
def test_sigterm_lets_an_in_flight_request_finish_then_exits_zero():
    with black_hole() as hung:
        _drain_on_sigterm(hung)


def _drain_on_sigterm(black_hole: int) -> None:
    env = {
        "DATABASE_URL": settings.DATABASE_URL,
        # A Redis that accepts and never answers makes /readyz take its full check timeout:
        # a request that is reliably in flight when SIGTERM arrives.
        "REDIS_URL": f"redis://127.0.0.1:{black_hole}/0",
    }
    with gunicorn_server(env) as (base, proc):
        result: dict = {}

        def slow_request():
            started = time.monotonic()
            result["response"] = httpx.get(f"{base}/readyz", timeout=10)
            result["elapsed"] = time.monotonic() - started

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.4)  # let the request reach the worker before the signal (not a race fix)
        proc.send_signal(signal.SIGTERM)
        thread.join(timeout=15)
        exit_code = proc.wait(timeout=30)
    response = result["response"]
    assert response.status_code == 503  # a complete answer, not a reset connection
    assert response.json()["checks"]["redis"] != "ok"
    assert result["elapsed"] > 0.5  # it really was in flight across the signal
    assert exit_code == 0
    with pytest.raises(httpx.ConnectError, match="Connection refused"):
        httpx.get(f"{base}/healthz", timeout=1)
