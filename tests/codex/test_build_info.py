"""One release identity: /healthz and codex_build_info{version,commit}, both from codex/build.py."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml
from django.conf import settings

from codex.build import BUILD, DEFAULT_VERSION, build_info_read
from tests.procs import gunicorn_server

ROOT = Path(__file__).resolve().parents[2]


def _build_info_series(text: str) -> list[dict[str, str]]:
    series = []
    for line in text.splitlines():
        if line.startswith("codex_build_info{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            assert line.rsplit(" ", 1)[1] == "1.0", line
            series.append(labels)
    return series


def test_environment_wins_then_the_checkout(tmp_path):
    assert build_info_read(environ={"CODEX_VERSION": "v1.2.3", "CODEX_COMMIT": "abc"}) == (
        type(BUILD)(version="v1.2.3", commit="abc")
    )
    here = build_info_read(environ={})
    assert here.version == DEFAULT_VERSION
    assert re.fullmatch(r"[0-9a-f]{40}", here.commit), here  # this checkout's HEAD
    assert build_info_read(environ={}, root=tmp_path).commit == "unknown"  # no .git (an image)
    assert build_info_read(environ={"CODEX_VERSION": "  "}).version == DEFAULT_VERSION


def test_healthz_and_metrics_report_the_same_release(client):
    health = client.get("/healthz").json()
    assert health == {"status": "ok", "version": BUILD.version, "commit": BUILD.commit}
    assert BUILD.version == settings.VERSION
    series = _build_info_series(client.get("/metrics").content.decode())
    assert {"version": BUILD.version, "commit": BUILD.commit} in series


@pytest.mark.slow
@pytest.mark.django_db
def test_an_image_style_release_under_gunicorn_reports_its_version_and_commit(tmp_path):
    """What the Dockerfile sets (CODEX_VERSION, CODEX_COMMIT) reaches both, across workers."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        "CODEX_VERSION": "v9.8.7",
        "CODEX_COMMIT": "f" * 40,
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with gunicorn_server(env, workers=2, unset=()) as (url, _proc):
        health = httpx.get(f"{url}/healthz", timeout=5).json()
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
    assert health == {"status": "ok", "version": "v9.8.7", "commit": "f" * 40}
    # Two workers, one series: the gauge is merged with max, not listed per process.
    assert _build_info_series(metrics) == [{"commit": "f" * 40, "version": "v9.8.7"}]


def test_the_image_and_the_pipeline_carry_version_and_commit():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name in ("CODEX_VERSION", "CODEX_COMMIT"):
        assert f"ARG {name}=" in dockerfile
        assert f"{name}=${name}" in dockerfile
    build = yaml.safe_load((ROOT / ".github" / "workflows" / "cd.yml").read_text())["jobs"]["build"]
    push = next(s for s in build["steps"] if s.get("id") == "push")
    args = push["with"]["build-args"].splitlines()
    assert "CODEX_VERSION=${{ steps.meta.outputs.version }}" in args
    assert "CODEX_COMMIT=${{ github.sha }}" in args
