"""`celery -A codex beat` and `celery -A codex worker -B` start on a checkout without .data/.

Beat keeps its schedule file under CODEX_DATA_DIR (settings.CELERY_BEAT_SCHEDULE_FILENAME). A
fresh checkout or image has no such directory, and beat opens the file when it builds its
scheduler, before any signal is sent: it must create the directory first, for the standalone beat
and for the beat a worker embeds alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

from tests.dbutil import database_url

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).parent / "celery")
START_TIMEOUT_S = 30
# How beat's death reads in the log: standalone, and as the worker's embedded beat process.
CRASHED = ("beat raised exception", "/Beat] Process Beat")


def _env(data_dir: Path) -> dict[str, str]:
    """The test run's servers, and nothing that would create the data directory by the way.

    Explicit secrets: in development codex.devsecrets would otherwise generate them under the data
    directory (and so create it); deployed environments always pass them.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTEST_VERSION", "PROMETHEUS_MULTIPROC_DIR", "CODEX_WORKER_METRICS_PORT")
    }
    env.update(
        {
            "CODEX_ENV": "development",
            "CODEX_DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "SECRET_KEY": "beat-start-test",
            "CODEX_SECRETS_KEY": Fernet.generate_key().decode(),
            # its own queue: nothing this process publishes or consumes is the test run's
            "CODEX_CELERY_QUEUE": f"beat-start-test-{uuid.uuid4().hex[:12]}",
        }
    )
    return env


def _schedule_files(data_dir: Path) -> list[Path]:
    """Beat's shelve files (dbm may add .db, .dat/.dir/.bak to the name)."""
    name = Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).name
    return sorted(data_dir.glob(f"{name}*")) if data_dir.is_dir() else []


def _forget_queue(name: str) -> None:
    """Remove the process's queue and kombu's bindings of it from the test run's Redis."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
    client.close()


def _run_until_scheduled(args: list[str], tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"  # neither exists
    log_path = tmp_path / "celery.log"
    env = _env(data_dir)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [CELERY, "-A", "codex", *args, "--loglevel", "INFO"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            text = log_path.read_text(errors="replace")
            assert not any(m in text for m in CRASHED), f"beat crashed:\n{text[-3000:]}"
            assert proc.poll() is None, f"exited with {proc.returncode}:\n{text[-3000:]}"
            if _schedule_files(data_dir) and "beat: Starting..." in text:
                break
            assert time.monotonic() < deadline, (
                f"no beat schedule file in {data_dir} after {START_TIMEOUT_S} s:\n{text[-3000:]}"
            )
            time.sleep(0.1)  # polling the process's log and its data directory
        assert proc.poll() is None, "beat stopped right after writing its schedule"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        _forget_queue(env["CODEX_CELERY_QUEUE"])


@pytest.mark.usefixtures("db")
def test_beat_creates_its_missing_schedule_directory_and_keeps_running(tmp_path):
    _run_until_scheduled(["beat"], tmp_path)


@pytest.mark.usefixtures("db")
def test_worker_with_embedded_beat_creates_the_directory_and_keeps_beat(tmp_path):
    _run_until_scheduled(
        ["worker", "-B", "--pool", "solo", "--without-gossip", "--without-mingle"], tmp_path
    )


def test_a_schedule_directory_that_cannot_be_created_is_refused_naming_the_setting():
    from django.core.exceptions import ImproperlyConfigured

    from codex.celery import schedule_dir_ensure

    with pytest.raises(ImproperlyConfigured, match="CELERY_BEAT_SCHEDULE_FILENAME"):
        schedule_dir_ensure("/proc/no-such-dir/celerybeat-schedule")  # /proc takes no mkdir
