# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-dev

.PHONY: run test lint bench check-python clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "casework needs Python 3.11 or newer; found " + sys.version.split()[0])'

$(STAMP): setup.cfg pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# Every benchmark scenario, each variant in fresh processes, beside its baseline
# (about 25 minutes; not part of `make test`, which runs a smoke run of each).
# BENCH="transition bulk" picks scenarios; BENCH_ARGS="--rounds 5" passes options.
bench: $(STAMP)
	$(PY) -m bench $(BENCH) $(BENCH_ARGS)

run: $(STAMP)
	$(VENV)/bin/casework demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) lint
	$(PY) -m pytest --durations=15

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
