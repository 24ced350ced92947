#!/bin/sh
# `make bench`: the edge benchmark (bench/): cache tiers, the rate limiter's latency, a surge
# against a slowed origin with admission on, and idempotency (the records' latency and a retry
# storm with faults). Builds the edge if it is out of date, then runs the bench program natively.
# Arguments go to the program: `sh scripts/bench.sh --quick`,
# `--scenario cache|limiter|surge|idempotency|all` (comma-separated), `--help` for the rest (each
# flag also has a BENCH_* environment variable).
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

sh scripts/build-edge.sh
[ -f build/index.js ] || die "build/index.js was not produced"
[ -x node_modules/.bin/node ] || die "node_modules/.bin/node is missing; run: make setup"

step "benchmark: origin baseline vs edge under workerd (Miniflare API)"
note "tables on stdout, progress on stderr"
# The workspace's release profile is tuned for the wasm edge (opt-level "s", fat LTO, one
# codegen unit); the bench and the origin it embeds are native and measured for speed, and fat
# LTO over tokio/sqlx/reqwest would take minutes on two cores. These apply to this build only.
CARGO_PROFILE_RELEASE_OPT_LEVEL=3 \
CARGO_PROFILE_RELEASE_LTO=false \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo run --quiet --release -p breakwater-bench -- "$@"
