#!/usr/bin/env bash
# Provider-neutral deploy: scripts/deploy.sh ENV IMAGE@DIGEST
#
#   scripts/deploy.sh staging ghcr.io/acme/codex-ingest@sha256:3f0c...   (64 hex digits)
#
# ENV is `staging` or `production`. The image is ALWAYS pinned by digest: a tag (`:latest`,
# `:v0.1.0`) is refused, so what was tested on staging is byte-for-byte what production runs and a
# rollback redeploys exactly the old bytes.
#
# Every provider runs the same three things from the one image (infra/app/processes.yml):
#   release  python manage.py migrate --no-input        (once, before the new web starts)
#   web      gunicorn -c gunicorn.conf.py codex.wsgi:application   (health check GET /healthz)
#   worker   celery -A codex worker --loglevel INFO
#   beat     celery -A codex beat --loglevel INFO        (exactly one instance)
#
# Environment:
#   DEPLOY_PROVIDER        dry-run | fly | cloudrun  (required; fly/cloudrun: uncomment below)
#   DEPLOY_HEALTH_URL      optional base URL: after the provider returns, wait until
#                          $DEPLOY_HEALTH_URL/healthz answers 200 (at most DEPLOY_HEALTH_TIMEOUT s,
#                          default 120) and print the seconds it took
#   CODEX_VERSION          optional release name passed to the app (shown by /healthz)
# Exit status: 0 deployed (and healthy, when asked); 1 deploy or health wait failed; 2 usage.
set -euo pipefail

die() {
    echo "deploy: FAIL $1" >&2
    exit "${2:-1}"
}

[[ $# -eq 2 ]] || die "usage: $0 staging|production IMAGE@sha256:<64 hex>" 2
ENV_NAME="$1"
IMAGE="$2"
case "$ENV_NAME" in
staging | production) ;;
*) die "environment must be staging or production, not '$ENV_NAME'" 2 ;;
esac
[[ "$IMAGE" =~ ^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$ ]] ||
    die "image must be pinned by digest (REPO@sha256:<64 hex>), got '$IMAGE'" 2
DIGEST="${IMAGE##*@}"
PROVIDER="${DEPLOY_PROVIDER:-}"
STARTED=$SECONDS

echo "deploy: $ENV_NAME <- $IMAGE (provider ${PROVIDER:-unset}, version ${CODEX_VERSION:-unset})"

case "$PROVIDER" in
dry-run)
    echo "deploy: dry run: would run migrations, then roll web/worker/beat to $DIGEST"
    ;;
fly)
    # Fly.io: one app per environment, config in infra/app/fly.<env>.toml (release_command runs
    # the migrations; [[http_service.checks]] gates the rollout on /healthz).
    #   flyctl deploy --image "$IMAGE" --config "infra/app/fly.$ENV_NAME.toml" \
    #       --env "CODEX_VERSION=${CODEX_VERSION:-$DIGEST}" --strategy rolling --wait-timeout 300
    die "provider fly: uncomment the flyctl command in scripts/deploy.sh (needs FLY_API_TOKEN)"
    ;;
cloudrun)
    # Google Cloud Run: a job for the migrations, then the three services (web has a startup and
    # liveness probe on /healthz; worker and beat run with --no-cpu-throttling, min=max=1 for beat).
    #   gcloud run jobs deploy "codex-migrate-$ENV_NAME" --image="$IMAGE" --region="$GCLOUD_REGION" \
    #       --command=python --args=manage.py,migrate,--no-input --execute-now --wait
    #   gcloud run deploy "codex-web-$ENV_NAME" --image="$IMAGE" --region="$GCLOUD_REGION" \
    #       --set-env-vars="CODEX_VERSION=${CODEX_VERSION:-$DIGEST}"
    #   gcloud run deploy "codex-worker-$ENV_NAME" --image="$IMAGE" --region="$GCLOUD_REGION" \
    #       --command=celery --args=-A,codex,worker,--loglevel,INFO --no-cpu-throttling
    #   gcloud run deploy "codex-beat-$ENV_NAME" --image="$IMAGE" --region="$GCLOUD_REGION" \
    #       --command=celery --args=-A,codex,beat,--loglevel,INFO --min-instances=1 --max-instances=1
    die "provider cloudrun: uncomment the gcloud commands in scripts/deploy.sh"
    ;;
"") die "DEPLOY_PROVIDER is not set (dry-run, fly or cloudrun; see scripts/deploy.sh)" 2 ;;
*) die "unknown DEPLOY_PROVIDER '$PROVIDER' (dry-run, fly or cloudrun)" 2 ;;
esac

if [[ -n "${DEPLOY_HEALTH_URL:-}" ]]; then
    limit="${DEPLOY_HEALTH_TIMEOUT:-120}"
    url="${DEPLOY_HEALTH_URL%/}/healthz"
    until curl -fsS --max-time 5 -o /dev/null "$url" 2>/dev/null; do
        ((SECONDS - STARTED < limit)) || die "$url not 200 within ${limit}s of the deploy start"
        sleep 2
    done
    echo "deploy: $url is 200, $((SECONDS - STARTED))s after the deploy started"
fi

echo "deploy: OK $ENV_NAME now runs $DIGEST ($((SECONDS - STARTED))s)"
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    {
        echo "### Deployed to $ENV_NAME"
        echo ""
        echo "- image: \`$IMAGE\`"
        echo "- version: \`${CODEX_VERSION:-unset}\`"
        echo "- took: $((SECONDS - STARTED)) s"
    } >>"$GITHUB_STEP_SUMMARY"
fi
