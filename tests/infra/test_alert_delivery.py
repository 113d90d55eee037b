"""Alerts reach the on-call receivers: real Prometheus -> real Alertmanager -> webhook receivers.

Prometheus scrapes a live server with the shipped scrape config (bearer token from a file) and
evaluates the shipped rules (a copy with `for:` shortened and a 1 s evaluation interval);
Alertmanager routes with the shipped routing tree (a copy with short group timings, receiver
URLs pointed at a local webhook server standing in for the pager and the chat channel, the token
file a temporary one). Two faults, each on its own receiver:

- the live server's /metrics cannot be scraped (the app's METRICS_TOKEN rotated without updating
  Prometheus's secret: up == 0) -> CodexMetricsTargetDown, severity page -> /codex/page, and a
  resolved notification once Prometheus has the right token again;
- a burst of unsigned requests (401s) -> CodexAuthFailureSpike, severity warn -> /codex/warn.
"""

from __future__ import annotations

import copy
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import wait_until
from tests.infra.promstack import (
    AM_CONFIG,
    NOT_READY,
    PROM_CONFIG,
    WebhookReceiver,
    alertmanager,
    prometheus,
    query,
    rules_for_test,
)

TIMINGS = ("group_wait", "group_interval", "repeat_interval")
METRICS_TOKEN = "m" * 40
ONCALL_TOKEN = "oncall-relay-token-for-the-test"


def _strip_timings(route: dict) -> dict:
    route = {k: v for k, v in route.items() if k not in TIMINGS}
    if "routes" in route:
        route["routes"] = [_strip_timings(r) for r in route["routes"]]
    return route


def _shorten_timings(route: dict, *, root: bool = True) -> None:
    """1 s group_wait/group_interval wherever the shipped tree sets one (and at the root)."""
    for key in ("group_wait", "group_interval"):
        if root or key in route:
            route[key] = "1s"
    for sub in route.get("routes", []):
        _shorten_timings(sub, root=False)


def alertmanager_test_config(receiver_port: int, token_file: Path) -> dict:
    """The shipped config with local receiver URLs, a temporary token file and 1 s timings."""
    shipped = yaml.safe_load(AM_CONFIG.read_text())
    config = copy.deepcopy(shipped)
    _shorten_timings(config["route"])
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            path = "/" + hook["url"].split("://", 1)[1].split("/", 1)[1]
            hook["url"] = f"http://127.0.0.1:{receiver_port}{path}"
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    # The routing tree itself (matchers, receivers, grouping, inhibitions) is the shipped one.
    assert _strip_timings(config["route"]) == _strip_timings(shipped["route"])
    assert config["inhibit_rules"] == shipped["inhibit_rules"]
    assert [r["name"] for r in config["receivers"]] == [r["name"] for r in shipped["receivers"]]
    return config


def prometheus_test_config(target: str, am_url: str, token_file: Path) -> dict:
    """The shipped prometheus.yml's codex job (bearer token file) aimed at the live server."""
    shipped = yaml.safe_load(PROM_CONFIG.read_text())
    (job,) = [j for j in shipped["scrape_configs"] if j["job_name"] == "codex"]
    job = copy.deepcopy(job)
    job["authorization"]["credentials_file"] = str(token_file)
    job["static_configs"] = [{"targets": [target], "labels": {"component": "web"}}]
    return {
        "global": {
            **shipped["global"],
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        },
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [am_url.removeprefix("http://")]}]}]
        },
        "scrape_configs": [job],
    }


def _named(receiver: WebhookReceiver, path: str, alertname: str, status: str):
    return [
        (note, alert)
        for note, alert in receiver.alerts(path)
        if alert["labels"]["alertname"] == alertname and alert["status"] == status
    ]


@pytest.mark.slow
def test_firing_alerts_reach_the_right_receiver_and_resolve(live_server, settings, tmp_path):
    settings.METRICS_TOKEN = METRICS_TOKEN
    scrape_token = tmp_path / "codex-metrics-token"
    scrape_token.write_text(METRICS_TOKEN)
    oncall_token = tmp_path / "oncall-webhook-token"
    oncall_token.write_text(ONCALL_TOKEN)
    url = live_server.url
    # The auth-failure series exists before Prometheus's first scrape, so the burst below
    # is an increase that rate() sees.
    assert httpx.post(f"{url}/v1/events", content=b"{}").status_code == 401

    with WebhookReceiver() as receiver:
        am_config = alertmanager_test_config(receiver.port, oncall_token)
        with alertmanager(tmp_path / "am", am_config) as am:
            prom_config = prometheus_test_config(url.removeprefix("http://"), am, scrape_token)
            with prometheus(tmp_path / "prom", prom_config, rules_for_test()) as prom:
                wait_until(
                    lambda: query(prom, 'up{job="codex"} == 1'),
                    timeout=30,
                    interval=0.2,
                    message="the live server scraped",
                    ignoring=NOT_READY,
                )

                # Fault 1 (page): Prometheus's token no longer matches the app's.
                scrape_token.write_text("t" * 40)
                fired = wait_until(
                    lambda: _named(receiver, "/codex/page", "CodexMetricsTargetDown", "firing"),
                    timeout=60,
                    interval=0.2,
                    message="CodexMetricsTargetDown on the pager",
                    ignoring=NOT_READY,
                )
                scrape_token.write_text(METRICS_TOKEN)  # the fault stops
                resolved = wait_until(
                    lambda: _named(receiver, "/codex/page", "CodexMetricsTargetDown", "resolved"),
                    timeout=60,
                    interval=0.2,
                    message="the resolved CodexMetricsTargetDown on the pager",
                    ignoring=NOT_READY,
                )

                # Fault 2 (warn): a burst of unsigned requests, > 50 and > 10 % of responses.
                for _ in range(60):
                    assert httpx.post(f"{url}/v1/events", content=b"{}").status_code == 401
                spike = wait_until(
                    lambda: _named(receiver, "/codex/warn", "CodexAuthFailureSpike", "firing"),
                    timeout=60,
                    interval=0.2,
                    message="CodexAuthFailureSpike on the on-call channel",
                    ignoring=NOT_READY,
                )

    note, alert = fired[0]
    assert note["receiver"] == "oncall-page"
    assert alert["labels"]["severity"] == "page"
    assert alert["labels"]["job"] == "codex"
    assert alert["annotations"]["runbook_url"] == "infra/runbooks/oncall.md#5xx-burst"
    assert alert["annotations"]["summary"].startswith("Cannot scrape Codex /metrics on ")
    note, alert = resolved[0]
    assert note["status"] == "resolved"
    assert alert["endsAt"] > alert["startsAt"]

    note, alert = spike[0]
    assert note["receiver"] == "oncall-warn"
    assert alert["labels"]["severity"] == "warn"
    assert alert["annotations"]["runbook_url"] == "infra/runbooks/oncall.md#webhook-flood"

    # Each receiver got only its own severity, with the token from the mounted file.
    assert {a["labels"]["severity"] for _, a in receiver.alerts("/codex/page")} == {"page"}
    assert {a["labels"]["severity"] for _, a in receiver.alerts("/codex/warn")} == {"warn"}
    assert {d["authorization"] for d in receiver.deliveries} == {f"Bearer {ONCALL_TOKEN}"}
    assert not _named(receiver, "/codex/warn", "CodexMetricsTargetDown", "firing")
    assert not _named(receiver, "/codex/page", "CodexAuthFailureSpike", "firing")
