#!/bin/sh
# Installs what `make dev` / `make test` need and is missing; a second run installs nothing.
# Needs: Rust (rustup, cargo) and Node.js >= 20 with npm. Everything else is fetched from the
# package registries (crates.io, npm) at pinned versions.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

WORKER_BUILD_VERSION=0.8.7

step "checking prerequisites"
need cargo "install Rust from https://rustup.rs"
need rustup "install Rust from https://rustup.rs (rustup manages the wasm32 target)"
need node "install Node.js 20 or newer"
need npm "install npm (it ships with Node.js)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js $node_major found; 20 or newer is needed"

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  note "wasm32-unknown-unknown target: present"
else
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# cargo_tool BIN CRATE VERSION: install CRATE@VERSION unless BIN already reports VERSION.
cargo_tool() {
  if command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -Eq "(^| |v)$3\$"; then
    note "$2 $3: present"
  else
    step "installing $2 $3 (cargo install, a few minutes the first time)"
    cargo install "$2" --version "$3" --locked
  fi
}

[ -f Cargo.lock ] || { step "resolving Cargo.lock"; cargo generate-lockfile; }
bindgen_version=$(locked_version wasm-bindgen)
[ -n "$bindgen_version" ] || die "Cargo.lock has no wasm-bindgen entry"
cargo_tool worker-build worker-build "$WORKER_BUILD_VERSION"
cargo_tool wasm-bindgen wasm-bindgen-cli "$bindgen_version"

if [ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ]; then
  note "npm packages: present"
else
  step "installing npm packages (wrangler, node 22, esbuild, binaryen)"
  npm ci --no-audit --no-fund
fi
