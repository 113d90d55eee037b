"""AppConfig for the project package (it ships the owner-mode migrate/flush commands)."""

from django.apps import AppConfig


class CodexConfig(AppConfig):
    """Project-level app."""

    name = "codex"
    verbose_name = "Codex platform"

    def ready(self) -> None:
        """Export codex_build_info from every process (web and Celery), not only the web's."""
        from codex import metrics  # noqa: F401  (sets codex_build_info at import)
