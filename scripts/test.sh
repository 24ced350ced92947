#!/bin/sh
# `make test`: the gates, then every test: unit and property (native), wasm (wasm-bindgen-test
# under Node), origin API (on SQLite and on PostgreSQL with a streaming replica), end to end
# (origin + wrangler dev) with browser scenarios (headless Chromium), and a deploy dry run of
# each deployment (top level, staging, production).
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

step "gate: cargo fmt --check"
cargo fmt --all -- --check || die "formatting differs; run: cargo fmt --all"

step "gate: clippy -D warnings (native, all targets)"
cargo clippy --quiet --workspace --all-targets -- -D warnings

step "gate: clippy -D warnings (wasm32: edge and core)"
cargo clippy --quiet --target wasm32-unknown-unknown -p breakwater --lib --tests -- -D warnings
# Core's tests are native (proptest does not target wasm32-unknown-unknown); its library is checked.
cargo clippy --quiet --target wasm32-unknown-unknown -p breakwater-core --lib -- -D warnings

step "building the edge (assets + wasm)"
sh scripts/build-edge.sh
wasm=build/index_bg.wasm
[ -f "$wasm" ] || die "$wasm was not produced"
note "wasm: $(wc -c < "$wasm") bytes raw, $(gzip -9c "$wasm" | wc -c) bytes gzipped"

# PostgreSQL for the origin's API tests: installed if missing, a primary and a streaming replica
# on loopback started (or reused), replication checked. Here a missing Postgres fails those
# tests instead of skipping them.
sh scripts/postgres.sh
postgres_env=$(sh scripts/postgres.sh env)
eval "$postgres_env"
export BREAKWATER_REQUIRE_POSTGRES=1

# Chromium for the browser tests (installed if missing, like Postgres), passed to them by path.
BREAKWATER_CHROMIUM=$(sh scripts/chromium.sh | tail -n 1)
export BREAKWATER_CHROMIUM

step "tests: unit, property, origin API, end to end and browser (native)"
cargo test --workspace

step "chaos, short: 300 keyed orders and 150 queued views while the origin is SIGKILLed 3 times and the Postgres primary crashes once"
# Debug build, like the tests: it checks exactly-once, not speed. make chaos runs the long one.
cargo run --quiet -p breakwater-bench -- --scenario chaos --quick

step "tests: edge code on JS types (wasm-bindgen-test under Node)"
need wasm-bindgen-test-runner "run: make setup (it ships with wasm-bindgen-cli)"
cargo test --target wasm32-unknown-unknown -p breakwater --lib

# Each deployment wrangler.toml describes: the top level (`--env ""` names it, which silences
# wrangler's warning that environments exist), then each environment.
for env in "" staging production; do
  out=target/deploy-dry-run${env:+-$env}
  step "deploy dry run${env:+ of [env.$env]} (wrangler deploy --dry-run${env:+ --env $env}, offline)"
  npx wrangler deploy --dry-run --env "$env" --outdir "$out" 2>&1 | tee "$out.log" | grep -Ei 'upload|error|warn' || true
  grep -q 'Total Upload' "$out.log" || die "wrangler deploy --dry-run${env:+ --env $env} did not report an upload size (see $out.log)"
done

step "all tests passed"
