"""AppConfig for reconcile."""

from django.apps import AppConfig


class ReconcileConfig(AppConfig):
    """Nightly reconciliation and drift health."""

    name = "reconcile"
