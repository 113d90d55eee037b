"""The runtime flags that exist, their types, bounds and defaults, and how values are validated."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from codex import error_codes as codes
from codex.errors import DomainError

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class FlagValueError(DomainError):
    """A flag key or value that is not allowed; the message is safe to show to an operator."""

    def __init__(self, key: str, message: str):
        super().__init__(codes.INVALID_FLAG, f"{key}: {message}")
        self.key = key
        self.reason = message


# allowedOrigins: browser origins (scheme://host[:port], lower case, no path), at most this many.
ORIGINS_MAX = 20
_ORIGIN_RE = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:]+\](:[0-9]{1,5})?")

# retentionDays bounds: at least a week (the nightly reconcile and a replay need the recent days),
# at most ten years.
RETENTION_MIN_DAYS = 7
RETENTION_MAX_DAYS = 3650


@dataclass(frozen=True)
class FlagSpec:
    """One flag: JSON name, Python type, bounds, default, whether /config publishes it."""

    key: str
    type: type
    default: object
    minimum: int | None = None
    maximum: int | None = None
    public: bool = True
    help: str = ""

    def bounds_text(self) -> str:
        """Human-readable allowed values ('true or false', 'an integer from 5 to 86400')."""
        if self.type is bool:
            return "true or false"
        if self.type is list:
            return f"a comma-separated list of up to {ORIGINS_MAX} origins (https://host[:port])"
        return f"an integer from {self.minimum} to {self.maximum}"

    def validate(self, value: object) -> object:
        """Return `value` if it is allowed for this flag, else raise FlagValueError."""
        if self.type is bool:
            if not isinstance(value, bool):
                raise FlagValueError(self.key, f"must be true or false, not {value!r}")
            return value
        if self.type is list:
            if not isinstance(value, list) or len(value) > ORIGINS_MAX:
                raise FlagValueError(self.key, f"must be {self.bounds_text()}, not {value!r}")
            for item in value:
                if not isinstance(item, str) or not _ORIGIN_RE.fullmatch(item):
                    raise FlagValueError(
                        self.key, f"{item!r} is not an origin (scheme://host[:port], lower case)"
                    )
            return value
        # bool is an int subclass in Python; True is never a valid interval.
        if not isinstance(value, int) or isinstance(value, bool):
            raise FlagValueError(self.key, f"must be {self.bounds_text()}, not {value!r}")
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise FlagValueError(self.key, f"must be {self.bounds_text()}, not {value}")
        return value

    def parse(self, text: str) -> object:
        """Parse an operator's text (CLI, admin form) into a validated value."""
        raw = text.strip()
        if self.type is bool:
            lowered = raw.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise FlagValueError(self.key, f"must be true or false, not {raw!r}")
        if self.type is list:
            items = [part.strip().lower().rstrip("/") for part in re.split(r"[,\s]+", raw)]
            return self.validate(list(dict.fromkeys(item for item in items if item)))
        try:
            number = int(raw, 10)
        except ValueError:
            raise FlagValueError(self.key, f"must be {self.bounds_text()}, not {raw!r}") from None
        return self.validate(number)


def specs() -> dict[str, FlagSpec]:
    """All flags by key (defaults that depend on settings are read here)."""
    return {
        "syncEnabled": FlagSpec(
            "syncEnabled",
            bool,
            True,
            help="SDK background sync runs; false pauses it live on every device.",
        ),
        "minIntervalSec": FlagSpec(
            "minIntervalSec",
            int,
            900,
            5,
            86400,
            help="Seconds the SDK waits between background syncs.",
        ),
        "retryCap": FlagSpec(
            "retryCap",
            int,
            settings.CODEX_RETRY_CAP,
            0,
            10,
            help="Retries of a failed batch (SDK) and of a failed enrichment (server).",
        ),
        "allowedOrigins": FlagSpec(
            "allowedOrigins",
            list,
            [],
            public=False,
            help="Browser origins (https://host[:port]) whose pages may call /v1/events, /config "
            "and the event lookup with this tenant's keys (CORS); empty: none.",
        ),
        "ingestRatePerSec": FlagSpec(
            "ingestRatePerSec",
            int,
            settings.CODEX_INGEST_RATE_PER_SEC,
            1,
            100000,
            public=False,
            help="Requests per second a tenant may send to POST /v1/events.",
        ),
        "sourceRatePerSec": FlagSpec(
            "sourceRatePerSec",
            int,
            settings.CODEX_SOURCE_RATE_PER_SEC,
            1,
            100000,
            public=False,
            help="Deliveries per second each of the tenant's webhook sources may make "
            "(within ingestRatePerSec).",
        ),
        "lookupRatePerSec": FlagSpec(
            "lookupRatePerSec",
            int,
            settings.CODEX_LOOKUP_RATE_PER_SEC,
            1,
            100000,
            public=False,
            help="Requests per second each signing key of the tenant may make to "
            "GET /v1/events/<key>.",
        ),
        "configRatePerSec": FlagSpec(
            "configRatePerSec",
            int,
            settings.CODEX_CONFIG_RATE_PER_SEC,
            1,
            100000,
            public=False,
            help="Requests per second each signing key of the tenant may make to GET /config.",
        ),
        "retentionDays": FlagSpec(
            "retentionDays",
            int,
            settings.CODEX_RETENTION_DAYS,
            RETENTION_MIN_DAYS,
            RETENTION_MAX_DAYS,
            public=False,
            help="Days a tenant's events (and enriched rows, resolved dead letters) are kept; "
            "retention_enforce removes older ones nightly.",
        ),
        "reconcileAutoRepair": FlagSpec(
            "reconcileAutoRepair",
            bool,
            False,
            public=False,
            help="The nightly reconcile also repairs what it finds pending (re-enriches events "
            "missing from events_enriched, audited), as `reconcile --repair` does.",
        ),
        "signatureV1Allowed": FlagSpec(
            "signatureV1Allowed",
            bool,
            True,
            public=False,
            help="POST /v1/events still accepts v1 signatures (body only; counted in "
            "codex_auth_signature_v1_total); false: v2 (the whole request) only.",
        ),
    }


def spec_for(key: str) -> FlagSpec:
    """The spec of `key`, or FlagValueError naming the flags that exist."""
    try:
        return specs()[key]
    except KeyError:
        known = ", ".join(specs())
        raise FlagValueError(key, f"unknown flag (known flags: {known})") from None


def defaults() -> dict[str, object]:
    """The built-in default of every flag."""
    return {key: spec.default for key, spec in specs().items()}


def public_keys() -> tuple[str, ...]:
    """The keys GET /config publishes, in their documented order."""
    return tuple(key for key, spec in specs().items() if spec.public)


def history_text(stored: object, effective: object, *, tenant: bool) -> str:
    """One side of a history entry's old -> new, as operators read it (admin, CLI).

    A stored value is shown as is; an unset level shows what was in force through it, e.g.
    "(inherit: true)" for a tenant or "(default: 900)" globally ("(inherit)" alone in rows
    recorded before effective values were).
    """
    if stored is None:
        if effective is None:
            return "(inherit)"
        return f"({'inherit' if tenant else 'default'}: {value_text(effective)})"
    return value_text(stored)


def value_text(value: object) -> str:
    """A flag value as operators read and type it: true/false for booleans, else str()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "(none)"
    return str(value)
