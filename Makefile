# Two entry points (see README): `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: setup demo test lint docs report clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[workflow,dev,slurm,docs]'
	touch $@

setup: $(VENV)/.installed

# Generate the demo cohort and run the whole analysis on it.
demo: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES) --report results/demo/report.html

lint: setup
	$(BIN)/ruff check nam_core scripts tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow

# Lint, unit tests, and the workflow tests (lint, dry run, a real small run).
test: lint
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -ra -m "not long"  # the slow workflow runs too

# The documentation site (docs/), warnings as errors, broken internal links included.
docs: setup
	$(BIN)/sphinx-build -W --keep-going -n -b html docs docs/_build/html

clean:
	rm -rf results .snakemake
