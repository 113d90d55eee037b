# syntax=docker/dockerfile:1
# Multi-stage image for web, worker and beat. Install steps mirror the Makefile's: the same pinned
# requirements.txt, installed with pip into a virtualenv.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm AS runtime
# The release /healthz and codex_build_info{version,commit} report (codex/build.py reads both;
# cd.yml passes the tag or main-<sha>, and the full commit).
ARG CODEX_VERSION=dev
ARG CODEX_COMMIT=unknown
ENV CODEX_VERSION=$CODEX_VERSION \
    CODEX_COMMIT=$CODEX_COMMIT \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CODEX_ENV=production \
    BIND=0.0.0.0:8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
RUN groupadd --system --gid 10001 codex \
    && useradd --system --uid 10001 --gid codex --home-dir /app --no-create-home codex
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=10001:10001 . /app
# Static files (the admin's CSS/JS) are collected at build time; WhiteNoise serves them.
# Placeholder values only let settings import here: nothing connects during collectstatic.
RUN CODEX_ENV=staging SECRET_KEY=build-only DATABASE_URL=postgresql://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 ALLOWED_HOSTS=localhost \
    CODEX_SECRETS_KEY=MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA= \
    python manage.py collectstatic --no-input
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "codex.wsgi:application"]
