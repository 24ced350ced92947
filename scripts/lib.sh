# Shared helpers for the scripts: step output and clear failures. Sourced, not run.

step() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# need CMD HINT: fail naming CMD and how to get it.
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; $2"; }

# The version of crate $1 that Cargo.lock resolved (the single source of truth for
# wasm-bindgen-cli, which must match the library exactly).
locked_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

# build_worker DIR CRATE: the wasm worker of the crate CRATE in DIR (its wrangler.toml's
# `build/`), as worker-build makes it, then binaryen's wasm-opt -Oz unless BREAKWATER_WASM_OPT=0.
# The same cargo build worker-build starts with comes first: when its output is older than
# DIR/build/, the bindings, bundle and wasm-opt pass are up to date and are skipped.
build_worker() {
  (cd "$1" && cargo build --quiet --lib --release --target wasm32-unknown-unknown)
  raw=target/wasm32-unknown-unknown/release/$2.wasm
  if [ "$1/build/index_bg.wasm" -nt "$raw" ] && [ "$1/build/index.js" -nt "$raw" ]; then
    note "$1/build/ is up to date"
    return 0
  fi
  need worker-build "run: make setup"
  need wasm-bindgen "run: make setup"
  [ -x node_modules/.bin/esbuild ] || die "node_modules/.bin/esbuild is missing; run: make setup"
  # worker-build would download these from GitHub; use the pinned local copies instead.
  (
    cd "$1"
    WASM_BINDGEN_BIN="$(command -v wasm-bindgen)" ESBUILD_BIN="$OLDPWD/node_modules/.bin/esbuild" \
      worker-build --release
  )
  if [ "${BREAKWATER_WASM_OPT:-1}" = 1 ]; then
    note "optimising $1/build/index_bg.wasm for size (binaryen wasm-opt -Oz)"
    wasm=$1/build/index_bg.wasm
    node_modules/.bin/wasm-opt --all-features -Oz "$wasm" -o "$wasm.opt" && mv "$wasm.opt" "$wasm"
  fi
}
