"""Test-only URLconf: a view that enqueues a task, to follow one rid from request to worker."""

from django.http import JsonResponse
from django.urls import include, path

from codex.tasks import ping


def enqueue_ping(request):
    """Enqueue codex.tasks.ping and answer."""
    ping.delay(note=request.GET.get("note", ""))
    return JsonResponse({"queued": True})


urlpatterns = [path("test/enqueue-ping", enqueue_ping), path("", include("codex.urls"))]
