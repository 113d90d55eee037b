"""Platform-level Celery tasks."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="codex.tasks.ping", acks_late=True)
def ping(note: str = "") -> str:
    """Log one line and answer: used by readiness drills and the request-id propagation test."""
    logger.info("ping", extra={"note": note})
    return "pong"
