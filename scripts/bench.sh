#!/bin/sh
# `make bench`: the edge benchmark (bench/): cache tiers, the rate limiter's latency, a surge
# against a slowed origin with admission on, idempotency (the records' latency and a retry storm
# with faults), write-behind (queued views vs synchronous writes, database transactions per 1,000
# events), failover (two origins, one killed mid-run and restarted, vs a single origin killed
# alike), and the origin alone on SQLite and Postgres (primary only, and with its streaming
# replica), and the hot path (CPU per request, cold start and wasm size against a bare workers-rs
# worker). Builds the edge if it is out of date and an edge scenario runs (and the bare worker
# for the hot path); starts (or reuses) the Postgres primary and replica of scripts/postgres.sh
# if the origin scenario runs; then runs the bench program natively.
# Arguments go to the program: `sh scripts/bench.sh --quick`,
# `--scenario cache|limiter|surge|idempotency|writebehind|failover|origin|hotpath|all|chaos`
# (comma-separated; `all` leaves out chaos, which `make chaos` runs),
# `--help` for the rest
# (each flag also has a BENCH_* environment variable).
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh

# Which scenarios run, as the program will read them: --scenario (repeatable, comma-separated)
# wins over BENCH_SCENARIO, whose default is all. --help and --version run nothing.
cli_scenarios=
asks_help=0
previous=
for arg in "$@"; do
  [ "$previous" = --scenario ] && cli_scenarios="$cli_scenarios,$arg"
  case $arg in
    --scenario=*) cli_scenarios="$cli_scenarios,${arg#--scenario=}" ;;
    -h | --help | -V | --version) asks_help=1 ;;
  esac
  previous=$arg
done
scenarios=${cli_scenarios:-${BENCH_SCENARIO:-all}}
needs_edge=0
needs_bare=0
needs_postgres=0
old_ifs=$IFS
IFS=,
for scenario in $scenarios; do
  case $scenario in
    '') ;;
    origin) needs_postgres=1 ;;
    all) needs_edge=1 needs_bare=1 needs_postgres=1 ;;
    chaos) needs_edge=1 needs_postgres=1 ;;
    hotpath) needs_edge=1 needs_bare=1 ;;
    *) needs_edge=1 ;;
  esac
done
IFS=$old_ifs

if [ "$asks_help" = 0 ] && [ "$needs_edge" = 1 ]; then
  sh scripts/build-edge.sh
  [ -f build/index.js ] || die "build/index.js was not produced"
  [ -x node_modules/.bin/node ] || die "node_modules/.bin/node is missing; run: make setup"
fi
if [ "$asks_help" = 0 ] && [ "$needs_bare" = 1 ]; then
  step "building the hot-path baseline: a bare workers-rs worker (bench/bare), built as the edge is"
  build_worker bench/bare breakwater_bench_bare
fi
if [ "$asks_help" = 0 ] && [ "$needs_postgres" = 1 ]; then
  # The origin scenario's databases: a primary and a streaming replica on loopback, installed if
  # missing, started or reused, replication checked (as for make test).
  sh scripts/postgres.sh
  postgres_env=$(sh scripts/postgres.sh env)
  eval "$postgres_env"
fi

step "benchmark: origin baseline vs edge under workerd (Miniflare API), origin on SQLite vs Postgres"
note "tables on stdout, progress on stderr"
# The workspace's release profile is tuned for the wasm edge (opt-level "s", fat LTO, one
# codegen unit); the bench and the origin it embeds are native and measured for speed, and fat
# LTO over tokio/sqlx/reqwest would take minutes on two cores. These apply to this build only.
CARGO_PROFILE_RELEASE_OPT_LEVEL=3 \
CARGO_PROFILE_RELEASE_LTO=false \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo run --quiet --release -p breakwater-bench -- "$@"
