#!/usr/bin/env bash
# Post-deploy smoke gate: scripts/smoke.sh BASE_URL
#
#   CODEX_KEY_ID=ck_... CODEX_SECRET=whsec_... scripts/smoke.sh https://staging.example.com
#
# Checks, in order, stopping at the first failure:
#   healthz    GET /healthz    200 and "status": "ok" (and the version, if SMOKE_EXPECT_VERSION is set)
#   readyz     GET /readyz     200 and "status": "ok" (PostgreSQL and Redis answer)
#   metrics    GET /metrics    200 and at least one codex_* sample
#   ingest     POST /v1/events signed (v2: HMAC-SHA256 over the request) -> 202 "accepted"
#   duplicate  the same event again, signed afresh                   -> 200 "duplicate"
#
# The ingest check stores one real event of type `smoke.check` (source `smoke`, a fresh
# idempotency key) for the key's tenant: use a dedicated smoke tenant in production.
#
# Environment: CODEX_KEY_ID, CODEX_SECRET (required); SMOKE_TIMEOUT (seconds per request,
# default 10); METRICS_TOKEN (the deployment's, for GET /metrics; required in staging/production);
# SMOKE_EXPECT_VERSION (optional); SMOKE_METRICS_OUT (optional: keep the /metrics
# body there, e.g. for a CI artifact).
# Exit status: 0 all passed; 1 a check failed (the message names it); 2 usage error.
set -euo pipefail

usage() {
    echo "usage: CODEX_KEY_ID=ck_... CODEX_SECRET=whsec_... $0 BASE_URL" >&2
    exit 2
}

