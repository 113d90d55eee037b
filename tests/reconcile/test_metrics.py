"""Reconcile metrics under multiprocess mode: the gauges pick one value, the counter sums."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from codex import metrics_view

ROOT = Path(__file__).resolve().parents[2]
_WRITE = """
import sys
from reconcile import metrics
metrics.DRIFT.labels(tenant="acme").set(float(sys.argv[1]))
metrics.LAST_RUN.set(float(sys.argv[2]))
metrics.RUNS.labels(outcome="ok").inc(int(sys.argv[3]))
"""


def _write(directory, drift: float, last_run: float, runs: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    args = [sys.executable, "-c", _WRITE, str(drift), str(last_run), str(runs)]
    subprocess.run(args, env=env, cwd=ROOT, check=True)


def test_reconcile_metrics_from_two_processes_keep_latest_drift_max_time_summed_runs(
    tmp_path, monkeypatch
):
    web, worker = tmp_path / "web", tmp_path / "worker"
    web.mkdir()
    worker.mkdir()
    _write(worker, 0.02, 200.0, 1)  # a later pass ran in another worker process
    _write(worker, 0.005, 100.0, 2)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(web))
    monkeypatch.setenv("CODEX_METRICS_DIRS", str(worker))

    text = metrics_view.render().decode()

    assert 'codex_reconcile_drift_ratio{tenant="acme"} 0.005' in text
    assert "codex_reconcile_last_run_timestamp_seconds 200.0" in text
    assert 'codex_reconcile_runs_total{outcome="ok"} 3.0' in text
