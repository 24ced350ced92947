# The two commands (see README.md):
#   make dev   start the origin (SQLite) and the edge (wrangler dev), wired together
#   make test  every gate and every test, as CI runs them
# Both install what is missing first (make setup) and reinstall nothing on a second run.
# Also: make bench, the edge benchmark (scenarios against a same-run baseline, the edge under
# workerd via Miniflare); pass flags with BENCH_ARGS=--quick (BENCH_ARGS=--help lists them).
# And make fuzz: every fuzz target for FUZZ_SECONDS each (default 60); FUZZ_TARGETS, FUZZ_SEED.
# And make chaos: keyed orders while the origin is SIGKILLed and Postgres crashes, checked for
# exactly-once (CHAOS_ARGS=--quick for the short run make test does).
.PHONY: dev test setup build bench chaos fuzz clean

dev: setup
	@sh scripts/dev.sh

test: setup
	@sh scripts/test.sh

setup:
	@sh scripts/setup.sh

build: setup
	@sh scripts/build-edge.sh
	@cargo build -p breakwater-origin

bench: setup
	@sh scripts/bench.sh $(BENCH_ARGS)

chaos: setup
	@sh scripts/bench.sh --scenario chaos $(CHAOS_ARGS)

# Needs only cargo: no wasm target, Node or Postgres.
fuzz:
	@FUZZ_SECONDS="$(FUZZ_SECONDS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" FUZZ_SEED="$(FUZZ_SEED)" sh scripts/fuzz.sh

clean:
	rm -rf build dist target/deploy-dry-run* .wrangler
