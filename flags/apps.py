"""AppConfig for flags."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_global_rows(sender, using="default", **_):
    """After migrate (and test flushes) every registered flag has its global row."""
    from flags.models import GlobalFlag
    from flags.registry import specs

    existing = set(GlobalFlag.objects.using(using).values_list("key", flat=True))
    missing = [GlobalFlag(key=key, value=None) for key in specs() if key not in existing]
    GlobalFlag.objects.using(using).bulk_create(missing, ignore_conflicts=True)


class FlagsConfig(AppConfig):
    """Runtime flags and the /config endpoint."""

    name = "flags"

    def ready(self):
        """Create missing global flag rows after every migrate."""
        post_migrate.connect(_ensure_global_rows, sender=self)
