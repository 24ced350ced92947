#!/bin/sh
# `make fuzz`: structured random fuzzing of the parsers (fuzz/, crate breakwater-fuzz) on the
# stable toolchain: each target for FUZZ_SECONDS (default 60), one after the other, printing
# executions and executions per second as it goes and a table at the end. A panic or a broken
# invariant stops that target: its input is shrunk and written to fuzz/artifacts/<target>/, and
# the report prints the seed and the command that replays it; the script then exits non-zero.
# FUZZ_TARGETS picks targets (comma-separated; `cargo run -p breakwater-fuzz -- list` names
# them), FUZZ_SEED replays a run. The corpus itself is replayed by `make test`.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-all}
case $seconds in
  '' | *[!0-9.]*) die "FUZZ_SECONDS must be a number of seconds, not '$seconds'" ;;
esac

# The workspace's `fuzz` profile: optimised for speed (not size, as the wasm release is) and
# with overflow checks, so an overflow is reported instead of wrapping.
step "building the fuzz runner (cargo profile fuzz)"
cargo build --quiet --profile fuzz -p breakwater-fuzz

step "fuzzing: ${targets} for ${seconds} s each"
set -- run "$targets" --seconds "$seconds"
if [ -n "${FUZZ_SEED:-}" ]; then
  set -- "$@" --seed "$FUZZ_SEED"
fi
# Everything goes as flags; make passes unset variables on as empty ones, which the runner would
# otherwise read (and refuse) as values.
unset FUZZ_SECONDS FUZZ_TARGETS FUZZ_SEED
cargo run --quiet --profile fuzz -p breakwater-fuzz -- "$@"
