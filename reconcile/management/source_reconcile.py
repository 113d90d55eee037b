"""`reconcile --source stripe --tenant SLUG [--date DAY] [--repair]`: the source half of it."""

from __future__ import annotations

from codex.commands import cli_actor
from reconcile.stripe_source import source_reconcile_stripe


def reconcile_source(command, *, tenant_id, day, repair: bool, types: str) -> None:
    """Run the Stripe adapter for the tenant's day and print one line per source.

    Its DomainErrors (stripe_failed, secret_undecryptable, ...) become the command's CommandError
    in codex.commands.DomainCommand.
    """
    results = source_reconcile_stripe(
        tenant_id=tenant_id,
        day=day,
        repair=repair,
        actor=cli_actor(),
        types=[t for t in types.split(",") if t] or None,
    )
    for r in results:
        line = (
            f"source {r.source_id} (stripe) {r.day.isoformat()}: at_source={r.at_source} "
            f"missing_at_ingest={len(r.missing)}"
        )
        if repair:
            line += f" repaired={r.repaired}"
        command.stdout.write(line)
        if r.missing and not repair:
            shown = ", ".join(r.missing[:20])
            more = f" (+{len(r.missing) - 20} more)" if len(r.missing) > 20 else ""
            command.stdout.write(f"  missing: {shown}{more}; run again with --repair to ingest")
        for event_id, why in r.unrepairable.items():
            command.stderr.write(f"  not repairable: {event_id}: {why}")
