"""`manage.py events_erase TENANT --subject ID [--before DATE]`: erase one subject's events."""

from __future__ import annotations

from datetime import UTC, datetime

from codex import error_codes as codes
from codex.commands import DomainCommand, cli_actor
from ingest.services.erasure import events_erase
from tenants.selectors import tenant_get


def _day(text: str) -> datetime:
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise codes.INVALID_ARGUMENTS.error(
            f"--before must be a date YYYY-MM-DD, not {text!r}"
        ) from None
    return day.replace(tzinfo=UTC)


class Command(DomainCommand):
    help = (
        "Delete the events of one subject (subject_id) of a tenant, with their enriched rows, "
        "dead letters and the subject's ingestion warnings; --before DATE: only what was received "
        "before that UTC day. Audited with counts and a keyed digest of the subject id, never the "
        "id or the data."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", metavar="TENANT", help="tenant slug")
        parser.add_argument("--subject", required=True, metavar="ID", help="the subject_id")
        parser.add_argument("--before", metavar="DATE", help="YYYY-MM-DD (UTC), exclusive")

    def handle(self, *args, **options):
        subject = options["subject"]
        if not 1 <= len(subject) <= 255 or "\x00" in subject:
            raise codes.INVALID_SUBJECT.error("--subject must be 1 to 255 characters")
        before = _day(options["before"]) if options["before"] else None
        tenant = tenant_get(slug=options["tenant"])
        result = events_erase(
            tenant_id=tenant.id, subject_id=subject, before=before, actor=cli_actor()
        )
        self.stdout.write(
            f"{tenant.slug}: erased events={result.events} enriched={result.enriched} "
            f"dead_letters={result.dead_letters} warnings={result.warnings}"
        )
