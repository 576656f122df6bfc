# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# the CPU build of torch (see constraints-cpu.txt); a GPU user installs their own torch first
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints-cpu.txt

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints-cpu.txt | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints-cpu.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/qnnlab compare logistic --seeds 5 --results results

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	OMP_NUM_THREADS=1 $(BIN)/pytest -n 2  # two workers, one thread each: no spin-waiting on 2 cores

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_step.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_packed.py --out docs/benchmarks_packed.md
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_certify.py --out docs/benchmarks_certify.md  # ~15 min

clean:
	rm -rf $(VENV) results
