"""codex_http_responses_total{status_class}: API responses only, 500s from raising views, summed
across gunicorn workers."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.conf import settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from codex import metrics
from tests.procs import gunicorn_server


def _count(status_class: str) -> float:
    value = REGISTRY.get_sample_value("codex_http_responses_total", {"status_class": status_class})
    return value or 0.0


def _counts() -> dict[str, float]:
    return {cls: _count(cls) for cls in metrics.STATUS_CLASSES}


def _delta(before: dict[str, float]) -> dict[str, float]:
    return {cls: value - before[cls] for cls, value in _counts().items() if value != before[cls]}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (200, "2xx"),
        (201, "2xx"),
        (204, "2xx"),
        (301, "3xx"),
        (304, "3xx"),
        (400, "4xx"),
        (401, "4xx"),
        (429, "4xx"),
        (500, "5xx"),
        (503, "5xx"),
        (101, "2xx"),
        (999, "5xx"),
    ],
)
def test_status_class(code, expected):
    assert metrics.status_class(code) == expected


def test_every_class_is_exported_before_its_first_response():
    for cls in metrics.STATUS_CLASSES:
        assert REGISTRY.get_sample_value("codex_http_responses_total", {"status_class": cls}) >= 0


@pytest.mark.django_db
def test_api_responses_are_counted_by_class(client):
    before = _counts()
    assert client.get("/v1/events").status_code == 401  # unsigned
    assert client.get("/config").status_code in (401, 403)  # unsigned
    assert client.get("/no/such/endpoint").status_code == 404
    assert _delta(before) == {"4xx": 3}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/admin/", "/admin/login/"])
def test_operational_paths_are_not_counted(client, path):
    before = _counts()
    client.get(path)
    assert _delta(before) == {}


@pytest.mark.urls("tests.codex.urls")
def test_a_view_that_raises_is_counted_as_5xx(client):
    """Django turns the exception into a 500 response inside the middleware chain, so the
    outermost middleware still sees (and counts) it."""
    client.raise_request_exception = False
    before = _counts()
    response = client.get("/test/boom")
    assert response.status_code == 500
    assert response["X-Request-ID"]  # it went back out through RequestContextMiddleware
    assert _delta(before) == {"5xx": 1}


def test_an_exception_escaping_the_chain_is_counted_as_5xx():
    """Belt and braces: should anything escape get_response, it is counted 5xx and re-raised."""
    from django.test import RequestFactory

    from codex.middleware import RequestContextMiddleware

    def escapes(request):
        raise RuntimeError("escaped")

    before = _counts()
    with pytest.raises(RuntimeError, match="escaped"):
        RequestContextMiddleware(escapes)(RequestFactory().get("/v1/events"))
    assert _delta(before) == {"5xx": 1}


def _scrape(base: str) -> dict[str, float]:
    # 30 s: the scrape may land on a worker that is still booting after a recycle (loaded CI).
    text = httpx.get(f"{base}/metrics", timeout=30).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "codex_http_responses":
            for sample in family.samples:
                if sample.name == "codex_http_responses_total":
                    out[sample.labels["status_class"]] = sample.value
    return out


@pytest.mark.slow
def test_counts_are_summed_across_gunicorn_workers(tmp_path):
    metrics_dir = tmp_path / "prom"
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "GUNICORN_THREADS": "2",
        "DATABASE_URL": settings.DATABASE_URL,
    }
    with gunicorn_server(env, workers=3, unset=("CODEX_METRICS_DIRS",)) as (base, _proc):
        deadline = time.monotonic() + 30
        # Every worker has booted (and imported codex.metrics) once it has a file of its own.
        while len(list(metrics_dir.glob("counter_*.db"))) < 3:
            assert time.monotonic() < deadline, "not every worker booted"
            time.sleep(0.1)  # polling for the workers' files

        def miss(_):
            # A fresh connection per request, so the kernel spreads them over the workers.
            # 30 s: on a loaded 2-core CI machine a worker may take seconds; the count is asserted.
            return httpx.get(f"{base}/no/such/{_}", timeout=30).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(miss, range(60)))
        assert codes == [404] * 60
        counts = _scrape(base)
    assert counts == {"2xx": 0.0, "3xx": 0.0, "4xx": 60.0, "5xx": 0.0}


@pytest.mark.slow
def test_recycled_workers_fold_into_archives_and_totals_stay_exact(tmp_path):
    metrics_dir = tmp_path / "prom"
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "GUNICORN_THREADS": "1",
        "GUNICORN_MAX_REQUESTS": "15",  # a worker restarts every 15 requests
        "GUNICORN_MAX_REQUESTS_JITTER": "1",
        "DATABASE_URL": settings.DATABASE_URL,
    }
    with gunicorn_server(env, workers=2, unset=("CODEX_METRICS_DIRS",)) as (base, _proc):
        for i in range(150):  # ~10 recycles
            # A request can wait for a replacement worker's boot (seconds on a busy machine).
            assert httpx.get(f"{base}/no/such/{i}", timeout=30).status_code == 404
        counts = _scrape(base)
        files = sorted(p.name for p in metrics_dir.glob("*.db"))
    assert counts["4xx"] == 150.0  # nothing lost or counted twice across the recycles
    assert "counter_archive.db" in files
    # Bounded: per type, the live workers' files plus one archive, however many recycles.
    per_type = {}
    for name in files:
        kind = name.rsplit("_", 1)[0]
        per_type[kind] = per_type.get(kind, 0) + 1
    assert all(n <= 2 + 1 + 1 for n in per_type.values()), files  # 2 workers (+1 restarting)
