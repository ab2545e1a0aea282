# corpusbridge — one-step install, demo, tests, benchmarks.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export CORPUSBRIDGE_HOME ?= $(CURDIR)/.corpusbridge
export PYTHONUNBUFFERED := 1

.PHONY: install demo test lint unit sandbox-up sandbox-down sandbox-status bench clean

# The venv is rebuilt when a dependency list changes; otherwise `make install` is a no-op.
$(VENV)/.installed: pyproject.toml requirements.txt
	command -v uv >/dev/null 2>&1 || $(PY) -m pip install -q "uv==$(UV_VERSION)"
	test -x $(BIN)/python || uv venv -q -p $(PY) $(VENV)
	uv pip install -q --python $(BIN)/python -r requirements.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python scripts/demo.py

lint: install
	$(BIN)/ruff check .

test: install lint $(if $(filter 0,$(HPC_SANDBOX)),,sandbox-up)
	$(BIN)/python -m pytest

bench: install
	@echo "see bench/README.md for the individual benchmarks"

clean:
	rm -rf $(VENV) .corpusbridge .pytest_cache .ruff_cache

# --- HPC sandbox (loopback SLURM + sshd on 127.0.0.1:2222; scripts/hpc-sandbox.sh) ---
# `make test` brings it up (root installs the apt packages if missing); `make test HPC_SANDBOX=0` skips that
# and the slurm-marked tests then skip with the reason.
sandbox-up:
	scripts/hpc-sandbox.sh up

sandbox-down:
	scripts/hpc-sandbox.sh down

sandbox-status:
	scripts/hpc-sandbox.sh status

# --- SLURM operator (issue 3) ---
# Shared-poller cost vs job count against the loopback sandbox (bench/RESULTS.md, "## SLURM polling").
bench-polling: install sandbox-up
	$(BIN)/python bench/polling.py
