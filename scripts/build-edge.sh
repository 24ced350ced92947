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
# The same cargo build worker-build starts with; when its output is older than build/, the
# bindings, bundle and wasm-opt pass are up to date and are skipped.
cargo build --quiet --lib --release --target wasm32-unknown-unknown
raw=target/wasm32-unknown-unknown/release/breakwater.wasm
if [ build/index_bg.wasm -nt "$raw" ] && [ build/index.js -nt "$raw" ]; then
  note "build/ is up to date"
  exit 0
fi
need worker-build "run: make setup"
need wasm-bindgen "run: make setup"
[ -x node_modules/.bin/esbuild ] || die "node_modules/.bin/esbuild is missing; run: make setup"
# worker-build would download these from GitHub; use the pinned local copies instead.
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
worker-build --release
if [ "${BREAKWATER_WASM_OPT:-1}" = 1 ]; then
  step "optimising wasm for size (binaryen wasm-opt -Oz)"
  wasm=build/index_bg.wasm
  node_modules/.bin/wasm-opt --all-features -Oz "$wasm" -o "$wasm.opt" && mv "$wasm.opt" "$wasm"
fi
