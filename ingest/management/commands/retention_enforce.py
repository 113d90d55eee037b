"""`manage.py retention_enforce [--tenant SLUG] [--dry-run]`: apply retentionDays now."""

from __future__ import annotations

from codex.commands import DomainCommand, cli_actor
from ingest.services.retention import retention_enforce
from tenants.selectors import tenant_get


class Command(DomainCommand):
    help = (
        "Delete events, enriched rows and resolved dead letters older than each tenant's "
        "retentionDays flag (whole month partitions when no tenant needs them), and idempotency "
        "keys past their grace period. Audited. --dry-run only counts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="only this tenant (no partition drop)")
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")

    def handle(self, *args, **options):
        slug = options["tenant"]
        if slug is not None:
            tenant_get(slug=slug)  # an unknown slug is an error, not "nothing to delete"
        report = retention_enforce(tenant_slug=slug, dry_run=options["dry_run"], actor=cli_actor())
        verb = "would delete" if report.dry_run else "deleted"
        for part in report.partitions_dropped:
            self.stdout.write(f"partition {part}: {'would drop' if report.dry_run else 'dropped'}")
        for t in report.tenants:
            self.stdout.write(
                f"{t.slug}: retentionDays={t.retention_days} cutoff={t.cutoff:%Y-%m-%dT%H:%M:%SZ} "
                f"{verb} events={t.events} enriched={t.enriched} dead_letters={t.dead_letters} "
                f"idempotency_keys={t.idempotency_keys}"
            )
