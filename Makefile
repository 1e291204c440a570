# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint format bench clean

$(BIN)/python:
	@echo "== creating $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# torch first, spelled exactly, so pip takes the CPU build instead of a multi-GB CUDA one.
# pip's own progress shows: the first install downloads a few hundred MB.
$(STAMP): $(BIN)/python pyproject.toml
	@echo "== installing torch (CPU) and Digest into $(VENV)"
	$(BIN)/pip install --progress-bar on torch==2.13.0
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	BIN=$(BIN) .ci/feedparser-corpus
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/digest demo

# The suite runs on SQLite, then again on PostgreSQL: on the server DIGEST_TEST_PG names, else on a
# throwaway one that .ci/with-postgres starts when PostgreSQL's binaries are installed.
# Slow tests (real model, ONNX export, distillation, the whole demo) run only with DIGEST_SLOW=1.
test: $(STAMP)
	$(BIN)/ruff check digest tests bench
	DIGEST_TEST_PG= $(BIN)/python -m pytest -q
	@if [ -n "$$DIGEST_TEST_PG" ]; then \
		echo "== again on PostgreSQL ($$DIGEST_TEST_PG)"; \
		$(BIN)/python -m pytest -q; \
	elif ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		PYTHON=$(BIN)/python .ci/with-postgres $(BIN)/python -m pytest -q; \
	else echo "== PostgreSQL pass skipped: no /usr/lib/postgresql/*/bin (apt install postgresql) and no DIGEST_TEST_PG"; fi

lint: $(STAMP)
	$(BIN)/ruff check digest tests bench
	$(BIN)/ruff format --check digest tests bench

format: $(STAMP)
	$(BIN)/ruff format digest tests bench

bench: $(STAMP)
	$(BIN)/python bench/demo

clean:
	rm -rf workspace .pytest_cache .ruff_cache
