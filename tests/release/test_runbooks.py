"""Runbooks and per-environment config: alert links resolve, env files cover the README."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "infra" / "runbooks"
APP = ROOT / "infra" / "app"
ALERT_RULES = ROOT / "infra" / "observability" / "prometheus" / "rules" / "codex-alerts.yml"
ANCHORS = {"latency-spike", "5xx-burst", "webhook-flood", "dlq-growth", "drift", "no-ingest"}


def github_slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {
        github_slug(m.group(1))
        for m in re.finditer(r"^#{1,6} (.+)$", path.read_text(), flags=re.MULTILINE)
    }


def test_oncall_has_every_anchor_the_alerts_need():
    assert anchors(RUNBOOKS / "oncall.md") >= ANCHORS


def test_every_alert_runbook_url_resolves():
    urls = re.findall(r'runbook_url:\s*"?([^"\s]+)"?', ALERT_RULES.read_text())
    assert urls
    for url in urls:
        path, _, anchor = url.partition("#")
        target = ROOT / path
        assert target.exists(), url
        assert anchor in anchors(target), url


def test_runbooks_exist_and_reference_the_real_tools():
    deploy = (RUNBOOKS / "deploy.md").read_text()
    rollback = (RUNBOOKS / "rollback.md").read_text()
    oncall = (RUNBOOKS / "oncall.md").read_text()
    assert "scripts/deploy.sh" in deploy
    assert "scripts/smoke.sh" in deploy
    assert "gh workflow run rollback.yml -f environment=production" in rollback
    assert "scripts/rollback_drill.py" in rollback
    for command in ("syncEnabled=false", "ingestRatePerSec=", "replay_dlq", "reconcile --tenant"):
        assert command in oncall
    for command in ("sourceRatePerSec=", "--source stripe"):
        assert command in oncall
    for command in (
        "rotate_signing_key",
        "revoke_device",
        "source_disable",
        "source_rotate_secret",
    ):
        assert command in oncall
        assert (ROOT / "tenants" / "management" / "commands" / f"{command}.py").exists()
    assert (ROOT / "ingest" / "management" / "commands" / "replay_dlq.py").exists()


def readme_configuration_variables() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE))


@pytest.mark.parametrize("env_name", ["staging", "production"])
def test_env_examples_list_the_readme_variables_without_secrets(env_name):
    text = (APP / f"{env_name}.env.example").read_text()
    values = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    expected = readme_configuration_variables()
    assert expected >= {"CODEX_ENV", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CODEX_SECRETS_KEY"}
    assert expected <= set(values)
    assert values["CODEX_ENV"] == env_name
    assert values["SECRET_KEY"] == ""
    assert values["CODEX_SECRETS_KEY"] == ""
    assert "PASSWORD" in values["DATABASE_URL"]  # a placeholder, not a credential


@pytest.mark.parametrize("env_name", ["staging", "production"])
def test_fly_config_checks_healthz_and_runs_three_processes(env_name):
    doc = tomllib.loads((APP / f"fly.{env_name}.toml").read_text())
    assert doc["env"]["CODEX_ENV"] == env_name
    assert doc["deploy"]["release_command"] == "python manage.py migrate --no-input"
    assert set(doc["processes"]) == {"web", "worker", "beat"}
    assert doc["http_service"]["checks"][0]["path"] == "/healthz"
    assert doc["http_service"]["processes"] == ["web"]


def test_generic_process_config():
    doc = yaml.safe_load((APP / "processes.yml").read_text())
    procs = doc["processes"]
    assert set(procs) == {"web", "worker", "beat"}
    assert procs["web"]["health"]["liveness"]["path"] == "/healthz"
    assert procs["web"]["command"][:3] == ["gunicorn", "-c", "gunicorn.conf.py"]
    assert procs["beat"]["instances"] == {"staging": 1, "production": 1}
    assert doc["release"]["command"] == ["python", "manage.py", "migrate", "--no-input"]
