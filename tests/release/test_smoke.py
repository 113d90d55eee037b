"""scripts/smoke.sh against a live server with a real signing key (and the ways it fails)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.netutil import free_port

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scripts" / "smoke.sh"

# Accepted events enqueue enrichment; no worker runs here, so the tasks are dropped after.
pytestmark = [
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("bash", "curl", "openssl")),
        reason="smoke.sh needs bash, curl and openssl",
    ),
    pytest.mark.usefixtures("purge_enrichment_queue"),
]


def run_smoke(
    url: str, key_id: str | None, secret: str | None, **env
) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_KEY", "CODEX_SEC"))}
    if key_id is not None:
        environ["CODEX_KEY_ID"] = key_id
    if secret is not None:
        environ["CODEX_SECRET"] = secret
    environ["SMOKE_TIMEOUT"] = "5"
    environ.update(env)
    return subprocess.run(
        ["bash", str(SMOKE), url], env=environ, capture_output=True, text=True, timeout=60
    )


def test_smoke_passes_against_a_live_server_and_stores_one_event(live_server, signed, tmp_path):
    from ingest.models import Event
    from tenants.scope import tenant_scope

    tenant = signed.tenant
    key = signed.key
    snapshot = tmp_path / "metrics.txt"
    result = run_smoke(live_server.url, key.key_id, key.secret, SMOKE_METRICS_OUT=str(snapshot))
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("healthz", "readyz", "metrics", "ingest", "duplicate"):
        assert f"ok   {check}:" in result.stdout
    assert "PASS all 5 checks" in result.stdout
    assert "codex_" in snapshot.read_text()
    with tenant_scope(tenant.id):
        events = list(Event.objects.filter(tenant=tenant))
    assert len(events) == 1  # accepted once, the repeat was a duplicate
    assert events[0].idempotency_key.startswith("smoke-")


def test_wrong_secret_fails_the_ingest_check(live_server, signed):
    key = signed.key
    wrong = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
    result = run_smoke(live_server.url, key.key_id, wrong)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL ingest" in result.stderr
    assert "answered 401" in result.stderr
    assert "invalid_signature" in result.stderr
    assert "ok   metrics:" in result.stdout  # the checks before it ran and passed


def test_unexpected_version_fails_healthz(live_server, signed):
    key = signed.key
    result = run_smoke(live_server.url, key.key_id, key.secret, SMOKE_EXPECT_VERSION="9.9.9")
    assert result.returncode == 1
    assert "FAIL healthz: version is" in result.stderr
    assert "expected '9.9.9'" in result.stderr


def test_nothing_listening_fails_healthz_fast(signed):
    key = signed.key
    result = run_smoke(f"http://127.0.0.1:{free_port()}", key.key_id, key.secret)
    assert result.returncode == 1
    assert "FAIL healthz" in result.stderr
    assert "no answer" in result.stderr


@pytest.mark.parametrize(
    ("args", "key_id", "secret", "message"),
    [
        ([], "ck_x", "whsec_QUFB", "usage:"),
        (["http://127.0.0.1:1"], None, "whsec_QUFB", "CODEX_KEY_ID is required"),
        (["http://127.0.0.1:1"], "ck_x", None, "CODEX_SECRET is required"),
        (["http://127.0.0.1:1"], "ck_x", "plain", "must start with whsec_"),
    ],
)
def test_usage_errors_exit_2(args, key_id, secret, message):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_KEY", "CODEX_SEC"))}
    if key_id:
        environ["CODEX_KEY_ID"] = key_id
    if secret:
        environ["CODEX_SECRET"] = secret
    result = subprocess.run(
        ["bash", str(SMOKE), *args], env=environ, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr
