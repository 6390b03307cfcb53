# Needs only python3 (3.10+) and make. `make test` and `make demo` build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Every runtime dependency at the lowest version pyproject.toml declares, tested in a second environment.
FLOOR := .venv-floor

.PHONY: venv test test-deployment test-production soak services test-dist test-floor dist check demo demo-feed sandbox bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --constraint constraints.txt --editable '.[test]'
	touch $(STAMP)

venv: $(STAMP)

check: venv
	$(BIN)/ruff check airflow_sfi tests example_dags scripts bench
	$(BIN)/ruff format --check airflow_sfi tests example_dags scripts bench
	$(BIN)/mypy

test: check
	$(BIN)/pytest

test-deployment: venv
	$(BIN)/pytest -m deployment -s

# PostgreSQL and Redis from Debian's packages, only when missing (apt-get, as root).
services:
	bash scripts/install_services.sh

$(VENV)/.production-stamp: $(STAMP)
	$(BIN)/uv pip install --python $(BIN)/python --constraint constraints.txt --quiet --editable '.[test,production-test]'
	touch $@

# PostgreSQL, CeleryExecutor with two workers on Redis, two triggerers, and chaos over 10 token lifetimes.
test-production: services $(VENV)/.production-stamp
	$(BIN)/pytest -m production -s

# The same over SFI_SOAK_LIFETIMES (100) lifetimes, its figures written into docs/benchmarks.md (about 45 min).
soak: services $(VENV)/.production-stamp
	SFI_SOAK_LIFETIMES=$${SFI_SOAK_LIFETIMES:-100} $(BIN)/python bench/run.py --only production

dist: venv
	rm -rf dist
	$(BIN)/uv build --quiet
	$(BIN)/twine check --strict dist/*

test-dist: dist
	$(BIN)/pytest -m packaging

# lowest-direct: each direct runtime dependency at its declared floor (checked by scripts/check_floor.py);
# the test tools stay at the versions constraints.txt pins, as their own floors (ruff 0.6, mypy 1.10) break.
$(FLOOR)/.installed-stamp: pyproject.toml constraints.txt
	rm -rf $(FLOOR)
	$(PYTHON) -m venv $(FLOOR)
	$(FLOOR)/bin/python -m pip install --quiet --upgrade pip uv
	grep -E '^(pytest|hypothesis|ruff|mypy|types-requests|twine)==' constraints.txt > $(FLOOR)/test-tools.txt
	$(FLOOR)/bin/uv pip install --python $(FLOOR)/bin/python --resolution lowest-direct \
		--constraint $(FLOOR)/test-tools.txt --editable '.[test]'
	$(FLOOR)/bin/python scripts/check_floor.py
	touch $@

test-floor: $(FLOOR)/.installed-stamp
	$(FLOOR)/bin/pytest

demo: venv
	$(BIN)/python scripts/demo.py

demo-feed: venv
	$(BIN)/python scripts/demo_feed.py

bench: venv
	$(BIN)/uv pip install --python $(BIN)/python --constraint constraints.txt --quiet --editable '.[test,bench]'
	$(BIN)/python bench/run.py

sandbox: venv
	$(BIN)/python -m airflow_sfi.sandbox --port 8080

clean:
	rm -rf $(VENV) $(FLOOR) .demo .pytest_cache .mypy_cache .ruff_cache dist build
