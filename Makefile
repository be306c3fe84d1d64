# Two entry points: `make demo` and `make test`. Both start with `make install`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench bench-smoke address-book screenshots clean

install: $(STAMP) node_modules/.installed

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

demo: install
	scripts/ensure-postgres.sh
	$(BIN)/python -m indexer.demo

test: install
	scripts/ensure-postgres.sh
	$(BIN)/ruff check indexer api tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint:
	$(BIN)/ruff check indexer api tests bench
	$(BIN)/ruff format --check indexer api tests bench

typecheck:
	$(BIN)/mypy

bench: install
	scripts/ensure-postgres.sh
	$(BIN)/python -m bench.run --full

bench-smoke: install
	scripts/ensure-postgres.sh
	$(BIN)/python -m bench.run --smoke

address-book: install
	$(BIN)/python -m indexer.addressbook --write

# The dashboard's two screenshots in docs/, taken by its browser test on the devnet.
screenshots: install
	scripts/ensure-postgres.sh
	DASHBOARD_SCREENSHOTS=docs $(BIN)/pytest -q tests/test_dashboard.py -k screenshots

clean:
	rm -rf $(VENV) node_modules .devnet .pgdata
