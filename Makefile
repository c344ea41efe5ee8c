# Two entry points: `make run` (embedded: SQLite + local folder under instance/) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench load faults demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/flask --app wsgi init
	$(BIN)/flask --app wsgi run --host 127.0.0.1 --port 5000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The test command: lint, types, then the suite (on SQLite, and on PostgreSQL when
# TEST_DATABASE_URL is set).
test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench

# 50 API clients against gunicorn (4 workers) on PostgreSQL `fgf_load` for 60 s (SECONDS=…).
load: $(STAMP)
	$(BIN)/python -m bench.load --seconds $(or $(SECONDS),60)

# Fault scenarios (PostgreSQL restart, S3 outage, app killed mid-upload); needs root for
# the PostgreSQL restart. See docs/reliability.md.
faults: $(STAMP)
	$(BIN)/python -m bench.faults

demo: $(STAMP)
	$(BIN)/flask --app wsgi init
	$(BIN)/flask --app wsgi demo

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
