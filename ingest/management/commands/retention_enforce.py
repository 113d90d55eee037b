"""`manage.py retention_enforce [--tenant SLUG] [--dry-run]`: apply retentionDays now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ingest.lifecycle import retention_enforce
from tenants.cli import cli_actor, logs_to_stderr
from tenants.scope import system_scope


class Command(BaseCommand):
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
            from tenants.models import Tenant

            with system_scope("tenant-lookup"):
                if not Tenant.objects.filter(slug=slug).exists():
                    raise CommandError(f"no tenant {slug!r}")
        with logs_to_stderr():
            report = retention_enforce(
                tenant_slug=slug, dry_run=options["dry_run"], actor=cli_actor()
            )
        verb = "would delete" if report.dry_run else "deleted"
        for part in report.partitions_dropped:
            self.stdout.write(f"partition {part}: {'would drop' if report.dry_run else 'dropped'}")
        for t in report.tenants:
            self.stdout.write(
                f"{t.slug}: retentionDays={t.retention_days} cutoff={t.cutoff:%Y-%m-%dT%H:%M:%SZ} "
                f"{verb} events={t.events} enriched={t.enriched} dead_letters={t.dead_letters} "
                f"idempotency_keys={t.idempotency_keys}"
            )
