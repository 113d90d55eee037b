"""Liveness, readiness and the JSON error format."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from tests.netutil import black_hole, free_port


def test_healthz_answers_ok_with_version(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["version"]


@pytest.mark.django_db
def test_readyz_is_ok_when_postgres_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok"}


@pytest.fixture
def hung_port():
    """A port whose server accepts and never answers."""
    with black_hole() as port:
        yield port


def _timed_get(client, path):
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


@pytest.mark.django_db
def test_readyz_names_redis_when_redis_is_unreachable(client):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        response, elapsed = _timed_get(client, "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"] != "ok"
    assert body["checks"]["postgres"] == "ok"
    assert "redis" in body["error"]["message"]
    assert elapsed < 2


@pytest.mark.django_db
def test_readyz_names_redis_when_redis_hangs(client, hung_port):
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{hung_port}/0"):
        response, elapsed = _timed_get(client, "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] != "ok"
    assert elapsed < 2


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["closed", "hung"])
def test_readyz_names_postgres_when_postgres_is_unreachable(client, hung_port, kind):
    port = free_port() if kind == "closed" else hung_port
    with override_settings(DATABASE_URL=f"postgresql://codex@127.0.0.1:{port}/codex"):
        response, elapsed = _timed_get(client, "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["postgres"] != "ok"
    assert body["checks"]["redis"] == "ok"
    assert "postgres" in body["error"]["message"]
    assert body["error"]["rid"] == response["X-Request-ID"]
    assert elapsed < 2


@pytest.mark.django_db
def test_readyz_reuses_one_connection_however_often_it_is_called(client):
    from tests.dbutil import owner_connect

    def backends() -> int:
        with owner_connect(autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()[0]

    assert client.get("/readyz").status_code == 200
    before = backends()
    for _ in range(40):
        assert client.get("/readyz").status_code == 200
    time.sleep(1.1)  # past the 1 s coalescing window: a real second check, same connection
    assert client.get("/readyz").status_code == 200
    assert backends() <= before
