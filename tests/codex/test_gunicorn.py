"""gunicorn drains on SIGTERM: in-flight requests finish, then the master exits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.netutil import black_hole, free_port

ROOT = Path(__file__).resolve().parents[2]


def _wait_until_serving(url: str, proc: subprocess.Popen, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)  # polling for the server to come up
    raise AssertionError("gunicorn did not start")


@pytest.mark.slow
def test_sigterm_lets_an_in_flight_request_finish_then_exits_zero():
    with black_hole() as hung:
        _drain_on_sigterm(hung)


def _drain_on_sigterm(black_hole: int) -> None:
    port = free_port()
    # Unset (not empty): prometheus_client would treat "" as the current directory.
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "DATABASE_URL": settings.DATABASE_URL,
        # A Redis that accepts and never answers makes /readyz take its full check timeout:
        # a request that is reliably in flight when SIGTERM arrives.
        "REDIS_URL": f"redis://127.0.0.1:{black_hole}/0",
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "codex.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(f"{base}/healthz", proc)
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
    finally:
        if proc.poll() is None:
            proc.kill()
    response = result["response"]
    assert response.status_code == 503  # a complete answer, not a reset connection
    assert response.json()["checks"]["redis"] != "ok"
    assert result["elapsed"] > 0.5  # it really was in flight across the signal
    assert exit_code == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=1)
