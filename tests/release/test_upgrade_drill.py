"""scripts/upgrade_drill.py: the previous release serves behind HAProxy while this one takes over.

The default cutover is the drain one (ingest 0005 is a schema change the old release cannot run
on): HAProxy puts the old release in maintenance and answers 503 + Retry-After, the old release
stops, the new code migrates as the owner, the new release takes traffic once HAProxy's health
check passes. Small numbers (2 tenants, 30 events each, 2 load threads; about 30 s here). The
drill needs haproxy (scripts/ensure_haproxy.sh installs it) and a PostgreSQL superuser (the
system one on 127.0.0.1:5432, else the embedded one); it creates only a non-superuser owner and
a fresh database, both dropped at the end.
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


def processes_of(run_id: str) -> list[str]:
    """Command lines of the processes the drill run started (haproxy, gunicorn, Celery, Redis)."""
    marker = f"CODEX_UPGRADE_DRILL_RUN={run_id}\0".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def test_upgrade_under_load_loses_nothing_and_answers_no_5xx_but_503(tmp_path):
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
    assert r["mode"] == "drain"
    assert r["haproxy"].startswith("HAProxy version"), report

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

    # The only error the clients saw is HAProxy's 503 + Retry-After, which they retried; they
    # never met a closed port (they only talk to HAProxy, which never stops).
    assert r["forbidden_5xx"] == 0, report
    assert [s for s in r["statuses"] if not s.startswith("2")] == ["503"], report
    assert r["retried"] == {"503": r["statuses"]["503"]}, report
    # Nothing answered a request sent while the migration ran: the old release was out.
    assert set(r["statuses_by_phase"]["migrate"]) == {"503"}, report

    # The order of the cutover: old worker gone, blue in maintenance and drained, then the
    # migration; the new release in service (HAProxy's check) only after it committed.
    t = r["timeline_s"]
    assert t["old_worker_stopped"] <= t["old_maint"] <= t["old_drained"] <= t["migrate_start"]
    assert t["migrate_end"] <= t["new_start"] <= t["new_listening"] <= t["new_in_service"]
    assert 0 < r["maintenance_s"] < 30, report

    # The new code serves, and the gap was bounded.
    new = r["statuses_by_phase"]["new"]
    assert sum(n for status, n in new.items() if status.startswith("2")) > 0, report
    assert not [s for s in new if not s.startswith("2")], report
    assert 0 < r["load"]["longest_stall_s"] < 30, report
    assert "longest stall without a 2xx" in result.stdout
    assert result.returncode == 0, report
    assert r["passed"] is True

    # Nothing left behind: no process of the run, no database, no owner role.
    assert processes_of(r["run_id"]) == []
    with psycopg.connect(drill_module().admin_url_find(None), connect_timeout=5) as conn:
        database = "SELECT 1 FROM pg_database WHERE datname = %s"
        role = "SELECT 1 FROM pg_roles WHERE rolname = %s"
        assert not conn.execute(database, [r["database"]]).fetchone()
        assert not conn.execute(role, [r["owner"]]).fetchone()
