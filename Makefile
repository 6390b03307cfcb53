# Needs only python3 (3.10+) and make. `make test` and `make demo` build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Every runtime dependency at the lowest version pyproject.toml declares, tested in a second environment.
FLOOR := .venv-floor

.PHONY: venv test test-deployment test-dist test-floor dist check demo demo-feed sandbox bench clean

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
