# The two commands of the README: `make run` (the demo) and `make test` (lint and the fast suite).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-dev

.PHONY: run test test-scenarios lint bench docs check-python clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "casework needs Python 3.11 or newer; found " + sys.version.split()[0])'

# The system packages beside the Python ones (Pango, HarfBuzz's subsetter, fontconfig and a CJK
# font for the PDF notices; poppler-utils for the tests): installed when run as root on Debian,
# otherwise the script prints the apt-get line and stops the build.
$(STAMP): setup.cfg pyproject.toml scripts/system-packages | check-python
	scripts/system-packages
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# Every benchmark scenario, each variant in fresh processes, beside its baseline
# (about 32 minutes; not part of `make test`, which runs a smoke run of each).
# BENCH="transition bulk" picks scenarios; BENCH_ARGS="--rounds 5" passes options.
bench: $(STAMP)
	$(PY) -m bench $(BENCH) $(BENCH_ARGS)

# The demo tour on casework.db, then the web application on it (Ctrl-C stops it);
# PORT=8080 make run picks another port, HOST=0.0.0.0 listens beyond this machine.
HOST ?= 127.0.0.1
PORT ?= 8000
run: $(STAMP)
	$(VENV)/bin/casework demo
	$(VENV)/bin/casework serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Both cores; the real-process scenarios (kill -9, signals, scheduler fleets, a real
# browser: Playwright driving Chromium) and the long ones are left to
# `make test-scenarios`, which CI runs after this.
test: $(STAMP) lint
	$(PY) -m pytest -n auto -m "not slow and not scenario and not browser" --durations=15

test-scenarios: $(STAMP)
	$(PY) -m pytest -n auto -m "slow or scenario or browser" --durations=15

# The reference pages in docs/ that are made from the code (tests check they are current).
docs: $(STAMP)
	$(PY) -m casework.reference

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
