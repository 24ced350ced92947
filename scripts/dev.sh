#!/bin/sh
# `make dev`: the origin on a SQLite file and the edge under `wrangler dev`, wired together.
# Ctrl-C stops both.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

ORIGIN_PORT=${BREAKWATER_ORIGIN_PORT:-8080}
EDGE_PORT=${BREAKWATER_EDGE_PORT:-8787}
ORIGIN_URL="http://127.0.0.1:$ORIGIN_PORT"
# Admin tokens for this session (origin writes, edge purges), unless given. The edge's queue
# consumer calls the origin's batch endpoint with the origin's token (its ORIGIN_TOKEN secret).
ORIGIN_ADMIN_TOKEN=${BREAKWATER_ADMIN_TOKEN:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}
EDGE_ADMIN_TOKEN=${ADMIN_TOKEN:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}
# The key the edge signs its requests to the origin with (EDGE_KEY at the edge,
# BREAKWATER_EDGE_KEYS at the origin), unless given: the origin then believes a principal only
# from the edge.
EDGE_KEY=${EDGE_KEY:-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')}
# The key that signs users' access tokens (an Ed25519 seed, unpadded base64url), unless given:
# made once into data/signing-key (mode 600) and reused, so tokens issued before a restart stay
# valid, like the users in data/breakwater.sqlite they belong to.
if [ -z "${BREAKWATER_SIGNING_KEY:-}" ]; then
  mkdir -p data
  if [ ! -s data/signing-key ]; then
    (umask 077 && head -c 32 /dev/urandom | basenc --base64url | tr -d '=\n' > data/signing-key)
  fi
  BREAKWATER_SIGNING_KEY=$(cat data/signing-key)
fi

step "building the origin"
cargo build --quiet -p breakwater-origin
sh scripts/build-edge.sh

origin_pid=""
edge_pid=""
stop() {
  trap - INT TERM EXIT
  step "stopping"
  [ -n "$edge_pid" ] && kill "$edge_pid" 2>/dev/null || true
  [ -n "$origin_pid" ] && kill -INT "$origin_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

step "starting the origin on $ORIGIN_URL (SQLite: data/breakwater.sqlite)"
BREAKWATER_LOG_FORMAT=${BREAKWATER_LOG_FORMAT:-pretty} BREAKWATER_ADMIN_TOKEN="$ORIGIN_ADMIN_TOKEN" \
  BREAKWATER_EDGE_KEYS="$EDGE_KEY" BREAKWATER_SIGNING_KEY="$BREAKWATER_SIGNING_KEY" target/debug/breakwater-origin --listen "127.0.0.1:$ORIGIN_PORT" &
origin_pid=$!
# Wait on readiness, not a timer: /health answers once the listener is up (seeding included).
tries=0
until curl -fsS "$ORIGIN_URL/health" >/dev/null 2>&1; do
  kill -0 "$origin_pid" 2>/dev/null || die "the origin exited during start-up (is port $ORIGIN_PORT free? set BREAKWATER_ORIGIN_PORT)"
  tries=$((tries + 1)); [ "$tries" -lt 600 ] || die "the origin did not become ready"
  sleep 0.1
done

# The edge verifies access tokens with the keys the origin publishes (ACCESS_TOKENS).
JWKS=$(curl -fsS "$ORIGIN_URL/.well-known/jwks.json") || die "could not read the origin's /.well-known/jwks.json"
ACCESS_TOKENS="{\"issuer\": \"${BREAKWATER_TOKEN_ISSUER:-breakwater-origin}\", \"audience\": \"${BREAKWATER_TOKEN_AUDIENCE:-breakwater}\", \"jwks\": $JWKS}"

step "starting the edge (wrangler dev) on http://127.0.0.1:$EDGE_PORT"
npx wrangler dev --ip 127.0.0.1 --port "$EDGE_PORT" --var "ORIGIN_URL:$ORIGIN_URL" \
  --var "ADMIN_TOKEN:$EDGE_ADMIN_TOKEN" --var "ORIGIN_TOKEN:$ORIGIN_ADMIN_TOKEN" \
  --var "ACCESS_TOKENS:$ACCESS_TOKENS" --var "EDGE_KEY:$EDGE_KEY" --test-scheduled \
  --persist-to .wrangler/state --show-interactive-dev-session=false &
edge_pid=$!
until curl -fsS "http://127.0.0.1:$EDGE_PORT/" >/dev/null 2>&1; do
  kill -0 "$edge_pid" 2>/dev/null || die "wrangler dev exited during start-up (is port $EDGE_PORT free? set BREAKWATER_EDGE_PORT)"
  sleep 0.2
done
printf '\n\033[1;32mBreakwater is up:\033[0m http://127.0.0.1:%s  (origin %s; Ctrl-C stops both)\n' "$EDGE_PORT" "$ORIGIN_URL"
printf '  operator dashboard: http://127.0.0.1:%s/_breakwater/  (sign in with the ADMIN_TOKEN below)\n' "$EDGE_PORT"
printf '  edge admin token (ADMIN_TOKEN: dashboard, purge, metrics): %s\n' "$EDGE_ADMIN_TOKEN"
printf '  origin admin token (BREAKWATER_ADMIN_TOKEN, ORIGIN_TOKEN): %s\n' "$ORIGIN_ADMIN_TOKEN"
printf '  fire the cron trigger: curl "http://127.0.0.1:%s/__scheduled?cron=*+*+*+*+*"\n\n' "$EDGE_PORT"
wait "$edge_pid"
