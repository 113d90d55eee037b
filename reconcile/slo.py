"""SLO compliance per day and error budget left, read from Prometheus's recording rules."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from codex import error_codes as codes
from reconcile.errors import ReconcileError

WINDOW_S = 300  # the recording rules' 5-minute windows
DAY_S = 86_400
WINDOWS_PER_DAY = DAY_S // WINDOW_S
MAX_DAYS = 30  # keeps one query_range under Prometheus's 11,000 points per series
# docs/pilot-notes.md: 1 % of the 5-minute windows may miss their target (about 3 a day, 20 a
# week). The latency SLO spends the same kind of budget as the error-rate SLO.
WINDOW_BUDGET = 0.01
SYNC_TARGET = 0.98  # successful SDK batches per day; the budget is the other 2 % of batches

# Recording rules in infra/observability/prometheus/rules/codex-alerts.yml.
P95_RULE = "codex:ingest_request_duration_seconds:p95_5m"
ERROR_RATIO_RULE = "codex:http_5xx_ratio:rate5m"
SYNC_RATIO_RULE = "codex:sync_batch_success_ratio:rate1d"
SYNC_RATE_RULE = "codex:sync_batches:rate1d"


class PrometheusError(ReconcileError):
    """Prometheus could not be asked (unreachable, timed out) or refused the query."""

    def __init__(self, message: str):
        super().__init__(message, code=codes.PROMETHEUS_UNAVAILABLE.code)


@dataclass(frozen=True)
class _WindowSlo:
    key: str
    title: str
    rule: str
    good: Callable[[float], bool]


WINDOW_SLOS = (
    # 1 s is a histogram bucket boundary, so "P95 <= 1 s" is exact (docs/observability.md).
    _WindowSlo("latency_p95", "P95 ingest latency < 1 s", P95_RULE, lambda v: v <= 1.0),
    _WindowSlo("error_rate", "5xx rate < 1 % per 5 m", ERROR_RATIO_RULE, lambda v: v < 0.01),
)


@dataclass
class SloDay:
    """One 24-hour slice of the period for one SLO."""

    start: str
    end: str
    compliance: float | None  # share of windows meeting the target, or the day's success ratio
    met: bool | None  # None: no traffic, nothing to judge
    windows: int | None = None  # 5-minute windows with traffic (window SLOs)
    windows_missed: int | None = None
    batches: float | None = None  # SDK batches in the day (sync SLO)


@dataclass
class SloResult:
    """An SLO over the period: its days and the error budget left."""

    key: str
    title: str
    rule: str
    days: list[SloDay] = field(default_factory=list)
    budget_allowed: float = 0.0  # windows, or failed batches, the period may spend
    budget_spent: float = 0.0
    budget_unit: str = "windows"

    @property
    def budget_left(self) -> float:
        return self.budget_allowed - self.budget_spent

    @property
    def budget_left_ratio(self) -> float | None:
        if self.budget_allowed <= 0:
            return None
        return self.budget_left / self.budget_allowed

    def as_dict(self) -> dict:
        doc = asdict(self)
        doc["budget_left"] = round(self.budget_left, 3)
        ratio = self.budget_left_ratio
        doc["budget_left_ratio"] = None if ratio is None else round(ratio, 4)
        return doc


@dataclass
class SloReport:
    """Every SLO over `days` 24-hour slices ending at `end`."""

    prometheus_url: str
    start: datetime
    end: datetime
    days: int
    slos: list[SloResult]

    def as_dict(self) -> dict:
        return {
            "prometheus_url": self.prometheus_url,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "days": self.days,
            "slos": [s.as_dict() for s in self.slos],
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class PrometheusClient:
    """The two calls the report needs from Prometheus's HTTP API, each with a timeout."""

    def __init__(self, base_url: str, *, timeout_s: float):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise PrometheusError(f"PROMETHEUS_URL must be an http(s) URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def query_range(self, query: str, *, start: float, end: float, step: int) -> list[dict]:
        """The `result` of /api/v1/query_range (a matrix: [{"metric", "values"}])."""
        params = urllib.parse.urlencode(
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)}
        )
        url = f"{self.base_url}/api/v1/query_range?{params}"
        try:
            # The scheme is checked to be http(s) above: no file:// or other handlers.
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:  # noqa: S310  # nosec B310
                body = response.read()
        except urllib.error.HTTPError as exc:  # 400/422/503 carry Prometheus's own error JSON
            body = exc.read()
            if not body:
                raise PrometheusError(f"Prometheus at {self.base_url} answered {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(
                f"Prometheus at {self.base_url} is unreachable: {reason} "
                f"(timeout {self.timeout_s:g} s; set PROMETHEUS_URL or --prometheus-url)"
            ) from exc
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
            raise PrometheusError(
                f"{self.base_url} did not answer as Prometheus's HTTP API does "
                "(is PROMETHEUS_URL the Prometheus base URL?)"
            )
        if doc["status"] != "success":
            raise PrometheusError(
                f"Prometheus refused {query!r}: {doc.get('errorType')}: {doc.get('error')}"
            )
        return doc["data"]["result"]


def _points(result: list[dict], worst: Callable[[float, float], float]) -> dict[float, float]:
    """timestamp -> value, several series merged by `worst` (NaN = no traffic, dropped)."""
    points: dict[float, float] = {}
    for series in result:
        for ts, raw in series["values"]:
            value = float(raw)  # "NaN", "+Inf" parse
            if math.isnan(value):
                continue
            ts = float(ts)
            points[ts] = worst(points[ts], value) if ts in points else value
    return points


