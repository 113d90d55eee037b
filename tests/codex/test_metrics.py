"""/metrics sums counters across processes and across the web and worker directories."""

from __future__ import annotations

from codex import metrics_view
from tests.helpers import bump_metric_in_process


def test_metrics_sum_processes_and_directories(tmp_path, monkeypatch):
    web, worker = tmp_path / "web", tmp_path / "worker"
    web.mkdir()
    worker.mkdir()
    bump_metric_in_process(web, "a", 2)  # two gunicorn workers
    bump_metric_in_process(web, "a", 3)
    bump_metric_in_process(worker, "a", 4)  # a Celery worker
    bump_metric_in_process(worker, "b", 1)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(web))
    monkeypatch.setenv("CODEX_METRICS_DIRS", str(worker))
    text = metrics_view.render().decode()
    assert 'codex_test_bumps_total{kind="a"} 9.0' in text
    assert 'codex_test_bumps_total{kind="b"} 1.0' in text
    assert text.count("# TYPE codex_test_bumps_total counter") == 1


def test_metrics_endpoint_serves_prometheus_text(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def test_metrics_needs_the_bearer_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "t" * 40
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert b"codex_" not in refused.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + "t" * 40)
    assert ok.status_code == 200
    assert b"codex_" in ok.content
