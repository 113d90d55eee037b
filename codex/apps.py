"""AppConfig for the project package (it ships the owner-mode migrate/flush commands)."""

from django.apps import AppConfig


class CodexConfig(AppConfig):
    """Project-level app."""

    name = "codex"
    verbose_name = "Codex platform"
