"""`manage.py reconcile`: reconcile a UTC day now and print the drift per tenant."""

from __future__ import annotations

import json
from datetime import date, timedelta

from codex import error_codes as codes
from codex.commands import DomainCommand
from reconcile import selectors, services
from reconcile.management.source_reconcile import reconcile_source
from reconcile.repair import drift_repair
from tenants.selectors import tenant_get

COLUMNS = ("tenant", "day", "accepted", "enriched", "dead", "pending", "drift", "grade")


class Command(DomainCommand):
    """Run the nightly reconciliation for one day (default yesterday), all tenants or one."""

    help = (
        "Compare accepted events with events_enriched for a UTC day (default: yesterday) and "
        "record the runs: --date YYYY-MM-DD|today|yesterday, --tenant SLUG, --json, --repair "
        "(re-enrich the window's pending events, those missing from events_enriched included; "
        "audited)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", dest="day", help="UTC day: YYYY-MM-DD, today or yesterday")
        parser.add_argument("--tenant", help="only this tenant (slug)")
        parser.add_argument(
            "--source",
            choices=["stripe"],
            help="also compare the day with the source system itself (needs --tenant)",
        )
        parser.add_argument(
            "--repair",
            action="store_true",
            help=(
                "re-enrich the pending events of each window (no events_enriched row, no open "
                "dead letter); with --source also ingest what the source has and the ledger "
                "lacks (audited)"
            ),
        )
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help='print one JSON object {"runs": [...]} (and "repairs" with --repair)',
        )
        parser.add_argument("--actor", default="cli", help="name recorded in the audit log")
        parser.add_argument(
            "--types", default="", help="with --source stripe: only these event types (a,b)"
        )

    def handle(self, *args, day=None, tenant=None, source=None, as_json=False, **options):
        target = self._day(day)
        if source and not tenant:
            raise codes.INVALID_ARGUMENTS.error("--source needs --tenant")
        if source and as_json:
            raise codes.INVALID_ARGUMENTS.error("--json does not combine with --source")
        tenant_id = tenant_get(slug=tenant).id if tenant else None
        outcome = services.drift_compute(day=target, tenant_id=tenant_id)
        repairs = []
        if options["repair"]:
            repairs = drift_repair(outcome=outcome, actor=options["actor"])
        if as_json:
            document = {"runs": [self._run_json(r) for r in outcome.runs]}
            if options["repair"]:
                document["repairs"] = [r.as_json() for r in repairs]
            self.stdout.write(json.dumps(document))
            self._failed(outcome)
            return
        rows = [
            (
                r.slug,
                r.day.isoformat(),
                str(r.accepted),
                str(r.enriched),
                str(r.dead_lettered),
                str(r.pending),
                f"{r.drift:.3%}",
                selectors.drift_grade(r.drift).value,
            )
            for r in outcome.runs
        ]
        self._table(rows)
        if outcome.runs:
            w = outcome.runs[0]
            self.stdout.write(
                f"window {w.window_start:%Y-%m-%d %H:%M} - {w.window_end:%Y-%m-%d %H:%M} UTC; "
                f"{len(outcome.runs)} tenant(s) reconciled"
            )
        else:
            self.stdout.write("no tenants to reconcile")
        for r in repairs:
            self.stdout.write(self._repair_line(r))
        health = selectors.reconcile_health()
        self.stdout.write(f"health: {health.grade.value} ({'; '.join(health.reasons)})")
        if source:
            reconcile_source(
                self,
                tenant_id=tenant_id,
                day=target,
                repair=options["repair"],
                types=options["types"],
            )
        self._failed(outcome)

    def _failed(self, outcome) -> None:
        if outcome.failed:
            for slug, error in outcome.failed.items():
                self.stderr.write(f"{slug}: {error}")
            raise codes.RECONCILE_FAILED.error(
                f"reconcile failed for {len(outcome.failed)} tenant(s)"
            )

    @staticmethod
    def _repair_line(r) -> str:
        line = f"repair {r.tenant} {r.day}: "
        if not r.pending:
            return line + "nothing pending"
        line += f"{r.reenriched} pending event(s) re-enriched"
        if r.lost:
            line += f" ({r.lost} marked enriched in the ledger but missing from events_enriched)"
        if r.failed:
            how = "drain enqueued" if r.enqueued else "left to the sweeper"
            line += f"; {r.failed} failed again, left to the drain's retries ({how})"
        return line

    @staticmethod
    def _run_json(r) -> dict:
        return {
            "tenant": r.slug,
            "day": r.day.isoformat(),
            "window_start": r.window_start.isoformat(),
            "window_end": r.window_end.isoformat(),
            "accepted": r.accepted,
            "enriched": r.enriched,
            "dead_lettered": r.dead_lettered,
            "pending": r.pending,
            "drift": r.drift,
            "grade": selectors.drift_grade(r.drift).value,
        }

    def _day(self, value: str | None) -> date:
        today = services.utc_today()
        if value in (None, "yesterday"):
            return today - timedelta(days=1)
        if value == "today":
            return today
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise codes.INVALID_ARGUMENTS.error(
                f"--date wants YYYY-MM-DD, today or yesterday, not {value!r}"
            ) from exc
        if day > today:
            raise codes.DAY_NOT_STARTED.error(f"{day} has not started yet (UTC)")
        return day

    def _table(self, rows: list[tuple[str, ...]]) -> None:
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(COLUMNS)]
        left = {0, 1, 7}  # text columns; numbers align right

        def line(cells) -> str:
            return "  ".join(
                c.ljust(w) if i in left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        self.stdout.write(line(COLUMNS))
        for row in rows:
            self.stdout.write(line(row))
