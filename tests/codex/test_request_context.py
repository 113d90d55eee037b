"""Request ids: generated, honoured, echoed, and carried into Celery task log lines."""

from __future__ import annotations

import json
import logging
import time
import uuid

import pytest

from codex.logconfig import ContextFilter, JsonFormatter


class _Lines(logging.Handler):
    """Collect formatted JSON lines, exactly as the stdout handler would print them."""

    def __init__(self):
        super().__init__()
        self.lines: list[dict] = []
        self.setFormatter(JsonFormatter())
        self.addFilter(ContextFilter())

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_lines():
    handler = _Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler.lines
    root.removeHandler(handler)


def test_request_id_is_generated_and_echoed_when_absent(client):
    response = client.get("/healthz")
    rid = response["X-Request-ID"]
    assert len(rid) == 32
    assert int(rid, 16) >= 0


def test_sane_request_id_is_honoured(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="edge-lb:abc123.XYZ_9")
    assert response["X-Request-ID"] == "edge-lb:abc123.XYZ_9"


@pytest.mark.parametrize(
    "bad",
    ["short", "x" * 129, "has space inside!", "semi;colon-token", "<script>alert(1)</script>"],
)
def test_insane_request_id_is_replaced(client, bad):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=bad)
    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


def test_error_body_carries_the_request_id(client):
    response = client.get("/no/such/endpoint", HTTP_X_REQUEST_ID="trace-0000001")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "No endpoint at /no/such/endpoint.",
            "rid": "trace-0000001",
        }
    }


def test_request_log_line_is_json_with_rid_and_null_tenant(client, json_lines):
    client.get("/readyz", HTTP_X_REQUEST_ID="rid-for-log-line")
    request_lines = [line for line in json_lines if line["logger"] == "codex.request"]
    assert request_lines, json_lines
    line = request_lines[-1]
    assert line["rid"] == "rid-for-log-line"
    assert line["tenantId"] is None
    assert line["path"] == "/readyz"


@pytest.mark.urls("tests.codex.urls")
def test_task_enqueued_by_a_request_logs_with_the_requests_rid_and_tenant(
    client, celery_worker, json_lines
):
    rid = f"rid-{uuid.uuid4().hex}"
    note = uuid.uuid4().hex
    tenant = str(uuid.uuid4())
    response = client.get(f"/test/enqueue-ping?note={note}&tenant={tenant}", HTTP_X_REQUEST_ID=rid)
    assert response.status_code == 200

    deadline = time.monotonic() + 20
    task_line = None
    while time.monotonic() < deadline and task_line is None:
        task_line = next((ln for ln in json_lines if ln.get("note") == note), None)
        if task_line is None:
            time.sleep(0.05)  # polling an observable condition (the worker's log line)
    assert task_line is not None, "the worker never ran the task"
    assert task_line["rid"] == rid
    assert task_line["tenantId"] == tenant
    assert task_line["logger"] == "codex.tasks"
    request_line = next(ln for ln in json_lines if ln["logger"] == "codex.request")
    assert request_line["rid"] == rid
    assert request_line["tenantId"] == tenant
