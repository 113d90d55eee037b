"""AppConfig for ingest."""

from django.apps import AppConfig


class IngestConfig(AppConfig):
    """Signed event ingest, enrichment and the dead-letter queue."""

    name = "ingest"
