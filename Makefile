# The two commands (see README.md):
#   make dev   start the origin (SQLite) and the edge (wrangler dev), wired together
#   make test  every gate and every test, as CI runs them
# Both install what is missing first (make setup) and reinstall nothing on a second run.
.PHONY: dev test setup build clean

dev: setup
	@sh scripts/dev.sh

test: setup
	@sh scripts/test.sh

setup:
	@sh scripts/setup.sh

build: setup
	@sh scripts/build-edge.sh
	@cargo build -p breakwater-origin

clean:
	rm -rf build dist target/deploy-dry-run .wrangler
