# Needs only python3 (3.10+) and make. `make test` and `make demo` build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv test test-deployment check demo sandbox clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --constraint constraints.txt --editable '.[test]'
	touch $(STAMP)

venv: $(STAMP)

check: venv
	$(BIN)/ruff check airflow_sfi tests example_dags scripts
	$(BIN)/ruff format --check airflow_sfi tests example_dags scripts
	$(BIN)/mypy

test: check
	$(BIN)/pytest

test-deployment: venv
	$(BIN)/pytest -m deployment -s

demo: venv
	$(BIN)/python scripts/demo.py

sandbox: venv
	$(BIN)/python -m airflow_sfi.sandbox --port 8080

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache dist build
