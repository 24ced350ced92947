#!/bin/sh
# The wrangler [build] command: versioned assets, then the wasm worker. It installs nothing;
# `make setup` (run by `make dev` and `make test`) provides the tools it names.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

# The end-to-end harness starts wrangler dev after `make test` has built everything; building
# again from inside a running `cargo test` would wait on cargo's lock.
if [ "${BREAKWATER_PREBUILT:-0}" = 1 ]; then
  [ -f build/index.js ] || die "BREAKWATER_PREBUILT=1 but build/index.js is missing; run: make build"
  exit 0
fi

step "building versioned assets: static/ -> dist/"
cargo run --quiet -p breakwater-assetgen -- --src static --out dist

step "building the edge worker (wasm32, release)"
build_worker . breakwater
