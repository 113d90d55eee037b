"""Alert rules, Prometheus/Alertmanager config and the Grafana dashboard: promtool, amtool, a
real Prometheus scraping a live server, and every metric they use really exported by the code.

promtool/prometheus/amtool come from Debian's `prometheus` and `prometheus-alertmanager`
packages (scripts/ensure_promtool.sh installs them); the tests that need them skip, loudly,
only when they cannot be installed.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import wait_until
from tests.infra.promstack import tool as _tool
from tests.netutil import free_port

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "infra" / "observability"
PROM = OBS / "prometheus"
RULES = PROM / "rules" / "codex-alerts.yml"
RULE_TESTS = [
    PROM / "tests" / "codex-alerts.test.yml",
    PROM / "tests" / "codex-alerts-long.test.yml",
]
PROM_CONFIG = PROM / "prometheus.yml"
AM_CONFIG = OBS / "alertmanager" / "alertmanager.yml"
DASHBOARD = OBS / "grafana" / "codex-ingest-dashboard.json"
RUNBOOK = ROOT / "infra" / "runbooks" / "oncall.md"

RUNBOOK_ANCHORS = {
    "latency-spike",
    "5xx-burst",
    "webhook-flood",
    "dlq-growth",
    "drift",
    "no-ingest",
}
REQUIRED_ALERTS = {
    "CodexIngestLatencyP95High": "page",
    "CodexHTTP5xxRatioHigh": "page",
    "CodexNoIngestBusinessHours": "warn",
    "CodexDLQGrowth": "warn",
    "CodexReconcileDrift": "warn",
    "CodexReconcileStale": "warn",
    "CodexAuthFailureSpike": "warn",
    "CodexRateLimitSpike": "warn",
    "CodexMetricsTargetDown": "page",
}


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


# --- promtool / amtool ------------------------------------------------------------------------


def test_promtool_check_rules():
    result = _run(_tool("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


TOKEN_FILE = "/etc/prometheus/secrets/codex-metrics-token"


def test_promtool_check_config(tmp_path):
    """The shipped config is valid once its token file is mounted (here: a temporary one)."""
    text = PROM_CONFIG.read_text()
    assert TOKEN_FILE in text  # /metrics is scraped with the bearer token
    (tmp_path / "token").write_text("t" * 40)
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace(TOKEN_FILE, str(tmp_path / "token")))
    for rule_file in PROM.glob("rules/*.yml"):
        (tmp_path / "rules").mkdir(exist_ok=True)
        (tmp_path / "rules" / rule_file.name).write_text(rule_file.read_text())
    result = _run(_tool("promtool"), "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout  # rule_files resolved relative to the config


def test_promtool_test_rules():
    """Every alert firing and not firing (infra/observability/prometheus/tests/)."""
    result = _run(_tool("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS), result.stdout


def test_rule_tests_cover_every_alert_firing_and_silent():
    tests = [t for path in RULE_TESTS for t in yaml.safe_load(path.read_text())["tests"]]
    firing: set[str] = set()
    silent: set[str] = set()
    for group in tests:
        for case in group.get("alert_rule_test", []):
            (firing if case["exp_alerts"] else silent).add(case["alertname"])
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert alerts == firing, f"never tested firing: {alerts - firing}"
    assert alerts == silent, f"never tested silent: {alerts - silent}"


def test_amtool_check_config_and_routes():
    amtool = _tool("amtool")
    result = _run(amtool, "check-config", str(AM_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    for labels, receiver in [
        (["severity=page", "alertname=CodexHTTP5xxRatioHigh"], "oncall-page"),
        (["severity=warn", "alertname=CodexDLQGrowth"], "oncall-warn"),
        (["alertname=Unlabelled"], "oncall-warn"),
    ]:
        result = _run(
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={AM_CONFIG}",
            f"--verify.receivers={receiver}",
            *labels,
        )
        assert result.returncode == 0, (labels, result.stdout + result.stderr)


# --- rule hygiene -----------------------------------------------------------------------------


def _rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_required_alerts_exist_with_severity_annotations_and_runbook():
    alerts = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
    for name, severity in REQUIRED_ALERTS.items():
        assert name in alerts, name
        assert alerts[name]["labels"]["severity"] == severity, name
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("page", "warn"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        url = annotations["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "infra/runbooks/oncall.md", name
        assert anchor in RUNBOOK_ANCHORS, (name, anchor)


def _github_slug(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_runbook_anchors_exist_in_oncall_md():
    text = RUNBOOK.read_text()
    anchors = {_github_slug(m) for m in re.findall(r"^#+\s+(.+)$", text, re.MULTILINE)}
    anchors |= set(re.findall(r"""(?:id|name)=["']([\w-]+)["']""", text))
    anchors |= set(re.findall(r"\{#([\w-]+)\}", text))
    used = {
        rule["annotations"]["runbook_url"].split("#")[1] for rule in _rules() if "alert" in rule
    }
    assert used <= anchors, f"runbook anchors missing from oncall.md: {used - anchors}"


def test_recording_rules_used_are_defined():
    rules = _rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    for rule in rules:
        for name in re.findall(r"\bcodex:[a-z0-9_:]+", rule["expr"]):
            assert name in recorded, name


# --- every metric used is exported --------------------------------------------------------------

_KINDS = {
    "Counter": ("_total",),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "Summary": ("_sum", "_count", ""),
}


def exported_metric_names() -> dict[str, str]:
    """Every sample name the code exports, from the Counter/Gauge/Histogram calls in */metrics.py
    (prometheus_client appends _total to counters and _bucket/_sum/_count to histograms)."""
    names: dict[str, str] = {}
    for path in sorted(ROOT.glob("*/metrics.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            kind = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if kind not in _KINDS or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            base = first.value
            if kind == "Counter":
                base = base.removesuffix("_total")
            for suffix in _KINDS[kind]:
                names[base + suffix] = str(path.relative_to(ROOT))
    return names


def _names_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(codex_[a-z0-9_]+)\b", expr))


def _dashboard_exprs(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        if var["type"] == "query":
            exprs.append(query)
    return exprs


def test_the_code_exports_the_expected_names():
    names = exported_metric_names()
    for name in (
        "codex_http_responses_total",
        "codex_ingest_request_duration_seconds_bucket",
        "codex_dlq_unresolved_events",
        "codex_config_reads_total",
        "codex_sync_batches_total",
        "codex_reconcile_drift_ratio",
        "codex_reconcile_last_run_timestamp_seconds",
    ):
        assert name in names, name
    assert "codex_ingest_request_duration_seconds" not in names  # a histogram has no bare name


def test_every_metric_in_the_rules_is_exported():
    exported = exported_metric_names()
    used = set().union(*(_names_in(rule["expr"]) for rule in _rules()))
    assert used, "no codex_ metric found in the rules"
    assert used <= exported.keys(), f"not exported by any */metrics.py: {used - exported.keys()}"


def test_every_metric_in_the_dashboard_is_exported():
    exported = exported_metric_names()
    used = set().union(*(_names_in(e) for e in _dashboard_exprs(_dashboard())))
    assert used <= exported.keys(), f"not exported by any */metrics.py: {used - exported.keys()}"
    for needed in (
        "codex_ingest_requests_total",
        "codex_ingest_request_duration_seconds_bucket",
        "codex_ingest_events_total",
        "codex_ratelimit_rejections_total",
        "codex_http_responses_total",
        "codex_ingest_auth_failures_total",
        "codex_enrich_events_total",
        "codex_dlq_unresolved_events",
        "codex_dlq_events_total",
        "codex_reconcile_drift_ratio",
        "codex_sync_batches_total",
        "codex_config_reads_total",
        "codex_ingest_source_deliveries_total",
        "codex_ingest_source_signature_failures_total",
        "codex_ingest_source_delivery_duration_seconds_bucket",
        "codex_reconcile_source_missing_events",
    ):
        assert needed in used, f"the dashboard has no panel for {needed}"


# --- the Grafana dashboard ----------------------------------------------------------------------


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_is_importable_grafana_json_with_a_datasource_variable():
    dashboard = _dashboard()
    assert dashboard["title"]
    assert dashboard["uid"]
    assert dashboard["schemaVersion"] >= 30
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys(), panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["expr"].strip(), panel["title"]
            assert target["refId"], panel["title"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_dashboard_queries_parse_as_promql():
    """Every panel query is valid PromQL (promtool parses it as a recording rule)."""
    promtool = _tool("promtool")
    exprs = [
        e.replace("$__rate_interval", "5m").replace("$tenant", ".*")
        for e in _dashboard_exprs(_dashboard())
        if not e.startswith("label_values(")
    ]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    with _tmp_yaml(rules) as path:
        result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


class _tmp_yaml:
    def __init__(self, doc: dict):
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        self.path = Path(self._dir.name) / "doc.yml"
        self.path.write_text(yaml.safe_dump(doc))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        self._dir.cleanup()


# --- a real Prometheus --------------------------------------------------------------------------


@pytest.mark.slow
def test_real_prometheus_scrapes_metrics_and_loads_the_rules(live_server, tmp_path):
    prometheus = _tool("prometheus")
    # Something to count: an unsigned ingest is answered 401 (4xx, an auth failure).
    assert httpx.post(f"{live_server.url}/v1/events", content=b"{}").status_code == 401
    target = live_server.url.removeprefix("http://")
    port = free_port()
    # The real rules, evaluated every second instead of every 30 s (same expressions).
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [
            {
                "job_name": "codex",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:

        def target_up():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            active = httpx.get(f"{api}/targets", timeout=2).json()["data"]["activeTargets"]
            return active and active[0]["health"] == "up" and active[0]

        up = wait_until(
            target_up,
            timeout=20,
            interval=0.25,
            message="the live server target to be up",
            ignoring=(httpx.TransportError, ValueError),
        )
        assert up["labels"]["job"] == "codex"

        def query(expr: str):
            response = httpx.get(f"{api}/query", params={"query": expr}, timeout=2).json()
            assert response["status"] == "success", response
            return response["data"]["result"]

        result = wait_until(
            lambda: query('codex_http_responses_total{status_class="4xx"} >= 1'),
            timeout=20,
            interval=0.25,
            message="codex_http_responses_total to be queryable",
            ignoring=(httpx.TransportError, ValueError),
        )
        assert result[0]["metric"]["job"] == "codex"
        assert wait_until(
            lambda: query('codex_ingest_requests_total{outcome="unauthorized"} >= 1'),
            timeout=20,
            interval=0.25,
            message="codex_ingest_requests_total to be queryable",
            ignoring=(httpx.TransportError, ValueError),
        )

        def rules_evaluated():
            groups = httpx.get(f"{api}/rules", timeout=2).json()["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            evaluated = all(r.get("lastEvaluation", "").startswith("20") for r in rules)
            return evaluated and rules

        rules = wait_until(
            rules_evaluated,
            timeout=40,
            interval=0.25,
            message="every rule to be evaluated once",
            ignoring=(httpx.TransportError, ValueError),
        )
        assert {r["name"] for r in rules if r["type"] == "alerting"} >= REQUIRED_ALERTS.keys()
        unhealthy = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        assert not unhealthy
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
