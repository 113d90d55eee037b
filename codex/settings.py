"""Django settings, read from the environment through codex.env (see docs/configuration.md)."""

from __future__ import annotations

import os
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from codex import env as envreader
from codex.build import BUILD
from codex.db.pooling import database_settings
from codex.logconfig import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
ENV = envreader.read()
CODEX_ENV = ENV.name
DEBUG = CODEX_ENV == "development" and envreader.enabled("DJANGO_DEBUG", False)
VERSION = BUILD.version  # codex/build.py: the one place /healthz and codex_build_info read

# --- secrets -------------------------------------------------------------------------------
if ENV.deployed:
    SECRET_KEY = ENV.secret_key
    CODEX_SECRETS_KEY = ENV.secrets_key
else:
    from codex.devsecrets import dev_secret

    SECRET_KEY = ENV.secret_key or dev_secret("django-secret-key")
    CODEX_SECRETS_KEY = ENV.secrets_key or dev_secret("codex-secrets-key", fernet=True)

ALLOWED_HOSTS = ENV.allowed_hosts
# Reverse proxies whose X-Forwarded-For is believed (IPs/CIDRs; none by default: REMOTE_ADDR is
# the client). codex.http.client_address is the one reader; a bad entry refuses to start.
CODEX_TRUSTED_PROXIES = envreader.networks("CODEX_TRUSTED_PROXIES")
# /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` when set (required when deployed:
# it lists every tenant's slug and the traffic of each).
METRICS_TOKEN = envreader.text("METRICS_TOKEN")
# Prometheus's HTTP API, read by `manage.py slo_report` (docs/observability.md "SLO report").
PROMETHEUS_URL = envreader.text("PROMETHEUS_URL")
PROMETHEUS_TIMEOUT_S = envreader.number("PROMETHEUS_TIMEOUT_S", 10.0)
CODEX_PUBLIC_URL = ENV.public_base_url

# --- services ------------------------------------------------------------------------------
if ENV.deployed or ENV.database_url:
    DATABASE_URL = ENV.database_url
else:
    from codex import embedded

    DATABASE_URL = embedded.postgres_url()
if ENV.deployed or ENV.redis_url:
    REDIS_URL = ENV.redis_url
else:
    from codex import embedded

    REDIS_URL = embedded.redis_url()
if not DATABASE_URL or not REDIS_URL:
    raise ImproperlyConfigured("DATABASE_URL and REDIS_URL are required")

CODEX_DB_APP_ROLE = envreader.text("CODEX_DB_APP_ROLE", "codex_app")
# Behind a transaction-pooling PgBouncer: CODEX_DB_POOL_MODE=transaction, DATABASE_URL logs in as
# the app role, DATABASE_OWNER_URL is the owner for migrations (codex/db/pooling.py).
_OWNER_URL = envreader.text("DATABASE_OWNER_URL")
DATABASES = {
    "default": database_settings(
        envreader.database_config(DATABASE_URL),
        app_role=CODEX_DB_APP_ROLE,
        pool_mode=envreader.text("CODEX_DB_POOL_MODE", "session"),
        owner=envreader.database_config(_OWNER_URL) if _OWNER_URL else None,
    )
}
# Per statement and per lock wait, for the app role (docs/reliability.md): well under gunicorn's
# 30 s timeout and the 10 s the contract promises for a 503; 0 turns one off.
DATABASES["default"]["TIME_LIMITS_MS"] = {
    "statement_timeout": envreader.integer("CODEX_DB_STATEMENT_TIMEOUT_MS", 5000),
    "lock_timeout": envreader.integer("CODEX_DB_LOCK_TIMEOUT_MS", 3000),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "codex.cache.ReusingRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": envreader.text("CODEX_CACHE_PREFIX", "codex"),
        "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    }
}
# Redis through Sentinel (docs/ha.md): host:port of each Sentinel and the master's name; REDIS_URL
# then gives only the password and database number. The cache (and the rate limiter on it), the
# broker and /readyz ask the Sentinels where the master is after every connection error.
REDIS_SENTINELS = envreader.host_ports("REDIS_SENTINELS")
REDIS_SENTINEL_MASTER = envreader.text("REDIS_SENTINEL_MASTER", "mymaster")
REDIS_SENTINEL_PASSWORD = envreader.text("REDIS_SENTINEL_PASSWORD")
_SENTINEL_AUTH = {"password": REDIS_SENTINEL_PASSWORD} if REDIS_SENTINEL_PASSWORD else {}
if REDIS_SENTINELS:
    CACHES["default"]["OPTIONS"].update(
        pool_class="codex.sentinel.SentinelPool",
        sentinels=REDIS_SENTINELS,
        service_name=REDIS_SENTINEL_MASTER,
        sentinel_kwargs=_SENTINEL_AUTH,
    )

