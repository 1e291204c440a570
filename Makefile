# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, spelled exactly, so pip takes the CPU build instead of a multi-GB CUDA one.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	BIN=$(BIN) .ci/feedparser-corpus
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/digest demo

# The suite runs on SQLite, then again on PostgreSQL when DIGEST_TEST_PG names a server (.ci/run starts one).
test: $(STAMP)
	$(BIN)/ruff check digest tests bench
	DIGEST_TEST_PG= $(BIN)/python -m pytest -q
	@if [ -n "$$DIGEST_TEST_PG" ]; then \
		echo "== again on PostgreSQL ($$DIGEST_TEST_PG)"; \
		$(BIN)/python -m pytest -q; \
	else echo "== DIGEST_TEST_PG not set: PostgreSQL run skipped (.ci/run sets it)"; fi

lint: $(STAMP)
	$(BIN)/ruff check digest tests bench
	$(BIN)/ruff format --check digest tests bench

format: $(STAMP)
	$(BIN)/ruff format digest tests bench

bench: $(STAMP)
	$(BIN)/python bench/demo

clean:
	rm -rf workspace .pytest_cache .ruff_cache
