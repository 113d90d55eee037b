"""scripts/rollback_drill.py: a broken release, a rollback, /healthz green again in < 60 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "scripts" / "rollback_drill.py"


def drill(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    out = tmp_path / "drill.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    result = subprocess.run(
        [sys.executable, str(DRILL), "--json", str(out), "--step-timeout", "20", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
    )
    return result, (json.loads(out.read_text()) if out.exists() else None)


def no_process_left(port_text: str) -> bool:
    return not any(
        "gunicorn.conf.py" in (p / "cmdline").read_bytes().decode(errors="replace")
        and port_text in (p / "environ").read_bytes().decode(errors="replace")
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (p / "environ").exists() and os.access(p / "environ", os.R_OK)
    )


@pytest.mark.parametrize("broken", ["boot", "500"])
def test_rollback_is_green_within_60_seconds(tmp_path, broken):
    result, figures = drill(tmp_path, "--broken", broken)
    assert result.returncode == 0, result.stdout + result.stderr
    assert figures["passed"] is True
    assert 0 < figures["rollback_s"] < 60
    assert "rollback to A: /healthz 200 version A" in result.stdout
    assert "PASS" in result.stdout
    if broken == "boot":
        assert figures["failure"] == "process exited with 3"
        assert "refuses to start without: SECRET_KEY" in figures["broken_release_error"]
    else:
        assert figures["failure"] == "/healthz failed 3 times (last: 500)"
    port = result.stdout.split("127.0.0.1:")[1].split(" ")[0]
    assert no_process_left(f"BIND=127.0.0.1:{port}")


def test_a_rollback_over_budget_fails_the_drill(tmp_path):
    result, figures = drill(tmp_path, "--budget", "0.01")
    assert result.returncode == 1
    assert figures["passed"] is False
    assert "-> FAIL" in result.stdout
