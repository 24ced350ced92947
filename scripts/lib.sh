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
