# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := tests/js/node_modules/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= ./data

.PHONY: install run test lint fmt typecheck pytest bench clean js bench-js browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project metadata changed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP)

# The JavaScript socket.io-client used by the interop tests; skipped where Node is absent.
js:
	@if command -v npm >/dev/null 2>&1; then \
		if [ ! -f $(NPM_STAMP) ] || [ tests/js/package-lock.json -nt $(NPM_STAMP) ]; then \
			(cd tests/js && npm ci --no-audit --no-fund --loglevel=error) && touch $(NPM_STAMP); \
		fi; \
	else echo "npm not found: JavaScript interop tests will be skipped"; fi

# Chromium for the web page's browser test (tests/web): installed with apt-get only where it
# is missing and we are root; otherwise that test is skipped (pytest -ra shows why).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } \
		|| echo "chromium could not be installed: the browser test will be skipped"; \
	else echo "/usr/bin/chromium is missing and apt-get is not usable as root: the browser test will be skipped"; fi

run: install
	$(BIN)/chatcore serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

pytest: install js browser
	$(BIN)/pytest --cov=chatcore --cov-report=term:skip-covered $(PYTEST_ARGS)

test: lint pytest

# The bare Node.js socket.io server and the load generator of `make bench`.
bench-js:
	@if [ ! -f bench/node/node_modules/.installed ] || [ bench/node/package-lock.json -nt bench/node/node_modules/.installed ]; then \
		(cd bench/node && npm ci --no-audit --no-fund --loglevel=error) && touch bench/node/node_modules/.installed; \
	fi

bench: install bench-js
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
