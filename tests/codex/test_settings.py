"""Settings: deployed environments refuse to start without secrets and pass check --deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from codex import env as envreader

ROOT = Path(__file__).resolve().parents[2]
FULL = {
    "SECRET_KEY": "k" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
    "DATABASE_URL": "postgresql://codex:pw@db.internal:5432/codex",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "ALLOWED_HOSTS": "ingest.example.com",
    "CODEX_SECRETS_KEY": Fernet.generate_key().decode(),
    "METRICS_TOKEN": "m" * 40,
}


def _run_django(extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in FULL and k != "PYTEST_VERSION"}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("name", ["staging", "production"])
@pytest.mark.parametrize("missing", sorted(FULL))
def test_deployed_env_refuses_to_start_without_each_secret(name, missing):
    environ = {**FULL, "CODEX_ENV": name}
    del environ[missing]
    with pytest.raises(ImproperlyConfigured, match=missing):
        envreader.read(environ)


def test_production_process_refuses_to_boot_and_names_what_is_missing():
    result = _run_django({"CODEX_ENV": "production"}, "check")
    assert result.returncode != 0
    assert "refuses to start without" in result.stderr
    for key in FULL:
        assert key in result.stderr


def test_production_with_all_secrets_passes_check_deploy():
    result = _run_django(
        {**FULL, "CODEX_ENV": "production"}, "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_unknown_environment_name_is_refused():
    with pytest.raises(ImproperlyConfigured, match="CODEX_ENV"):
        envreader.read({"CODEX_ENV": "prod"})


def test_database_url_parses_host_port_and_socket_forms():
    tcp = envreader.database_config("postgresql://u:p%40ss@h:6543/db?sslmode=require")
    assert (tcp["USER"], tcp["PASSWORD"], tcp["HOST"], tcp["PORT"], tcp["NAME"]) == (
        "u",
        "p@ss",
        "h",
        "6543",
        "db",
    )
    assert tcp["OPTIONS"]["sslmode"] == "require"
    sock = envreader.database_config("postgresql://postgres@/codex?host=/tmp/pg")
    assert sock["HOST"] == "/tmp/pg"
    assert sock["NAME"] == "codex"
    with pytest.raises(ImproperlyConfigured, match="must be a postgres:// URL"):
        envreader.database_config("mysql://x@y/z")


def _import_wsgi(extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in FULL and k != "PYTEST_VERSION"}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "-c", "import codex.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("name", ["staging", "production"])
def test_the_web_refuses_to_start_without_the_static_manifest(name, tmp_path):
    environ = {**FULL, "CODEX_ENV": name, "CODEX_STATIC_ROOT": str(tmp_path)}
    refused = _import_wsgi(environ)
    assert refused.returncode != 0
    assert "collectstatic" in refused.stderr
    (tmp_path / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')
    started = _import_wsgi(environ)
    assert started.returncode == 0, started.stderr


def test_beat_keeps_its_schedule_under_the_data_directory(settings):
    assert Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent == Path(settings.DATA_DIR)
    assert not Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).is_relative_to(ROOT / "codex")


def test_every_task_has_time_limits_and_they_fit_under_each_other(settings):
    from codex.celery import app

    app.loader.import_default_modules()
    ours = [
        t
        for name, t in app.tasks.items()
        if name.split(".")[0] in {"codex", "ingest", "flags", "reconcile", "tenants"}
    ]
    assert ours
    for task in ours:
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert soft, task.name
        assert hard, task.name
        assert soft < hard, task.name
    limits = settings.DATABASES["default"]["TIME_LIMITS_MS"]
    assert 0 < limits["lock_timeout"] <= limits["statement_timeout"] < 10_000  # 503 within 10 s
    import runpy

    gunicorn = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert gunicorn["timeout"] * 1000 > limits["statement_timeout"]
