#!/bin/sh
# Chromium for the browser tests (tests/browser/, driven by playwright-core): Debian's `chromium`
# package, installed with apt-get when missing and this runs as root; elsewhere the failure names
# the package. BREAKWATER_CHROMIUM may name another Chromium binary. Prints the binary's path
# last, on its own line, for `make test` to pass on.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

if [ -n "${BREAKWATER_CHROMIUM:-}" ]; then
  [ -x "$BREAKWATER_CHROMIUM" ] || die "BREAKWATER_CHROMIUM=$BREAKWATER_CHROMIUM is not an executable"
  echo "$BREAKWATER_CHROMIUM"
  exit 0
fi
if ! command -v chromium >/dev/null 2>&1; then
  missing="Chromium (for the browser tests) was not found"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "$missing; install Debian's package: sudo apt-get install -y chromium (or set BREAKWATER_CHROMIUM to a Chromium binary)"
  fi
  step "installing Chromium for the browser tests (apt-get install -y chromium)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || die "apt-get update failed; install the 'chromium' package by hand"
  apt-get install -y -qq chromium >/dev/null ||
    die "apt-get install -y chromium failed; install the 'chromium' package by hand"
fi
note "$(chromium --version 2>/dev/null | head -n 1): present" >&2
command -v chromium
