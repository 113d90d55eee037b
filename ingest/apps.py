"""AppConfig for ingest."""

from django.apps import AppConfig


class IngestConfig(AppConfig):
    """Signed event ingest, enrichment and the dead-letter queue."""

    name = "ingest"

    def ready(self) -> None:
        """What offboarding and erasure delete from its tables (ingest/deletions.py)."""
        from ingest import deletions

        deletions.register()
