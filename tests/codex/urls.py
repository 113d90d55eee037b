"""Test-only URLconf: a view that enqueues a task, to follow one rid from request to worker."""

from django.http import JsonResponse
from django.urls import include, path

from codex import context
from codex.tasks import ping


def enqueue_ping(request):
    """Enqueue codex.tasks.ping (as a tenant's request would, once its tenant is known)."""
    if request.GET.get("tenant"):
        context.bind_tenant(request.GET["tenant"])
    ping.delay(note=request.GET.get("note", ""))
    return JsonResponse({"queued": True})


urlpatterns = [path("test/enqueue-ping", enqueue_ping), path("", include("codex.urls"))]
