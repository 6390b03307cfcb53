# Needs only python3 (3.10+) and make. `make test` and `make demo` build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The lowest Airflow the provider declares, tested in a second environment.
FLOOR_AIRFLOW := 3.3.0
FLOOR := .venv-floor

.PHONY: venv test test-deployment test-dist test-floor dist check demo sandbox bench clean

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

dist: venv
	rm -rf dist
	$(BIN)/uv build --quiet
	$(BIN)/twine check --strict dist/*

test-dist: dist
	$(BIN)/pytest -m packaging

$(FLOOR)/.installed-stamp: pyproject.toml
	$(PYTHON) -m venv $(FLOOR)
	$(FLOOR)/bin/python -m pip install --quiet --upgrade pip uv
	$(FLOOR)/bin/uv pip install --python $(FLOOR)/bin/python --editable '.[test]' 'apache-airflow==$(FLOOR_AIRFLOW)'
	touch $@

test-floor: $(FLOOR)/.installed-stamp
	$(FLOOR)/bin/pytest

demo: venv
	$(BIN)/python scripts/demo.py

bench: venv
	$(BIN)/uv pip install --python $(BIN)/python --constraint constraints.txt --quiet --editable '.[test,bench]'
	$(BIN)/python bench/run.py

sandbox: venv
	$(BIN)/python -m airflow_sfi.sandbox --port 8080

clean:
	rm -rf $(VENV) $(FLOOR) .demo .pytest_cache .mypy_cache .ruff_cache dist build
