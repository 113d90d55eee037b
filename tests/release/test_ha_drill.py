"""scripts/ha_drill.py, the short variant: one PostgreSQL failover and one Redis failover, 0 lost.

Patroni (2 x PostgreSQL 15, synchronous_mode) + 3 etcd + HAProxy + Redis with a replica and 3
Sentinels, started by the drill in its own temporary directory (removed at the end); gunicorn, a
Celery worker and beat under signed load (raw batches and SDK clients). Faults: the leader's
Patroni frozen (SIGSTOP) until its lease lapses and the standby takes over, then the Redis
master killed. Needs the Debian packages (the drill installs them as root) and PostgreSQL 15's
server binaries; without them the test skips loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "scripts" / "ha_drill.py"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

pytestmark = pytest.mark.slow


def test_a_postgres_and_a_redis_failover_under_load_lose_nothing_and_duplicate_nothing(tmp_path):
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"!!! PostgreSQL 15 server binaries are missing ({PG_BIN}): no HA drill")
    missing = [c for c in ("patroni", "etcd", "haproxy", "redis-sentinel") if not shutil.which(c)]
    if missing and os.geteuid() != 0:
        pytest.skip(f"!!! {', '.join(missing)} NOT INSTALLED and we are not root: no HA drill")
    out = tmp_path / "ha.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    done = subprocess.run(
        [sys.executable, str(DRILL), "--faults", "sigstop,redis", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    result = json.loads(out.read_text()) if out.exists() else {}
    report = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, report
    assert result["passed"], report
    rows = {row["fault"]: row for row in result["faults"]}
    assert set(rows) == {"sigstop", "redis"}
    for row in rows.values():
        assert row["acknowledged"] > 0, report
        assert row["lost"] == 0, report
        assert row["duplicates"] == 0, report
        assert row["stored"] == row["acknowledged"], report
    assert rows["sigstop"]["leader_after"] != rows["sigstop"]["leader_before"], report
    assert rows["redis"]["new_master"] != rows["redis"]["killed"], report
    assert result["sdk_queue_left"] == [0] * len(result["sdk_queue_left"]), report
    assert result["cleaned_up"], report
