# Two entry points: `make run` (set up, ingest the samples, start the app) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STORE ?= .tome
# The sample documents only: sample_docs/ also holds their README, generator and qa.jsonl, and
# its README.md would otherwise be ingested as a document.
SAMPLE_DOCS := $(wildcard sample_docs/*.pdf)

.PHONY: run test test-full install install-dev clean

# torch is pinned and installed first: 2.13.0 is the CPU wheel on disk here, while an
# unpinned torch (or a range resolved later) would pull a multi-GB CUDA build.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/tome ingest $(SAMPLE_DOCS) --store $(STORE)
	$(BIN)/tome search "termination for convenience" --store $(STORE) -k 3
	$(BIN)/tome serve --store $(STORE)

test: install-dev
	$(BIN)/python -m pytest

# The long-context and large-corpus checks that `make test` runs in bounded form.
test-full: install-dev
	$(BIN)/python -m pytest -m "slow or not slow"

clean:
	rm -rf $(VENV) $(STORE)
