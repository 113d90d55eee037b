"""A Celery worker serves its own /metrics when asked to (web and worker on separate hosts)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import bump_metric_in_process
from tests.netutil import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_worker_serves_the_metrics_of_its_processes(tmp_path):
    port = free_port()
    metrics_dir = tmp_path / "worker-metrics"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "CODEX_WORKER_METRICS_PORT": str(port),
        "CODEX_CELERY_QUEUE": f"worker-metrics-test-{port}",
    }
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "codex",
            "--quiet",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        while True:
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the worker never served /metrics"
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)  # polling for the worker to come up
        bump_metric_in_process(
            metrics_dir, "from-a-pool-child", 3
        )  # as a pool process would write it
        text = httpx.get(url, timeout=5).text
        assert 'codex_test_bumps_total{kind="from-a-pool-child"} 3.0' in text
    finally:
        worker.terminate()
        worker.wait(timeout=20)
