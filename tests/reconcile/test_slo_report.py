"""`manage.py slo_report` against a real Prometheus: live traffic, backfilled days, and failures."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.core.management import CommandError, call_command

from reconcile.slo import ERROR_RATIO_RULE, P95_RULE, SYNC_RATE_RULE, SYNC_RATIO_RULE
from tests.factories import SigningKeyFactory, TenantFactory
from tests.helpers import wait_until
from tests.infra.promstack import NOT_READY, prometheus, query, rules_for_test, tool
from tests.netutil import black_hole, free_port
from tests.signing import sign_headers

_seq = itertools.count(1)


def slo_report(*args: str) -> str:
    out = io.StringIO()
    call_command("slo_report", *args, stdout=out)
    return out.getvalue()


def _event(key: str | None = None) -> dict:
    return {
        "idempotency_key": key or f"slo-{time.time_ns()}-{next(_seq)}",
        "type": "sale.completed",
        "occurred_at": "2026-01-15T10:30:00Z",
        "source": "pos",
        "payload": {"amount": "1.00", "currency": "EUR"},
    }


@pytest.mark.slow
def test_report_reads_the_recording_rules_fed_by_a_live_server(live_server, tmp_path, db):
    # A slug of its own: the process-wide metric registry keeps other tests' series.
    tenant = TenantFactory(slug=f"slo{uuid.uuid4().hex[:10]}")
    key = SigningKeyFactory(tenant=tenant)

    def sdk_batch(*, bad: bool) -> int:
        """One SDK background-sync batch; `bad` puts an invalid item in it (outcome rejected)."""
        events = [_event(), {"nope": 1}] if bad else [_event(), _event()]
        body = json.dumps({"events": events}).encode()
        headers = sign_headers(key.key_id, key.secret, body)
        headers.update({"Content-Type": "application/json", "User-Agent": "codex-sdk/1.0"})
        response = httpx.post(f"{live_server.url}/v1/events", content=body, headers=headers)
        assert response.status_code < 300, response.text
        return response.status_code

    # Every series the rules read exists before Prometheus's first scrape (rate() needs two
    # samples of a series, so traffic counts only once Prometheus has seen the series).
    sdk_batch(bad=False)
    sdk_batch(bad=True)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "codex",
                "static_configs": [{"targets": [live_server.url.removeprefix("http://")]}],
            }
        ],
    }
    series = f'codex_sync_batches_total{{tenant="{tenant.slug}"}}'
    with prometheus(tmp_path, config, rules_for_test()) as prom:

        def counts() -> dict[str, float]:
            return {s["metric"]["outcome"]: float(s["value"][1]) for s in query(prom, series)}

        wait_until(
            lambda: counts().keys() == {"success", "rejected"},
            timeout=30,
            interval=0.2,
            message="the SDK batch series",
            ignoring=NOT_READY,
        )
        before = counts()
        for bad in (False,) * 6 + (True,) * 2:  # 6 good batches, 2 with a rejected item
            sdk_batch(bad=bad)

        def scraped():
            expected = {"success": before["success"] + 6, "rejected": before["rejected"] + 2}
            return counts() == expected

        wait_until(
            scraped,
            timeout=30,
            interval=0.2,
            message="the last batches to be scraped",
            ignoring=NOT_READY,
        )
        seen = time.time()

        def recorded_since():
            ratio = query(prom, f"timestamp({SYNC_RATIO_RULE})")
            return ratio and float(ratio[0]["value"][1]) > seen + 1

        wait_until(
            recorded_since,
            timeout=30,
            interval=0.2,
            message="the recording rules to be evaluated after that scrape",
            ignoring=NOT_READY,
        )
        p95 = float(query(prom, P95_RULE)[0]["value"][1])
        doc = json.loads(slo_report("--days", "1", "--json", "--prometheus-url", prom))
        text = slo_report("--days", "1", "--prometheus-url", prom)

    slos = {s["key"]: s for s in doc["slos"]}
    assert list(slos) == ["latency_p95", "error_rate", "sync_success"]
    assert doc["days"] == 1
    assert [s["rule"] for s in doc["slos"]] == [P95_RULE, ERROR_RATIO_RULE, SYNC_RATIO_RULE]
    # One 5-minute window had traffic (Prometheus has been up for seconds).
    (latency,) = slos["latency_p95"]["days"]
    assert latency["windows"] == 1
    assert latency["windows_missed"] == (1 if p95 > 1 else 0)
    (errors,) = slos["error_rate"]["days"]
    assert (errors["windows"], errors["windows_missed"], errors["compliance"]) == (1, 0, 1.0)
    assert slos["error_rate"]["budget_left_ratio"] == 1.0  # no 5xx: the whole budget is left
    assert slos["error_rate"]["budget_allowed"] == pytest.approx(2.88)  # 1 % of 288 windows
    # Sync: 6 of 8 batches succeeded, 75 % < 98 %: the day is missed, the budget overspent.
    (sync,) = slos["sync_success"]["days"]
    assert 0.7 < sync["compliance"] < 0.8, sync
    assert sync["met"] is False
    # 8 sent; rate()'s extrapolation stretches or shrinks the count with scrape timing, so only
    # the ratio above is exact enough to assert (exact counts: the backfilled test below).
    assert sync["batches"] > 0, sync
    assert slos["sync_success"]["budget_left_ratio"] < -10  # 25 % failed of a 2 % budget
    assert "| 24 h from (UTC) | P95 ingest latency < 1 s |" in text
    assert "(1/1 windows) ok" in text
    assert "MISSED" in text
    assert "background sync success > 98 % per day: " in text
    assert "EXHAUSTED" in text


def _openmetrics(start: datetime, days: int) -> str:
    """Three days of recorded SLO series, one sample a minute, with known bad windows."""
    lines = [
        f"# TYPE {name} gauge"
        for name in (P95_RULE, ERROR_RATIO_RULE, SYNC_RATIO_RULE, SYNC_RATE_RULE)
    ]
    body: dict[str, list[str]] = {name: [] for name in lines}
    step = 60
    for i in range(days * 86_400 // step):
        ts = start.timestamp() + (i + 1) * step
        day, minute = divmod(i, 1440)
        # Day 0: P95 1.5 s for 30 minutes (6 windows missed); day 2: no ingest for an hour (NaN).
        p95 = 1.5 if day == 0 and 600 <= minute < 630 else 0.12
        if day == 2 and 60 <= minute < 120:
            p95 = float("nan")
        # Day 1: 5xx at 3 % for 10 minutes (2 windows).
        ratio = 0.03 if day == 1 and 300 <= minute < 310 else 0.001
        sync = (0.995, 0.97, 0.99)[day]  # day 1 misses 98 %
        body[lines[0]].append(f"{P95_RULE} {p95} {ts:.0f}")
        body[lines[1]].append(f"{ERROR_RATIO_RULE} {ratio} {ts:.0f}")
        body[lines[2]].append(f"{SYNC_RATIO_RULE} {sync} {ts:.0f}")
        body[lines[3]].append(f"{SYNC_RATE_RULE} {1000 / 86_400} {ts:.0f}")  # 1,000 a day
    text = "\n".join(line for header in lines for line in (header, *body[header]))
    return text.replace(" nan ", " NaN ") + "\n# EOF\n"


@pytest.mark.slow
def test_report_counts_each_days_missed_windows_and_the_budget(tmp_path):
    """Recorded series backfilled into a real Prometheus (promtool tsdb create-blocks-from)."""
    days = 3
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    start = end - timedelta(days=days)
    source = tmp_path / "series.om"
    source.write_text(_openmetrics(start, days))
    data = tmp_path / "prom" / "data"
    result = subprocess.run(
        [tool("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = {"global": {"scrape_interval": "1m", "evaluation_interval": "1m"}}
    with prometheus(tmp_path / "prom", config) as prom:
        wait_until(
            lambda: query(prom, f"count_over_time({P95_RULE}[4h])"),
            timeout=30,
            interval=0.2,
            message="the backfilled blocks",
            ignoring=NOT_READY,
        )
        doc = json.loads(
            slo_report("--days", "3", "--end", end.isoformat(), "--json", "--prometheus-url", prom)
        )
        text = slo_report("--days", "3", "--end", end.isoformat(), "--prometheus-url", prom)

    slos = {s["key"]: s for s in doc["slos"]}
    latency = slos["latency_p95"]
    assert [(d["windows"], d["windows_missed"]) for d in latency["days"]] == [
        (288, 6),
        (288, 0),
        (276, 0),  # an hour without traffic is not judged
    ]
    assert [d["met"] for d in latency["days"]] == [False, True, True]  # 6 > 1 % of 288
    assert latency["budget_allowed"] == pytest.approx(8.64)
    assert latency["budget_spent"] == 6
    assert latency["budget_left_ratio"] == pytest.approx(1 - 6 / 8.64, abs=1e-3)
    errors = slos["error_rate"]
    assert [d["windows_missed"] for d in errors["days"]] == [0, 2, 0]
    assert [d["met"] for d in errors["days"]] == [True, True, True]  # 2 <= 2.88 a day
    assert errors["budget_spent"] == 2
    sync = slos["sync_success"]
    assert [d["compliance"] for d in sync["days"]] == [0.995, 0.97, 0.99]
    assert [d["met"] for d in sync["days"]] == [True, False, True]
    assert [d["batches"] for d in sync["days"]] == [1000, 1000, 1000]
    assert sync["budget_allowed"] == pytest.approx(60)  # 2 % of 3,000 batches
    assert sync["budget_spent"] == pytest.approx(5 + 30 + 10)
    assert doc["start"] == start.isoformat().replace("+00:00", "Z")
    assert "(282/288 windows) MISSED" in text
    assert f"| {start:%Y-%m-%d %H:%M} |" in text


def test_unreachable_prometheus_is_a_clear_error():
    with pytest.raises(CommandError, match=r"Prometheus at http://127\.0\.0\.1:\d+ is unreachable"):
        slo_report("--prometheus-url", f"http://127.0.0.1:{free_port()}")


def test_a_hung_prometheus_times_out_with_a_clear_error():
    with black_hole() as port:
        started = time.monotonic()
        with pytest.raises(CommandError, match=r"is unreachable: .*timeout 0\.5 s"):
            slo_report("--prometheus-url", f"http://127.0.0.1:{port}", "--timeout", "0.5")
    assert time.monotonic() - started < 5


def test_without_a_prometheus_url_it_says_what_to_set(settings):
    settings.PROMETHEUS_URL = None
    with pytest.raises(CommandError, match="PROMETHEUS_URL is not set"):
        slo_report()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--days", "0"], "--days must be between 1 and"),
        (["--days", "31"], "--days must be between 1 and"),
        (["--end", "yesterdayish"], "--end must be now, today"),
    ],
)
def test_bad_arguments_are_refused(settings, bad, message):
    settings.PROMETHEUS_URL = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match=message):
        slo_report(*bad)


def test_something_that_is_not_prometheus_is_named(live_server):
    with pytest.raises(CommandError, match="did not answer as Prometheus"):
        slo_report("--prometheus-url", live_server.url + "/healthz/x")
