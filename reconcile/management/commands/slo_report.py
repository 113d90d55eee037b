"""`manage.py slo_report`: SLO compliance per day and error budget left, from Prometheus."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time

from django.conf import settings

from codex import error_codes as codes
from codex.commands import DomainCommand, moment_parse
from reconcile.slo import MAX_DAYS, slo_report_compute, slo_report_render


def parse_end(value: str | None) -> datetime:
    """now (default), today (00:00 UTC, so whole calendar days), YYYY-MM-DD or an ISO time."""
    if not value or value == "now":
        return datetime.now(UTC)
    if value == "today":
        return datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
    try:
        return moment_parse(value)
    except ValueError as exc:
        message = f"--end must be now, today, YYYY-MM-DD or an ISO time, not {value!r}"
        raise codes.INVALID_ARGUMENTS.error(message) from exc


class Command(DomainCommand):
    """Print each SLO's compliance per day and the error budget left over the period."""

    help = (
        "SLO report from Prometheus (PROMETHEUS_URL): P95 ingest latency < 1 s, 5xx rate < 1 % "
        "per 5 m, SDK sync success > 98 % per day; compliance for each 24 h slice ending at "
        "--end and the error budget left. --json for machines."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, help=f"24 h slices, 1..{MAX_DAYS}")
        parser.add_argument(
            "--end", help="end of the period: now (default), today (00:00 UTC), YYYY-MM-DD, ISO"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--prometheus-url", help="Prometheus base URL (default: PROMETHEUS_URL)"
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=settings.PROMETHEUS_TIMEOUT_S,
            help="seconds per Prometheus request",
        )

    def handle(self, *args, **opts):
        url = opts["prometheus_url"] or settings.PROMETHEUS_URL
        if not url:
            raise codes.INVALID_ARGUMENTS.error(
                "PROMETHEUS_URL is not set (or pass --prometheus-url)"
            )
        if not 1 <= opts["days"] <= MAX_DAYS:
            raise codes.INVALID_DAYS.error(f"--days must be between 1 and {MAX_DAYS}")
        report = slo_report_compute(
            prometheus_url=url,
            days=opts["days"],
            end=parse_end(opts["end"]),
            timeout_s=opts["timeout"],
        )
        if opts["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(slo_report_render(report))