def _day_bounds(end: datetime, days: int) -> list[tuple[datetime, datetime]]:
    return [
        (end - timedelta(days=days - i), end - timedelta(days=days - i - 1)) for i in range(days)
    ]


def _window_slo(client: PrometheusClient, slo: _WindowSlo, end: datetime, days: int) -> SloResult:
    end_ts = end.timestamp()
    # Points at end, end - 5 m, ...: each one is the rule's value for the 5 minutes before it.
    start_ts = end_ts - (days * WINDOWS_PER_DAY - 1) * WINDOW_S
    points = _points(client.query_range(slo.rule, start=start_ts, end=end_ts, step=WINDOW_S), max)
    result = SloResult(key=slo.key, title=slo.title, rule=slo.rule)
    for day_start, day_end in _day_bounds(end, days):
        lo, hi = day_start.timestamp(), day_end.timestamp()
        values = [v for ts, v in points.items() if lo < ts <= hi]
        missed = sum(1 for v in values if not slo.good(v))
        result.days.append(
            SloDay(
                start=_iso(day_start),
                end=_iso(day_end),
                compliance=(len(values) - missed) / len(values) if values else None,
                met=(missed <= WINDOW_BUDGET * WINDOWS_PER_DAY) if values else None,
                windows=len(values),
                windows_missed=missed,
            )
        )
    result.budget_allowed = WINDOW_BUDGET * WINDOWS_PER_DAY * days
    result.budget_spent = float(sum(d.windows_missed or 0 for d in result.days))
    return result


def _sync_slo(client: PrometheusClient, end: datetime, days: int) -> SloResult:
    end_ts = end.timestamp()
    start_ts = end_ts - (days - 1) * DAY_S
    # Each point is the rule's value for the 24 hours before it: exactly one slice each.
    span = {"start": start_ts, "end": end_ts, "step": DAY_S}
    ratios = _points(client.query_range(SYNC_RATIO_RULE, **span), min)
    rates = _points(client.query_range(SYNC_RATE_RULE, **span), max)
    result = SloResult(
        key="sync_success",
        title="background sync success > 98 % per day",
        rule=SYNC_RATIO_RULE,
        budget_unit="failed batches",
    )
    for day_start, day_end in _day_bounds(end, days):
        ts = day_end.timestamp()
        ratio = ratios.get(ts)
        batches = rates[ts] * DAY_S if ts in rates else None
        result.days.append(
            SloDay(
                start=_iso(day_start),
                end=_iso(day_end),
                compliance=ratio,
                met=None if ratio is None else ratio > SYNC_TARGET,
                batches=None if batches is None else round(batches, 1),
            )
        )
        if ratio is not None and batches:
            result.budget_allowed += (1 - SYNC_TARGET) * batches
            result.budget_spent += (1 - ratio) * batches
    return result


def slo_report_compute(
    *, prometheus_url: str, days: int, end: datetime, timeout_s: float
) -> SloReport:
    """Every SLO for `days` 24-hour slices ending at `end`, from the shipped recording rules."""
    if not 1 <= days <= MAX_DAYS:
        raise ReconcileError(
            f"days must be 1..{MAX_DAYS}, not {days}", code=codes.INVALID_DAYS.code
        )
    client = PrometheusClient(prometheus_url, timeout_s=timeout_s)
    end = end.astimezone(UTC).replace(microsecond=0)
    slos = [_window_slo(client, slo, end, days) for slo in WINDOW_SLOS]
    slos.append(_sync_slo(client, end, days))
    return SloReport(
        prometheus_url=client.base_url,
        start=end - timedelta(days=days),
        end=end,
        days=days,
        slos=slos,
    )


def _pct(value: float | None) -> str:
    return "no traffic" if value is None else f"{value * 100:.1f} %"


def _cell(slo: SloResult, day: SloDay) -> str:
    if day.compliance is None:
        return "no traffic"
    mark = "ok" if day.met else "MISSED"
    if day.windows is not None:
        good = day.windows - (day.windows_missed or 0)
        return f"{_pct(day.compliance)} ({good}/{day.windows} windows) {mark}"
    return f"{_pct(day.compliance)} ({day.batches:,.0f} batches) {mark}"


def slo_report_render(report: SloReport) -> str:
    """A Markdown block to paste into the daily review (docs/pilot-notes.md)."""
    lines = [
        f"SLO report, {report.days} day(s): {report.start:%Y-%m-%d %H:%M} to "
        f"{report.end:%Y-%m-%d %H:%M} UTC (Prometheus {report.prometheus_url})",
        "",
        "| 24 h from (UTC) | " + " | ".join(s.title for s in report.slos) + " |",
        "| --- | " + " | ".join("---" for _ in report.slos) + " |",
    ]
    for i, day in enumerate(report.slos[0].days):
        cells = [_cell(slo, slo.days[i]) for slo in report.slos]
        lines.append(f"| {day.start[:16].replace('T', ' ')} | " + " | ".join(cells) + " |")
    lines += ["", "Error budget left over the period:"]
    for slo in report.slos:
        ratio = slo.budget_left_ratio
        if ratio is None:
            lines.append(f"- {slo.title}: no traffic, no budget to spend")
            continue
        lines.append(
            f"- {slo.title}: {ratio * 100:.0f} % left ({slo.budget_spent:,.1f} of "
            f"{slo.budget_allowed:,.1f} {slo.budget_unit} spent)"
            + (" EXHAUSTED" if ratio <= 0 else "")
        )
    return "\n".join(lines)
