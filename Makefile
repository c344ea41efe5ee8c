# Two entry points: `make run` (embedded: SQLite + local folder under instance/) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run` installs only what the product needs; the test and lint tools come with `make test`.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-dev
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint typecheck unit bench load faults demo clean catalog

# uv installs the same packages from PyPI as pip, in seconds rather than a minute or more.
# --compile-bytecode: pip compiles installed modules, uv does not by default; where Python may
# not write bytecode (PYTHONDONTWRITEBYTECODE), every process would compile its imports from
# source again (the app's imports: 5 s instead of under 3 s per server, worker or CLI process).
UV_INSTALL := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python
$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(UV_INSTALL) -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(UV_INSTALL) -e '.[dev]'
	touch $(STAMP)

# The embedded job queue (a SQLite file in instance/) needs no service: a worker process runs
# beside the server and is stopped (SIGTERM: running jobs finish first) when the server ends.
run: $(RUN_STAMP)
	$(BIN)/flask --app wsgi init
	$(BIN)/flask --app wsgi worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Two pytest-xdist workers (a test module stays on one worker: its fixtures, ports and files are
# its own); each worker has its own PostgreSQL database beside TEST_DATABASE_URL's, so that
# user needs CREATEDB. PYTEST_ARGS=-n0 runs in one process. Modules are handed out in the
# order tests/conftest.py gives (the heaviest first), not xdist's order by number of tests.
# The 30 slowest tests are listed at the end, to keep HEAVIEST and the CI time in view.
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder --durations=30
# The project's own modules are compiled first, for the same reason as --compile-bytecode above.
unit: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 web workflow storage scoring bench wsgi.py
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

demo: $(RUN_STAMP)
	$(BIN)/flask --app wsgi init
	$(BIN)/flask --app wsgi demo

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

# The message catalog (web/portal/README.md): extract every text (pages, and the first argument
# of every refusal), merge into the English catalog, compile. Translate what is new in between.
KEYWORDS := -k N_ -k DomainError -k BadRequest -k NotAuthenticated -k Forbidden -k NotFound \
	-k Conflict -k InvalidValue -k TooManyAttempts -k ServiceUnavailable \
	-k UnsupportedBaseDocument -k ArchiveIntegrityError -k PayloadTooLarge -k UnsupportedMediaType \
	-k NoticeRecordAltered -k Np_:1,1
catalog: $(STAMP)
	$(BIN)/pybabel extract -F web/portal/babel.cfg $(KEYWORDS) --no-location --sort-output \
		-o web/portal/translations/messages.pot .
	$(BIN)/pybabel update -i web/portal/translations/messages.pot -d web/portal/translations \
		--no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d web/portal/translations
