# The two set-up commands (see README): `make serve` and `make test`.
# Both create .venv on first use and install the pinned dependencies from requirements.lock.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint typecheck unit bench-smoke postgres clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/scimgate serve $(ARGS)

postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
	  echo "PostgreSQL did not start" >&2; exit 1

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) postgres lint typecheck
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The benchmark at its smoke size: keeps bench/ working (not a speed check; see
# docs/performance.md for the real runs).
bench-smoke: $(STAMP) postgres
	$(BIN)/python bench/run.py --size smoke --backend both
	$(BIN)/python bench/tenants.py --backend both --tenants 6 --users 20 --groups 1 --members-per-group 10
	$(BIN)/python bench/members.py --backend both --small 10 --large 300 --iterations 3
	$(BIN)/python bench/restart.py --users 700 --members 50 --restarts 1 --waves 2
	@if $(BIN)/python bench/cpucap.py; then \
	  $(BIN)/python bench/run.py --size smoke --backend postgresql --dialect legacy --workers 2 --cpu-per-worker 0.5; \
	fi
	@if command -v valgrind >/dev/null; then \
	  $(BIN)/python bench/instructions.py --backend sqlite --size smoke; \
	else echo "valgrind is not installed: bench/instructions.py not run"; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
