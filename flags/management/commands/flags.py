"""`manage.py flags show|set|unset`: runtime flags for operators and runbooks (no admin needed)."""

from __future__ import annotations

import json

from django.core.management.base import CommandParser

from codex import error_codes as codes
from codex.commands import DomainCommand, cli_actor
from flags.models import FlagChange
from flags.registry import history_text, spec_for, specs, value_text
from flags.selectors import flags_explain
from flags.services import flag_update, flags_parse
from tenants.models import Tenant
from tenants.selectors import tenant_get


class Command(DomainCommand):
    """Show, set and unset runtime flags through flags.services (history + cache invalidation)."""

    help = (
        "Runtime flags. Examples: flags show --tenant t1; "
        "flags set --tenant t1 syncEnabled=false minIntervalSec=60; "
        "flags set --global retryCap=5; flags unset --tenant t1 syncEnabled"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{show,set,unset}")
        show = sub.add_parser("show", help="effective values and where each comes from")
        show.add_argument("--tenant", metavar="SLUG", help="a tenant (default: global values)")
        show.add_argument("--json", action="store_true", help="machine-readable output")

        put = sub.add_parser("set", help="set flags: key=value [key=value ...]")
        where = put.add_mutually_exclusive_group(required=True)
        where.add_argument("--tenant", metavar="SLUG", help="override for one tenant")
        where.add_argument("--global", dest="is_global", action="store_true", help="global value")
        put.add_argument("pairs", nargs="+", metavar="key=value")
        put.add_argument("--reason", default="", help="why (kept in the change history)")

        unset = sub.add_parser("unset", help="remove overrides (the tenant follows the global)")
        where = unset.add_mutually_exclusive_group(required=True)
        where.add_argument("--tenant", metavar="SLUG", help="the tenant whose override goes")
        where.add_argument(
            "--global", dest="is_global", action="store_true", help="back to built-in default"
        )
        unset.add_argument("keys", nargs="+", metavar="key")
        unset.add_argument("--reason", default="", help="why (kept in the change history)")

    def handle(self, *args, **options):
        # stdout carries the answer (e.g. --json for scripts); DomainCommand sends logs to stderr.
        return getattr(self, f"_{options['action']}")(options)

    def _tenant(self, slug: str | None) -> Tenant | None:
        return tenant_get(slug=slug) if slug is not None else None

    def _show(self, options) -> None:
        tenant = self._tenant(options["tenant"])
        explained = flags_explain(tenant_id=tenant.pk if tenant else None)
        if options["json"]:
            doc = {
                "tenant": tenant.slug if tenant else None,
                "flags": {
                    key: {"value": e.value, "source": e.source, "global": e.global_value}
                    for key, e in explained.items()
                },
            }
            self.stdout.write(json.dumps(doc, indent=2))
            return
        self.stdout.write(f"flags for {'tenant ' + tenant.slug if tenant else 'global'}:")
        for key, e in explained.items():
            spec = specs()[key]
            note = "" if spec.public else "  [server only]"
            self.stdout.write(f"  {key:<18} {value_text(e.value):<8} ({e.source}){note}")

    def _set(self, options) -> None:
        tenant = self._tenant(options["tenant"])
        pairs: dict[str, str] = {}
        for pair in options["pairs"]:
            key, sep, text = pair.partition("=")
            if not sep or not key:
                raise codes.INVALID_ARGUMENTS.error(f"expected key=value, got {pair!r}")
            pairs[key.strip()] = text
        values = flags_parse(pairs)
        self._apply(tenant, values, options["reason"])

    def _unset(self, options) -> None:
        tenant = self._tenant(options["tenant"])
        for key in options["keys"]:
            spec_for(key)  # unknown keys fail loudly
        self._apply(tenant, dict.fromkeys(options["keys"]), options["reason"])

    def _apply(self, tenant: Tenant | None, values: dict, reason: str) -> None:
        changes = flag_update(
            tenant_id=tenant.pk if tenant else None,
            values=values,
            actor=cli_actor(),
            via=FlagChange.Via.CLI,
            reason=reason,
        )
        where = f"tenant {tenant.slug}" if tenant else "global"
        if not changes:
            self.stdout.write(f"{where}: nothing to change")
        for c in changes:
            old = history_text(c.old, c.old_effective, tenant=tenant is not None)
            new = history_text(c.new, c.new_effective, tenant=tenant is not None)
            self.stdout.write(f"{where}: {c.key} {old} -> {new}")
        self._show({"tenant": tenant.slug if tenant else None, "json": False})
