# Needs only python3 (3.10+) and make. `make test` and `make demo` build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Every runtime dependency at the lowest version pyproject.toml declares, tested in a second environment.
FLOOR := .venv-floor
# The older Airflow 3 releases, each at its newest patch in its own environment (.venv-airflow-3.0, ...),
# pinned by constraints/airflow-<minor>.txt. The newest release is .venv's (constraints.txt).
OLDER_AIRFLOWS := 3.0 3.1 3.2
# The drift check (make test-latest): each minor with the newest releases its pins allow, no lock.
LATEST_AIRFLOWS := 3.0 3.1 3.2 3.3
BENCH := .venv-bench

.PHONY: venv test test-deployment test-production soak services test-dist test-floor test-matrix test-airflow-3.3 \
	test-latest constraints dist check demo demo-feed sandbox bench clean

# With the s3-test group (the S3 landing test's amazon provider, s3fs and moto), in .venv only. botocore caps
# python-dateutil below 3: the lock's 4.0.0 overrides the cap (the S3 test passes with it).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python --constraint constraints.txt --editable . --group dev
	grep '^python-dateutil==' constraints.txt > $(VENV)/s3-test-overrides.txt
	$(BIN)/uv pip install --python $(BIN)/python --constraint constraints.txt \
		--override $(VENV)/s3-test-overrides.txt --group s3-test
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
	$(BIN)/uv pip install --python $(BIN)/python --constraint constraints.txt --quiet --editable . \
		--group dev --group production-test
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
# Each floor is also given as a constraint: lowest-direct alone lets a newer transitive dependency pull a
# direct one above its floor. The floor is Airflow 3.0, with the pins 3.0 needs (constraints/airflow-3.0.in).
$(FLOOR)/.installed-stamp: pyproject.toml constraints.txt constraints/airflow-3.0.in $(STAMP)
	rm -rf $(FLOOR)
	$(PYTHON) -m venv $(FLOOR)
	$(FLOOR)/bin/python -m pip install --quiet --upgrade pip uv
	grep -E '^(pytest|pytest-randomly|hypothesis|ruff|mypy|types-requests|twine)==' constraints.txt > $(FLOOR)/test-tools.txt
	$(BIN)/python scripts/check_floor.py --constraints > $(FLOOR)/floors.txt
	$(FLOOR)/bin/uv pip install --python $(FLOOR)/bin/python --resolution lowest-direct \
		--constraint $(FLOOR)/test-tools.txt --constraint $(FLOOR)/floors.txt \
		--constraint constraints/airflow-3.0.in --editable . --group dev
	$(FLOOR)/bin/python scripts/check_floor.py
	touch $@

test-floor: $(FLOOR)/.installed-stamp
	$(FLOOR)/bin/pytest

# One environment per older Airflow, created with .venv's uv: `make test-airflow-3.0` and so on.
.PRECIOUS: .venv-airflow-%/.installed-stamp
.venv-airflow-%/.installed-stamp: pyproject.toml constraints/airflow-%.txt $(STAMP)
	rm -rf .venv-airflow-$*
	$(BIN)/uv venv --quiet --python $(PYTHON) .venv-airflow-$*
	$(BIN)/uv pip install --quiet --python .venv-airflow-$*/bin/python --constraint constraints/airflow-$*.txt \
		--editable . --group dev
	touch $@

test-airflow-%: .venv-airflow-%/.installed-stamp
	.venv-airflow-$*/bin/pytest

test-airflow-3.3: venv
	$(BIN)/pytest

# The suite on every supported Airflow, and at the floors: the matrix of README's "Compatibility".
test-matrix: $(addprefix test-airflow-,$(OLDER_AIRFLOWS)) test-airflow-3.3 test-floor

# Drift: each minor in a fresh .venv-latest-<minor> WITHOUT its lock, with the newest releases that
# pyproject.toml and constraints/airflow-<minor>.in allow, running the smoke slice (tests/integration/test_smoke.py).
# A failure names the releases that differ from the lock (constraints/airflow-<minor>.txt; constraints.txt
# for 3.3): one of them broke it, and its pin belongs in the minor's .in file.
test-latest: venv
	@failed=""; \
	for minor in $(LATEST_AIRFLOWS); do \
		venv=.venv-latest-$$minor; started=$$(date +%s); \
		lock=constraints/airflow-$$minor.txt; [ -f $$lock ] || lock=constraints.txt; \
		echo "test-latest $$minor: building $$venv from pyproject.toml and constraints/airflow-$$minor.in"; \
		if rm -rf $$venv && $(BIN)/uv venv --quiet --python $(PYTHON) $$venv \
			&& $(BIN)/uv pip install --quiet --python $$venv/bin/python \
				--constraint constraints/airflow-$$minor.in --editable . --group dev; then \
			built=$$(date +%s); \
			if $$venv/bin/pytest -q -m smoke tests/integration/test_smoke.py; then \
				echo "test-latest $$minor: passed (install $$((built - started)) s, tests $$(($$(date +%s) - built)) s)"; \
				continue; \
			fi; \
		fi; \
		failed="$$failed $$minor"; \
		echo "test-latest $$minor: FAILED; the releases in $$venv that differ from $$lock:"; \
		$(BIN)/uv pip freeze --quiet --python $$venv/bin/python --exclude-editable | awk -F'==' \
			'NR == FNR { if ($$0 ~ /^[a-z0-9]/) lock[$$1] = $$2; next } \
			!($$1 in lock) { print "  " $$1 " " $$2 " (not in the lock)"; next } \
			lock[$$1] != $$2 { print "  " $$1 " " $$2 " (lock: " lock[$$1] ")" }' $$lock -; \
	done; \
	if [ -n "$$failed" ]; then echo "test-latest: failed on Airflow$$failed" >&2; exit 1; fi

# Re-resolve constraints/airflow-<minor>.txt from pyproject.toml and constraints/airflow-<minor>.in
# (the Airflow release and the pins it needs); asks the package index, so run it by hand.
constraints: venv
	for minor in $(OLDER_AIRFLOWS); do \
		$(BIN)/uv pip compile --quiet --python-version 3.11 --group dev --no-annotate \
			--custom-compile-command "make constraints" --constraint constraints/airflow-$$minor.in \
			--output-file constraints/airflow-$$minor.txt pyproject.toml || exit 1; \
	done

demo: venv
	$(BIN)/python scripts/demo.py

demo-feed: venv
	$(BIN)/python scripts/demo_feed.py

# Its own environment, so that providers-http never sits in .venv, where the suite runs.
$(BENCH)/.installed-stamp: pyproject.toml constraints.txt $(STAMP)
	rm -rf $(BENCH)
	$(BIN)/uv venv --quiet --python $(PYTHON) $(BENCH)
	$(BIN)/uv pip install --quiet --python $(BENCH)/bin/python --constraint constraints.txt --editable . \
		--group dev --group bench
	touch $@

bench: $(BENCH)/.installed-stamp
	$(BENCH)/bin/python bench/run.py

sandbox: venv
	$(BIN)/python -m airflow_sfi.sandbox --port 8080

clean:
	rm -rf $(VENV) $(FLOOR) $(BENCH) $(addprefix .venv-airflow-,$(OLDER_AIRFLOWS)) \
		$(addprefix .venv-latest-,$(LATEST_AIRFLOWS)) .demo .pytest_cache .mypy_cache .ruff_cache dist build
