"""`manage.py tenant_offboard TENANT --confirm SLUG`: revoke, delete all data, keep a tombstone."""

from __future__ import annotations

from codex import error_codes as codes
from codex.commands import DomainCommand, cli_actor
from ingest.services.offboard import tenant_offboard
from tenants.selectors import tenant_get


class Command(DomainCommand):
    help = (
        "Offboard a tenant: suspend it, revoke every signing key, disable every webhook source, "
        "wipe their secrets and API keys, delete all its events and other data in batches (and "
        "again once CODEX_OFFBOARD_FENCE_S have passed: the key cache's TTL plus three "
        "statement timeouts plus 2 s), keep the tenant row (status offboarded) with its audit "
        "trail. Final: it is never resumed, re-provisioned or given keys or sources again; "
        "--confirm must repeat the slug. Resumable: after a crash, run it again."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", metavar="TENANT", help="tenant slug")
        parser.add_argument("--confirm", required=True, metavar="SLUG", help="the slug again")
        parser.add_argument(
            "--batch",
            type=int,
            help="rows per delete statement (default: each table's own, 5000)",
        )

    def handle(self, *args, **options):
        slug = options["tenant"]
        if options["confirm"] != slug:
            raise codes.INVALID_ARGUMENTS.error(
                f"--confirm must repeat the tenant's slug exactly ({slug!r}); nothing was changed"
            )
        if options["batch"] is not None and options["batch"] < 1:
            raise codes.INVALID_ARGUMENTS.error("--batch must be at least 1")
        tenant = tenant_get(slug=slug)
        report = tenant_offboard(tenant=tenant, actor=cli_actor(), limit=options["batch"])
        if report.already_done:
            self.stdout.write(f"{slug}: already offboarded; nothing to do")
            return
        deleted = " ".join(f"{t}={n}" for t, n in sorted(report.deleted.items()) if n)
        self.stdout.write(
            f"{slug}: offboarded; keys_revoked={report.keys_revoked} "
            f"sources_disabled={report.sources_disabled} secrets_wiped={report.secrets_wiped} "
            f"deleted: {deleted or 'nothing'} (after the fence: {report.late})"
        )
