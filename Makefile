# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# the CPU build of torch (see constraints-cpu.txt); a GPU user installs their own torch first
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints-cpu.txt

# Debian packages, each installed only when missing: python3-venv (ensurepip) for the venv; for the
# tests a real headless Chromium (the report tests) and Debian's Fashion-MNIST IDX files (its loader test)
APT_GET ?= apt-get
CHROMIUM ?= chromium
FASHION_MNIST ?= /usr/share/datasets/fashion-mnist
VENV_PACKAGES = $(if $(shell $(PYTHON) -c 'import ensurepip' 2>/dev/null && echo ok),,python3-venv)
TEST_PACKAGES = $(if $(shell command -v $(CHROMIUM)),,chromium) $(if $(wildcard $(FASHION_MNIST)),,dataset-fashion-mnist)

# `$(call apt_install,PACKAGES)`: nothing when PACKAGES is empty; else apt-get as root, through sudo
# when not root, or one line saying what to install
define apt_install
@set -e; pkgs="$(strip $(1))"; [ -n "$$pkgs" ] || exit 0; \
if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
else echo "make: missing Debian packages; as root, run: apt-get install $$pkgs" >&2; exit 1; fi; \
command -v $(APT_GET) >/dev/null || { echo "make: no apt-get here; install these (Debian names): $$pkgs" >&2; exit 1; }; \
echo "make: installing $$pkgs" >&2; \
$$sudo $(APT_GET) update -qq; \
$$sudo env DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq $$pkgs
endef

.PHONY: run test lint bench clean system-test compiler

$(BIN)/python:
	$(call apt_install,$(VENV_PACKAGES))
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints-cpu.txt | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints-cpu.txt | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $(VENV)/.installed $@

system-test:
	$(call apt_install,$(TEST_PACKAGES))

# a C compiler for the fused optimizer steps (qnnlab/optim/_kernels.py; without one they run eagerly)
CC_PACKAGES = $(if $(shell command -v $(CC) || command -v gcc),,gcc libc6-dev)
compiler:
	$(call apt_install,$(CC_PACKAGES))

# Experiment I of the ASkewSGD paper (5 seeds) and breast cancer over 5 problems (data splits): both
# enumerable; one batch of runs on two worker processes, a table each
run: $(VENV)/.installed compiler
	$(BIN)/qnnlab compare logistic breast-cancer --results results --jobs 2

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: system-test compiler lint
	OMP_NUM_THREADS=1 $(BIN)/pytest -n 2  # two workers, one thread each: no spin-waiting on 2 cores

bench: $(VENV)/.installed-dev compiler
	$(BIN)/python benchmarks/bench_step.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_step.py --threads 0 --out docs/benchmarks_threads.md  # every core
	$(BIN)/python benchmarks/bench_train.py --out docs/benchmarks_train.md
	$(BIN)/python benchmarks/bench_packed.py --out docs/benchmarks_packed.md
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_certify.py --out docs/benchmarks_certify.md  # ~15 min

clean:
	rm -rf $(VENV) results
