"""Test helper: run the real app under gunicorn (gunicorn.conf.py) on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.netutil import free_port

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def gunicorn_server(
    env_overrides: dict[str, str] | None = None,
    *,
    workers: int = 1,
    unset: tuple[str, ...] = ("PROMETHEUS_MULTIPROC_DIR",),
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Yield (base URL, process) once /healthz answers; stop the server on exit.

    `unset` names variables removed from the environment (unset, not empty: prometheus_client
    would take "" for the current directory).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update({"BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers)})
    env.setdefault("LOG_LEVEL", "WARNING")
    env.update(env_overrides or {})
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "codex.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"gunicorn exited: {proc.stderr.read().decode()[-2000:]}")
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz in 30 s"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)  # polling for the server to come up
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
