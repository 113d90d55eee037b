"""Celery tasks of the flags app."""

from celery import shared_task
from django.core.cache import cache


@shared_task(name="flags.tasks.cache_delete", ignore_result=True)
def cache_delete(cache_key: str) -> None:
    """Delete a flags cache entry again, a moment after a change (see services._invalidate)."""
    cache.delete(cache_key)
