"""Test-only URLconf: a view enqueuing a task (one rid, request to worker), a view that raises."""

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


def boom(request):
    """A view that raises: Django's handler must still answer (and count) a 500."""
    raise RuntimeError("boom")


urlpatterns = [
    path("test/enqueue-ping", enqueue_ping),
    path("test/boom", boom),
    path("", include("codex.urls")),
]
