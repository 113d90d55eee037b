"""`source_enable SOURCE_ID`: a disabled source accepts deliveries again."""

from __future__ import annotations

from tenants.management.commands import source_disable


class Command(source_disable.Command):
    """source_disable's edge, enabling."""

    help = "Enable a webhook source again (audited)."
    enabled = True
