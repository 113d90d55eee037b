"""Codex Ingest project package: settings, URLs, Celery app, health, errors and logging context."""

from codex.celery import app as celery_app

__all__ = ["celery_app"]
