"""Admin login throttle: after repeated failures from one address, login attempts get 429.

django-ratelimit counts failed logins (Django's user_login_failed signal) per client IP in the
Redis cache; while an address is over LOGIN_FAILURES in the window, its login POSTs are refused
before any password is checked, so guessing costs the attacker the window, not us a hash.
"""

from __future__ import annotations

import logging

from django.contrib import admin
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpResponse
from django_ratelimit import ALL
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
GROUP = "admin-login-failures"
LOGIN_FAILURES = "5/5m"  # failed attempts per client address and 5-minute window


def _usage(request, *, increment: bool) -> dict | None:
    try:
        return get_usage(
            request, group=GROUP, key="ip", rate=LOGIN_FAILURES, method=ALL, increment=increment
        )
    except (RedisError, OSError) as exc:  # the throttle fails open; the password check stays
        logger.warning("admin login throttle unavailable", exc_info=exc)
        return None


@receiver(user_login_failed)
def _count_failure(sender, credentials=None, request=None, **kwargs) -> None:
    """Count a failed admin login against the client's address."""
    if request is not None and request.path.startswith("/admin/"):
        _usage(request, increment=True)


def throttled_login(request, extra_context=None):
    """admin.site.login, refused with 429 while the address is over its failures."""
    if request.method == "POST":
        usage = _usage(request, increment=False)
        if usage and usage["count"] >= usage["limit"]:
            retry = str(max(1, int(usage["time_left"])))
            response = HttpResponse(
                "Too many failed logins from this address; try again later.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = retry
            return response
    return admin.site.login(request, extra_context)
