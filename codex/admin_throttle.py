"""Admin login throttle: per client address, per username there and per username, in Redis.

Every login POST first takes one attempt from three counters in one Lua call: its client
address's (codex.http.client_address: behind CODEX_TRUSTED_PROXIES, the address the proxy saw,
so operators behind one TLS proxy no longer share a count; an IPv6 client's /64), its username's
from that address (case-folded) and its username's from anywhere. The first two allow LIMIT
attempts in WINDOW_S; the username's own count allows USERNAME_LIMIT, so a distributed guesser
is bounded while a stranger's few bad passwords cannot lock an operator out of the login page.
The check is on the incremented values, so concurrent guesses cannot all pass a check before any
of them is counted. Over any limit, the attempt is handed back and refused with 429 on the
admin's own login page, before any password is checked. A successful login hands its attempt
back too: successes neither count nor reset anyone's failures. Redis errors fail open with a
warning; the password check stays.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import logging
import math
import unicodedata

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from redis.exceptions import RedisError

from codex.cache import redis_client
from codex.http import client_address

logger = logging.getLogger(__name__)
LIMIT = 5  # login attempts that may fail per client address, and per username there
USERNAME_LIMIT = 50  # per username from every address together (a distributed guesser)
WINDOW_S = 300  # a fixed window from the first attempt

# KEYS: the address, the username-at-address and the username counters; ARGV: the window, then
# each key's limit. Returns {over, ttl}: over is 0 when the attempt may go ahead (it is then
# counted), else a bit per counter over its limit (1 address, 2 username there, 4 username) with
# the seconds left of the longest window; a refused attempt is handed back.
_TAKE_LUA = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[1]) end
end
local over, ttl, bit = 0, 0, 1
for i, key in ipairs(KEYS) do
  if counts[i] > tonumber(ARGV[i + 1]) then
    over = over + bit
    ttl = math.max(ttl, redis.call('TTL', key))
  end
  bit = bit * 2
end
if over > 0 then
  for _, key in ipairs(KEYS) do redis.call('DECR', key) end
end
return {over, ttl}
"""
# Hand back one attempt (a successful login), never creating a key or going below zero.
_GIVE_BACK_LUA = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 and redis.call('DECR', key) <= 0 then
    redis.call('DEL', key)
  end
end
return 0
"""
_scripts: dict[tuple[int, str], object] = {}
# What a refusal names, the broadest count first (over: a bit per counter over its limit).
_OVER = (
    (4, "for this username"),
    (1, "from this address"),
    (2, "for this username from this address"),
)


def username_key(username: str) -> str:
    """The username as it is counted: NFKC, trimmed and case-folded, then hashed.

    Hashed so that whatever was typed into the field (a password, now and then) is never a
    Redis key.
    """
    folded = unicodedata.normalize("NFKC", username).strip().casefold()
    return hashlib.sha256(folded.encode()).hexdigest()[:32]


def address_key(address: str) -> str:
    """The address as it is counted: itself, or an IPv6 client's /64 (one host's usual share)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


def _counter_keys(request) -> list[str]:
    address = address_key(client_address(request))
    user = username_key(request.POST.get("username", ""))
    return [
        cache.make_key(f"admin-login:addr:{address}"),
        cache.make_key(f"admin-login:user-at:{user}:{address}"),
        cache.make_key(f"admin-login:user:{user}"),
    ]


def _over_text(over: int) -> str:
    return next(text for bit, text in _OVER if over & bit)


def _checks_a_password(request) -> bool:
    """Whether the login form will check a password: it needs a username and a password.

    A form without them guesses nothing, so it is neither counted nor refused (the username is
    trimmed here as the form trims it).
    """
    return bool(request.POST.get("username", "").strip() and request.POST.get("password"))


def _run(source: str, keys: list[str], args: list[int]):
    client = redis_client(cache, keys[0])
    script = _scripts.get((id(client), source))
    if script is None:
        script = _scripts[(id(client), source)] = client.register_script(source)
    return script(keys=keys, args=args)


class _RefusedForm(AdminAuthenticationForm):
    """The admin's login form, unbound, with the throttle's message where its errors go."""

    def __init__(self, request, *, message: str, username: str):
        super().__init__(request, initial={"username": username})
        self.message = message

    def non_field_errors(self):
        return self.error_class([self.message], error_class="nonfield", renderer=self.renderer)


def _refused(request, extra_context, *, over: int, retry_after: int):
    minutes = max(1, math.ceil(retry_after / 60))
    message = (
        f"Too many failed logins {_over_text(over)}. "
        f"Try again in {minutes} minute{'' if minutes == 1 else 's'}."
    )
    logger.warning(
        "admin login refused: too many failed logins",
        extra={"clientAddress": client_address(request), "limitedBy": _over_text(over)},
    )
    form = _RefusedForm(request, message=message, username=request.POST.get("username", ""))
    # The page as the admin renders its empty form (a GET): nothing validated, no password checked.
    page = copy.copy(request)
    page.method = "GET"
    response = admin.site.login(page, {**(extra_context or {}), "form": form})
    if response.status_code == 200:  # not the redirect an already signed-in operator gets
        response.status_code = 429
        response["Retry-After"] = str(retry_after)
    return response


def throttled_login(request, extra_context=None):
    """admin.site.login, refused with 429 (the login page, a message) while over either limit."""
    if request.method != "POST" or not _checks_a_password(request):
        return admin.site.login(request, extra_context)
    keys = _counter_keys(request)
    try:
        over, ttl = _run(_TAKE_LUA, keys, [WINDOW_S, LIMIT, LIMIT, USERNAME_LIMIT])
    except (RedisError, OSError) as exc:  # the throttle fails open; the password check stays
        logger.warning("admin login throttle unavailable", exc_info=exc)
        return admin.site.login(request, extra_context)
    if over:
        return _refused(request, extra_context, over=int(over), retry_after=max(1, int(ttl)))
    response = admin.site.login(request, extra_context)
    if response.status_code == 302:  # LoginView redirects a POST only once it logged the user in
        try:
            _run(_GIVE_BACK_LUA, keys, [])
        except (RedisError, OSError) as exc:
            logger.warning("admin login throttle unavailable", exc_info=exc)
    return response
