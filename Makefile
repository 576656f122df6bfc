# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# the CPU build of torch (see constraints-cpu.txt); a GPU user installs their own torch first
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints-cpu.txt

.PHONY: run test lint bench clean compiler

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints-cpu.txt | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints-cpu.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $(VENV)/.installed $@

# a C compiler for the fused optimizer steps (qnnlab/optim/_kernels.py; without one they run eagerly)
compiler:
	@command -v "$${CC:-cc}" >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null; } || \
	  echo "warning: no C compiler and none could be installed: the optimizers run their eager path"

run: $(VENV)/.installed compiler
	$(BIN)/qnnlab compare logistic --seeds 5 --results results

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint compiler
	OMP_NUM_THREADS=1 $(BIN)/pytest -n 2  # two workers, one thread each: no spin-waiting on 2 cores

bench: $(VENV)/.installed-dev compiler
	$(BIN)/python benchmarks/bench_step.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_train.py --out docs/benchmarks_train.md
	$(BIN)/python benchmarks/bench_packed.py --out docs/benchmarks_packed.md

clean:
	rm -rf $(VENV) results