# --- apps ----------------------------------------------------------------------------------
INSTALLED_APPS = [
    "codex",  # first: its migrate/flush commands wrap Django's in owner mode
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files served from here: no CDN
    "django_prometheus",
    "tenants",
    "ingest",
    "flags",
    "reconcile",
]

MIDDLEWARE = [
    "codex.middleware.RequestContextMiddleware",
    # CORS preflights and headers on the signed endpoints (allowedOrigins flag; ingest/cors.py).
    "ingest.cors.SignedEndpointsCorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # the admin's CSS/JS under gunicorn
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tenants.middleware.AdminSystemScopeMiddleware",
]

ROOT_URLCONF = "codex.urls"
WSGI_APPLICATION = "codex.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# Filled by collectstatic (make run, the Dockerfile, the production steps in the README).
STATIC_ROOT = envreader.path("CODEX_STATIC_ROOT", BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if CODEX_ENV == "test":
    # Tests serve static files from the finders (live_server does): no collectstatic, no WhiteNoise.
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    MIDDLEWARE.remove("whitenoise.middleware.WhiteNoiseMiddleware")
CSRF_FAILURE_VIEW = "codex.errors.csrf_failure"
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

if CODEX_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if ENV.deployed:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = envreader.enabled("CODEX_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = [f"https://{h}" for h in ALLOWED_HOSTS if not h.startswith(".")]

# --- DRF -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "codex.errors.api_exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# --- OpenAPI (ingest/openapi.py; checked in as docs/openapi.yaml) ---------------------------
# In staging and production /api/schema/ and /api/docs/ answer logged-in staff only, unless this
# is on ("1" or "true"); elsewhere they are public (ingest/schema_views.py).
CODEX_PUBLIC_API_DOCS = (envreader.text("CODEX_PUBLIC_API_DOCS") or "").lower() in {"1", "true"}
SPECTACULAR_SETTINGS = {
    "TITLE": "Codex Ingest API",
    "DESCRIPTION": (
        "Signed event ingest for store devices and systems. Every request is signed "
        "(Standard Webhooks + X-Codex-Key-Id); every error is "
        '{"error": {"code", "message", "rid"}}. Guide: docs/api.md.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "PREPROCESSING_HOOKS": ["ingest.openapi_hooks.add_events_endpoint"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "ingest.openapi.close_objects",
        "ingest.openapi_hooks.require_request_bodies",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    "ENUM_NAME_OVERRIDES": {
        "ItemErrorCodeEnum": ["invalid_event", "idempotency_key_reused"],
        "EventStatusEnum": "ingest.lookup.STATUSES",
    },
}

# --- Celery --------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL.replace("unix://", "redis+socket://", 1)
# Every task has time limits (soft: SoftTimeLimitExceeded to clean up; hard: the child is
# killed); tasks set tighter ones where they know their budget (ingest.tasks).
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 330
CELERY_TASK_ACKS_LATE = True  # tasks are idempotent: a crash mid-task means a redelivery
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep our JSON logging in the worker
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Short socket timeouts: a hung broker must not stall a request's enqueue (the sweeper recovers).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_timeout": 2,
    "socket_connect_timeout": 1,
}
if REDIS_SENTINELS:
    from codex.sentinel import broker_url, use_broker_transport

    use_broker_transport()  # kombu's, surviving a failover (codex/sentinel.py)
    CELERY_BROKER_URL = broker_url(REDIS_URL, REDIS_SENTINELS)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        master_name=REDIS_SENTINEL_MASTER,
        sentinel_kwargs={"socket_timeout": 1, "socket_connect_timeout": 1, **_SENTINEL_AUTH},
    )
CELERY_TASK_DEFAULT_QUEUE = envreader.text("CODEX_CELERY_QUEUE", "codex")
if CODEX_ENV == "test":
    # A test run never shares a queue or cache keys with `make run` or another test run.
    CELERY_TASK_DEFAULT_QUEUE = f"codex-test-{os.getpid()}"
    # A server a test starts may be given the test's prefix to share Redis state with it.
    CACHES["default"]["KEY_PREFIX"] = (
        envreader.text("CODEX_TEST_CACHE_PREFIX") or f"codex-test-{os.getpid()}"
    )
CELERY_TIMEZONE = "UTC"
# beat keeps its schedule state under the data directory, never in the checkout's root.
DATA_DIR = envreader.path("CODEX_DATA_DIR", BASE_DIR / ".data")
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# The shelve scheduler that creates that directory first (a fresh checkout has no .data/).
CELERY_BEAT_SCHEDULER = "codex.celery:DataDirScheduler"
# The one beat schedule. Each entry: why it exists, and an expiry so a backlog never piles up.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Accepted events whose enqueue was lost (Redis or worker down) get enriched when they return.
    "ingest-sweep-unenriched": {
        "task": "ingest.tasks.sweep_unenriched",
        "schedule": crontab(minute="*"),
        "options": {"expires": 55},
    },
    # Ingestion warnings are kept 7 days (CODEX_INGEST_WARNINGS_KEEP_DAYS): prune hourly.
    "ingest-warnings-prune": {
        "task": "ingest.tasks.warnings_prune",
        "schedule": crontab(minute=7),
        "options": {"expires": 3000},
    },
    # The ledger's month partitions exist 3 months ahead (ingest.partitions); daily, so a missed
    # run or two never leaves a month to the default partition.
    "ingest-partitions-ensure": {
        "task": "ingest.tasks.partitions_ensure",
        "schedule": crontab(hour=0, minute=30),
        "options": {"expires": 12 * 3600},
    },
    # Nightly retention: events, enriched rows and resolved dead letters older than each tenant's
    # retentionDays (ingest.services.retention); whole month partitions when no tenant needs them.
    "ingest-retention-nightly": {
        "task": "ingest.tasks.retention_enforce",
        "schedule": crontab(hour=3, minute=30),
        "options": {"expires": 6 * 3600},
    },
    # Nightly drift check: yesterday's (and today's so far) accepted events vs events_enriched per
    # tenant (reconcile.tasks). Not started within 6 h: dropped (`manage.py reconcile --date`).
    "reconcile-nightly": {
        "task": "reconcile.tasks.reconcile_nightly",
        "schedule": crontab(hour=2, minute=15),
        "options": {"expires": 6 * 3600},
    },
}

