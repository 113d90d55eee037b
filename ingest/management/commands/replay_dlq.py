"""`manage.py replay_dlq`: re-run enrichment for dead-lettered events and resolve them."""

from __future__ import annotations

from codex import error_codes as codes
from codex.commands import DomainCommand, cli_actor, moment_parse
from ingest import selectors
from ingest.services.replay import deadletter_replay
from tenants.selectors import tenant_get


class Command(DomainCommand):
    """Replay open dead-letter entries of one tenant, by id, or all of them (audited)."""

    help = (
        "Replay dead-lettered events: --tenant SLUG, --id N (repeatable), --since/--until "
        "(dead-lettered in that window, ISO 8601, UTC unless an offset is given) and/or --all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="only this tenant's entries (slug)")
        parser.add_argument("--id", type=int, action="append", dest="ids", help="entry id")
        parser.add_argument(
            "--all", action="store_true", dest="replay_all", help="every open entry, all tenants"
        )
        parser.add_argument(
            "--since", type=moment_parse, help="dead-lettered at or after this time (ISO 8601)"
        )
        parser.add_argument("--until", type=moment_parse, help="dead-lettered before this time")
        parser.add_argument(
            "--actor", help="name recorded in the audit log (default: cli:<os user>)"
        )

    def handle(self, *args, tenant=None, ids=None, replay_all=False, actor=None, **options):
        since, until = options.get("since"), options.get("until")
        window = since is not None or until is not None
        if not (tenant or ids or replay_all or window):
            raise codes.INVALID_ARGUMENTS.error(
                "say what to replay: --tenant SLUG, --id N, --since/--until or --all"
            )
        if replay_all and (tenant or ids or window):
            raise codes.INVALID_ARGUMENTS.error(
                "--all replays everything; do not combine it with other filters"
            )
        if since is not None and until is not None and since >= until:
            raise codes.INVALID_ARGUMENTS.error("--since must be before --until")
        # An unknown slug is an error (TenantNotFound), not "nothing to replay".
        tenant_id = tenant_get(slug=tenant).id if tenant else None
        entry_ids = selectors.deadletter_open_ids(
            tenant_id=tenant_id, ids=ids, since=since, until=until
        )
        if ids:
            missing = sorted(set(ids) - set(entry_ids))
            if missing:
                self.stderr.write(f"not open (or not found): {', '.join(map(str, missing))}")
        results = deadletter_replay(entry_ids=entry_ids, actor=actor or cli_actor())
        for r in results:
            line = f"entry {r.entry_id} (event {r.event_id}, tenant {r.tenant_id}): {r.outcome}"
            self.stdout.write(line + (f" ({r.error})" if r.error else ""))
        resolved = sum(1 for r in results if r.outcome == "resolved")
        self.stdout.write(
            f"replayed {len(results)}: {resolved} resolved, {len(results) - resolved} failed"
        )
        if len(results) != resolved:
            raise codes.REPLAY_FAILED.error("some entries failed again; they stay open")
