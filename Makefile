# songrec: `make demo` and `make test` do all the set-up on a fresh machine (Python 3.11+, make).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two stamps: `make demo` installs the package only; `make test` adds the test extras (so
# `make test` after `make demo` installs what is missing, and a change to pyproject.toml
# reinstalls both).
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DATA ?= .songrec/sample
MODEL ?= .songrec/model
PORT ?= 8501
# setuptools warns on every editable install of a package mapped onto the project folder
# ("folders ... with the same name as your package may take precedence"): songrec has no
# folder named songrec, so the warning cannot apply; silence that one warning only.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: demo test bench bench-scale venv sample model app lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "songrec needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(QUIET_EDITABLE) $(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(QUIET_EDITABLE) $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

venv: $(STAMP)

$(DATA)/etl_report.json: $(STAMP)
	$(BIN)/songrec etl sample --out $(DATA) --force

$(MODEL)/manifest.json: $(DATA)/etl_report.json
	$(BIN)/songrec train --data $(DATA) --out $(MODEL) --grid quick --force

sample: $(DATA)/etl_report.json

model: $(MODEL)/manifest.json

## demo: install, build the synthetic sample, train (quick grid), start the app on 127.0.0.1:8501
demo: model
	$(BIN)/songrec app --model $(MODEL) --port $(PORT)

## test: lint and the whole test suite (real DuckDB, Surprise, Streamlit, BigQuery emulator, Chromium)
test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

## bench: speed and memory benchmarks (numbers, not pass/fail)
bench: $(TEST_STAMP)
	$(BIN)/python tests/bench/bench_etl.py
	$(BIN)/python tests/bench/bench_models.py
	$(BIN)/python tests/bench/bench_app.py

## bench-scale: ETL at 10M and 100M listens, training at 10k-1M songs (~80 min, ~30 GB disk;
## SCALE_ARGS=--quick: 1M and 10M listens, minutes). Not part of `make test`. docs/scale.md
bench-scale: $(TEST_STAMP)
	$(BIN)/python tests/bench/bench_scale.py $(SCALE_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf .songrec .pytest_cache .ruff_cache