# --- observability -------------------------------------------------------------------------
# Services log to stdout; manage.py commands default to stderr (manage.py sets CODEX_LOG_STREAM),
# so what a command prints for people or scripts is never interleaved with log lines.
LOGGING = logging_config(
    level=envreader.text("LOG_LEVEL", "INFO"),
    stream="stderr" if envreader.text("CODEX_LOG_STREAM") == "stderr" else "stdout",
)
PROMETHEUS_EXPORT_MIGRATIONS = False

# --- product defaults (the flags app makes these editable at runtime) ----------------------
CODEX_INGEST_RATE_PER_SEC = envreader.integer("CODEX_INGEST_RATE_PER_SEC", 50)
CODEX_SOURCE_RATE_PER_SEC = envreader.integer("CODEX_SOURCE_RATE_PER_SEC", 25)
# Signed reads per signing key and second: GET /v1/events/<key> and GET /config (the flags
# lookupRatePerSec and configRatePerSec start from these; codex/throttle.py).
CODEX_LOOKUP_RATE_PER_SEC = envreader.integer("CODEX_LOOKUP_RATE_PER_SEC", 20)
CODEX_CONFIG_RATE_PER_SEC = envreader.integer("CODEX_CONFIG_RATE_PER_SEC", 10)
# Webhook source deliveries that may fail before their signature verifies, per second and per
# source id / per client address, before the rest are answered 429 without a lookup
# (ingest/webhooks/guard.py, docs/sources.md).
CODEX_SOURCE_UNVERIFIED_PER_SEC = envreader.integer("CODEX_SOURCE_UNVERIFIED_PER_SEC", 10)
CODEX_SOURCE_UNVERIFIED_PER_ADDRESS_PER_SEC = envreader.integer(
    "CODEX_SOURCE_UNVERIFIED_PER_ADDRESS_PER_SEC", 20
)
CODEX_RETRY_CAP = 3
# Ingestion warnings (ingest/ingest_warnings.py): rows per tenant and minute before sampling
# starts, days kept, and warnings per hour that make a tenant's Health line say so.
# The nightly reconcile redoes this many days before yesterday too (late enrichment, replays).
CODEX_RECONCILE_LOOKBACK_DAYS = envreader.integer("CODEX_RECONCILE_LOOKBACK_DAYS", 3)
CODEX_INGEST_WARNINGS_PER_MINUTE = envreader.integer("CODEX_INGEST_WARNINGS_PER_MINUTE", 100)
CODEX_INGEST_WARNINGS_KEEP_DAYS = envreader.integer("CODEX_INGEST_WARNINGS_KEEP_DAYS", 7)
CODEX_INGEST_WARNINGS_SPIKE_PER_HOUR = envreader.integer("CODEX_INGEST_WARNINGS_SPIKE_PER_HOUR", 50)
# Absolute caps per tenant and UTC day on what ingestion warnings store (beyond them warnings
# are only counted, codex_ingest_warnings_dropped_total): rows, and bytes of stored text.
CODEX_INGEST_WARNINGS_ROWS_PER_DAY = envreader.integer("CODEX_INGEST_WARNINGS_ROWS_PER_DAY", 10000)
CODEX_INGEST_WARNINGS_BYTES_PER_DAY = envreader.integer(
    "CODEX_INGEST_WARNINGS_BYTES_PER_DAY", 32 * 1024 * 1024
)
# Data lifecycle (docs/lifecycle.md): the global default of the retentionDays flag, and how many
# days longer than its event an idempotency key is remembered.
CODEX_RETENTION_DAYS = envreader.integer("CODEX_RETENTION_DAYS", 400)
CODEX_IDEMPOTENCY_GRACE_DAYS = envreader.integer("CODEX_IDEMPOTENCY_GRACE_DAYS", 30)
# Resolved signing keys, sources and flags are cached per process (tenants/keycache.py) until a
# change is seen by the cache-version poll (tenants/cachesync.py, about 1 s), for at most
# CODEX_CACHE_LONG_TTL_S; while the poll fails, for CODEX_KEY_CACHE_TTL_S only. So a revocation or
# suspension reaches every process within max(TTL, 2 s); the contract promises 5 s, so the TTL is
# capped there (0 turns the caches off).
CODEX_KEY_CACHE_TTL_S = min(5.0, envreader.number("CODEX_KEY_CACHE_TTL_S", 3.0))
CODEX_CACHE_LONG_TTL_S = envreader.number("CODEX_CACHE_LONG_TTL_S", 3600.0)
# Entries per process (keys and sources; LRU): 100,000 keys take about 65 MB.
CODEX_KEY_CACHE_SIZE = envreader.integer("CODEX_KEY_CACHE_SIZE", 200_000)
# A new web worker loads this many of the most recently used keys (and their tenants' flags)
# before taking requests (ingest/cachewarm.py; about 5 s of CPU per 100,000 keys); 0: start cold.
CODEX_KEY_CACHE_WARM = envreader.integer("CODEX_KEY_CACHE_WARM", 100_000)
# tenant_offboard deletes the tenant's rows again this long after suspending it (the fence,
# docs/lifecycle.md): a key cached before the suspension serves CODEX_CACHE_STALE_S more; the
# lookup that cached it, and the ledger write and ingestion-warning write of a request it lets
# through, are a statement each (one statement timeout each; 30 s, gunicorn's timeout, when they
# are off); 2 s for the work in between (Redis calls time out within 0.5 s).
_STATEMENT_S = (DATABASES["default"]["TIME_LIMITS_MS"]["statement_timeout"] or 30_000) / 1000
# How long another process may serve a key after a change: within a poll (about 1 s) while the
# cache-version poll works, the short TTL or 2 s of unconfirmed health (tenants.cachesync) when not.
CODEX_CACHE_STALE_S = max(CODEX_KEY_CACHE_TTL_S, 3.0)
CODEX_OFFBOARD_FENCE_S = CODEX_CACHE_STALE_S + 3 * _STATEMENT_S + 2.0
