# The two commands (see README.md):
#   make dev   start the origin (SQLite) and the edge (wrangler dev), wired together
#   make test  every gate and every test, as CI runs them
# Both install what is missing first (make setup) and reinstall nothing on a second run.
# Also: make bench, the edge benchmark (scenarios against a same-run baseline, the edge under
# workerd via Miniflare); pass flags with BENCH_ARGS=--quick (BENCH_ARGS=--help lists them).
.PHONY: dev test setup build bench clean

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

clean:
	rm -rf build dist target/deploy-dry-run .wrangler
