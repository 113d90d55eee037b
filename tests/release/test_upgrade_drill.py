"""scripts/upgrade_drill.py: the previous release serves load while this one migrates, takes over.

Small numbers (2 tenants, 30 events each, 2 load threads; about 20-30 s here). The drill needs a
PostgreSQL superuser (the system one on 127.0.0.1:5432, else the embedded one) and creates only
a non-superuser owner and a fresh database, both dropped at the end.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "scripts" / "upgrade_drill.py"

pytestmark = pytest.mark.slow


def drill_module():
    spec = importlib.util.spec_from_file_location("upgrade_drill", DRILL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def processes_on(port: int) -> list[str]:
    """Command lines of processes started with BIND=127.0.0.1:<port> (gunicorn, Celery)."""
    bind = f"BIND=127.0.0.1:{port}\0".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if bind in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def test_upgrade_under_load_loses_nothing_and_counts_nothing_twice(tmp_path):
    out = tmp_path / "drill.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    argv = [sys.executable, str(DRILL), "--out", str(out)]
    argv += ["--tenants", "2", "--events", "30", "--batch", "10", "--threads", "2"]
    argv += ["--before", "1.5", "--after", "2", "--step-timeout", "40", "--migrate-timeout", "90"]
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=170, cwd=ROOT, check=False
    )
    report = result.stdout + result.stderr
    assert out.exists(), report
    r = json.loads(out.read_text())
    assert "error" not in r, report
    assert "cleanup_error" not in r, report

    # The upgrade itself: the old release migrated forward by the new code, as the owner.
    applied = [m["name"] for m in r["migrate"]["applied"]]
    assert "ingest.0005_partitioned_ledger" in applied, report
    assert r["migrate"]["returncode"] == 0

    # Every key answered 2xx is in the upgraded ledger exactly once, with its id.
    ledger = r["ledger"]
    assert ledger["keys_2xx"] >= 2 * 30 + 10, report  # the fill and some load
    assert ledger["lost"] == 0, report
    assert ledger["duplicates"] == 0, report
    assert ledger["id_changed"] == 0, report
    assert ledger["idempotency_missing"] == 0, report
    assert ledger["idempotency_mismatched"] == 0, report
    assert r["abandoned"] == 0, report
    assert r["refused"] == {}, report

    # The new code serves, and the gap was bounded.
    new = r["statuses_by_phase"]["new"]
    assert sum(n for status, n in new.items() if status.startswith("2")) > 0, report
    assert not [s for s in new if s.startswith("5")], report
    assert 0 < r["load"]["longest_stall_s"] < 30, report
    assert "longest stall without a 2xx" in result.stdout

    # Nothing left behind: no process on the drill's port, no database, no owner role.
    assert processes_on(r["port"]) == []
    with psycopg.connect(drill_module().admin_url_find(None), connect_timeout=5) as conn:
        database = "SELECT 1 FROM pg_database WHERE datname = %s"
        role = "SELECT 1 FROM pg_roles WHERE rolname = %s"
        assert not conn.execute(database, [r["database"]]).fetchone()
        assert not conn.execute(role, [r["owner"]]).fetchone()

    if r["forbidden_5xx"]:
        # Known: ingest 0005 is not expand-shaped. From its commit until the old release is
        # stopped, the old code's INSERT .. ON CONFLICT (tenant_id, idempotency_key) has no
        # matching constraint and answers 500 (docs/release.md, "The upgrade drill"). Anything
        # else (a 5xx before the migration, or from the new code) fails above or here.
        assert set(r["forbidden_5xx_by_phase"]) <= {"migrate", "switch"}, report
        assert result.returncode == 1
        assert r["passed"] is False
        assert r["failures"] == [f"forbidden 5xx = {r['forbidden_5xx']}"], report
        pytest.xfail(
            f"{r['forbidden_5xx']} x 500 from the previous release on the new schema "
            "(ingest 0005 is not expand/contract); data intact"
        )
    assert result.returncode == 0, report
    assert r["passed"] is True
