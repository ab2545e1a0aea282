# corpusbridge — one-step install, demo, tests, benchmarks.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export CORPUSBRIDGE_HOME ?= $(CURDIR)/.corpusbridge
export PYTHONUNBUFFERED := 1

.PHONY: install demo test lint unit sandbox-up sandbox-down bench clean

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

test: install lint
	$(BIN)/python -m pytest

bench: install
	@echo "see bench/README.md for the individual benchmarks"

clean:
	rm -rf $(VENV) .corpusbridge .pytest_cache .ruff_cache

# --- concept extraction ---
.PHONY: bench-extract
# flashtext is a benchmark peer only, never a dependency of the package.
bench-extract: install
	uv pip install -q --python $(BIN)/python "flashtext==2.7"
	$(BIN)/python bench/extract.py
