"""AppConfig for reconcile."""

from django.apps import AppConfig


class ReconcileConfig(AppConfig):
    """Nightly reconciliation and drift health."""

    name = "reconcile"

    def ready(self) -> None:
        """What offboarding and erasure delete from its tables (reconcile/deletions.py)."""
        from reconcile import deletions

        deletions.register()
