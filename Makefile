# trainguard: `make demo` shows the product, `make test` checks it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

# torch first, pinned: 2.13.0 is a CPU wheel that lies on disk here; a bare
# `torch` would pull a multi-GB CUDA build from the registry.
# setup.py and the C source too: a changed extension is rebuilt by the editable install.
$(STAMP): pyproject.toml setup.py src/trainguard/_speedups.c src/trainguard/_speedups_tb.c src/trainguard/_speedups_tb.h
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/trainguard demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/trainguard/*.so
