"""scripts/restore_drill.py: a pgBackRest backup, a point-in-time restore, nothing 2xx lost.

The drill runs end to end on a throwaway PostgreSQL 15 cluster, redis-server, gunicorn and a
Celery worker it starts itself (in its own temporary directory, removed at the end); about 25 to
35 s here. pgBackRest comes from Debian (scripts/ensure_pgbackrest.sh installs it when missing and
we are root); without it, and without PostgreSQL 15's server binaries, the test skips loudly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "scripts" / "restore_drill.py"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pgbackrest_or_skip() -> None:
    if shutil.which("pgbackrest") is None:
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "ensure_pgbackrest.sh")],
            capture_output=True,
            text=True,
            timeout=600,
        )
    if shutil.which("pgbackrest") is None:
        pytest.skip(
            "!!! pgbackrest is NOT INSTALLED and scripts/ensure_pgbackrest.sh could not install "
            "it (needs root or sudo with apt-get): the restore drill is NOT being tested. "
            "Run: sudo apt-get install -y pgbackrest"
        )
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"!!! PostgreSQL 15 server binaries are missing ({PG_BIN}): no restore drill")


def drill(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    out = tmp_path / "restore.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    result = subprocess.run(
        [sys.executable, str(DRILL), "--out", str(out), "--step-timeout", "40", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        cwd=ROOT,
    )
    return result, (json.loads(out.read_text()) if out.exists() else None)


def processes_using(path: str) -> list[str]:
    """Command lines of live processes that mention `path` (the drill's temporary directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if path in cmdline:
            found.append(cmdline.replace("\0", " "))
    return found


@pytest.mark.slow
def test_point_in_time_restore_keeps_every_event_before_the_mark_and_none_after(tmp_path):
    pgbackrest_or_skip()
    result, figures = drill(tmp_path, "--batches", "4", "--batch-size", "50")
    assert figures is not None, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert figures["error"] is None
    assert figures["passed"] is True
    assert all(figures["checks"].values()), figures["checks"]
    assert figures["target_type"] == "time"
    assert figures["backup_label"].endswith("F")  # a full backup
    # 4 batches of 50 new keys on each side of the mark, every one answered 2xx.
    assert figures["events_before_mark"] == 200
    assert figures["events_after_mark"] == 200
    assert figures["found_before"] == 200
    assert figures["found_before_more_than_once"] == 0
    assert figures["found_after"] == 0
    assert figures["ledger_rows"] == figures["enriched_rows"] == 200
    assert set(figures["lookups"].values()) == {200, 404}
    assert 0 < figures["restore_seconds"] < 60
    assert figures["readyz"] == 200
    (unsettled,) = figures["reconcile"]["no_settle"]
    assert (unsettled["accepted"], unsettled["enriched"], unsettled["drift"]) == (200, 200, 0)
    assert all(run["drift"] == 0 for run in figures["reconcile"]["command"])
    # The printed table says the same.
    assert re.search(r"^before-mark keys found exactly once +200$", result.stdout, re.M)
    assert re.search(r"^after-mark keys found +0$", result.stdout, re.M)
    assert result.stdout.rstrip().endswith("PASS")
    # Nothing left behind: the directory is gone and nothing runs from it.
    assert figures["cleaned_up"] is True
    assert not Path(figures["workdir"]).exists()
    assert processes_using(figures["workdir"]) == []


def test_a_drill_that_cannot_start_fails_and_leaves_nothing(tmp_path):
    if shutil.which("pgbackrest") is None:
        pytest.skip("pgbackrest is not installed (scripts/ensure_pgbackrest.sh)")
    result, figures = drill(tmp_path, "--pg-bin", str(tmp_path / "no-postgres-here"))
    assert result.returncode == 1
    assert "initdb" in figures["error"]
    assert figures["passed"] is False
    assert figures["cleaned_up"] is True
    assert not Path(figures["workdir"]).exists()
    assert result.stdout.rstrip().endswith("FAIL")