[[ $# -eq 1 && -n "$1" ]] || usage
BASE_URL="${1%/}"
TIMEOUT="${SMOKE_TIMEOUT:-10}"
[[ -n "${CODEX_KEY_ID:-}" ]] || { echo "smoke: FAIL setup: CODEX_KEY_ID is required (a signing key id, ck_...)" >&2; exit 2; }
[[ -n "${CODEX_SECRET:-}" ]] || { echo "smoke: FAIL setup: CODEX_SECRET is required (the key secret, whsec_...)" >&2; exit 2; }
for tool in curl openssl od; do
    command -v "$tool" >/dev/null || { echo "smoke: FAIL setup: $tool not found" >&2; exit 2; }
done
[[ "$CODEX_SECRET" == whsec_* ]] || { echo "smoke: FAIL setup: CODEX_SECRET must start with whsec_" >&2; exit 2; }
# The HMAC key: the base64 after whsec_, decoded, as hex for openssl's -macopt hexkey:.
KEY_HEX="$(printf '%s' "${CODEX_SECRET#whsec_}" | openssl base64 -d -A 2>/dev/null | od -An -v -tx1 | tr -d ' \n')"
[[ -n "$KEY_HEX" ]] || { echo "smoke: FAIL setup: CODEX_SECRET is not base64 after whsec_" >&2; exit 2; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
BODY_FILE="$WORK/body"
HEADERS_FILE="$WORK/headers"
STATUS=""
STARTED=$SECONDS

fail() {
    # fail CHECK MESSAGE: name the check, show what came back, exit 1.
    echo "smoke: FAIL $1: $2" >&2
    if [[ -s "$BODY_FILE" ]]; then
        echo "smoke:   response body (first 500 bytes): $(head -c 500 "$BODY_FILE")" >&2
    fi
    exit 1
}

pass() {
    echo "smoke: ok   $1: $2"
}

# request CHECK METHOD PATH [curl args...]: sets STATUS, leaves the body in $BODY_FILE.
request() {
    local check="$1" method="$2" path="$3" rc=0
    shift 3
    : >"$BODY_FILE"
    STATUS="$(curl -sS --max-time "$TIMEOUT" --connect-timeout "$TIMEOUT" -X "$method" \
        -H "X-Request-ID: smoke-$check-$$" -D "$HEADERS_FILE" -o "$BODY_FILE" \
        -w '%{http_code}' "$@" "$BASE_URL$path" 2>"$WORK/curl.err")" || rc=$?
    if [[ $rc -ne 0 ]]; then
        fail "$check" "$method $path: no answer (curl exit $rc: $(tr -d '\n' <"$WORK/curl.err"))"
    fi
}

body_has() {
    grep -Eq "$1" "$BODY_FILE"
}

# sign METHOD PATH BODY: prints the webhook-id, webhook-timestamp and webhook-signature as three
# lines. v2 (docs/api.md): HMAC-SHA256 over "v2\nMETHOD\nPATH\nQUERY\nID\nTS\n" + the body, with a
# new webhook-id every time (the server accepts each once). PATH is the API path (no query here).
sign() {
    local method="$1" path="$2" body="$3" msg_id ts sig
    msg_id="msg_$(openssl rand -hex 16)"
    ts="$(date +%s)"
    sig="$(printf 'v2\n%s\n%s\n\n%s\n%s\n%s' "$method" "$path" "$msg_id" "$ts" "$body" |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY_HEX" -binary | openssl base64 -A)"
    printf '%s\n%s\n%s\n' "$msg_id" "$ts" "$sig"
}

# post_event CHECK BODY: a signed POST /v1/events; a 429 is retried (Retry-After, at most 3 times).
post_event() {
    local check="$1" body="$2" attempt wait
    local -a sig
    for attempt in 1 2 3 4; do
        mapfile -t sig < <(sign POST /v1/events "$body")
        request "$check" POST /v1/events \
            -H 'Content-Type: application/json' \
            -H "X-Codex-Key-Id: $CODEX_KEY_ID" \
            -H "webhook-id: ${sig[0]}" \
            -H "webhook-timestamp: ${sig[1]}" \
            -H "webhook-signature: v2,${sig[2]}" \
            --data-binary "$body"
        [[ "$STATUS" == 429 && $attempt -lt 4 ]] || return 0
        wait="$(grep -i '^retry-after:' "$HEADERS_FILE" | tr -dc '0-9' || true)"
        wait="${wait:-1}"
        ((wait <= 5)) || wait=5
        echo "smoke: ...  $check: 429 rate limited, retrying in ${wait}s"
        sleep "$wait"
    done
}

echo "smoke: target $BASE_URL (timeout ${TIMEOUT}s per request)"

# 1. liveness
request healthz GET /healthz
[[ "$STATUS" == 200 ]] || fail healthz "GET /healthz answered $STATUS, expected 200"
body_has '"status": *"ok"' || fail healthz 'GET /healthz body has no "status": "ok"'
version="$(grep -Eo '"version": *"[^"]*"' "$BODY_FILE" | sed -E 's/.*"([^"]*)"$/\1/' || true)"
if [[ -n "${SMOKE_EXPECT_VERSION:-}" && "$version" != "$SMOKE_EXPECT_VERSION" ]]; then
    fail healthz "version is '${version:-?}', expected '$SMOKE_EXPECT_VERSION'"
fi
pass healthz "200 status ok, version ${version:-?}"

# 2. readiness
request readyz GET /readyz
[[ "$STATUS" == 200 ]] || fail readyz "GET /readyz answered $STATUS, expected 200 (a dependency is down?)"
body_has '"status": *"ok"' || fail readyz 'GET /readyz body has no "status": "ok"'
pass readyz "200 status ok"

# 3. metrics
if [[ -n "${METRICS_TOKEN:-}" ]]; then
    request metrics GET /metrics -H "Authorization: Bearer $METRICS_TOKEN"
else
    request metrics GET /metrics
fi
[[ "$STATUS" == 200 ]] || fail metrics "GET /metrics answered $STATUS, expected 200"
samples="$(grep -Ec '^codex_[a-z0-9_]+(\{| )' "$BODY_FILE" || true)"
((samples > 0)) || fail metrics "GET /metrics has no codex_* sample"
if [[ -n "${SMOKE_METRICS_OUT:-}" ]]; then
    cp "$BODY_FILE" "$SMOKE_METRICS_OUT"
fi
pass metrics "200 with $samples codex_* samples"

# 4. signed ingest, then the same event again
key="smoke-$(date -u +%Y%m%dT%H%M%SZ)-$(openssl rand -hex 6)"
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
event="{\"idempotency_key\":\"$key\",\"type\":\"smoke.check\",\"occurred_at\":\"$now\",\"source\":\"smoke\",\"payload\":{\"smoke\":true}}"

post_event ingest "$event"
[[ "$STATUS" == 202 ]] || fail ingest "signed POST /v1/events answered $STATUS, expected 202"
body_has '"status": *"accepted"' || fail ingest 'signed POST /v1/events body has no "status": "accepted"'
pass ingest "202 accepted ($key)"

post_event duplicate "$event"
[[ "$STATUS" == 200 ]] || fail duplicate "repeated POST /v1/events answered $STATUS, expected 200"
body_has '"status": *"duplicate"' || fail duplicate 'repeated POST /v1/events body has no "status": "duplicate"'
pass duplicate "200 duplicate"

echo "smoke: PASS all 5 checks against $BASE_URL in $((SECONDS - STARTED))s"
