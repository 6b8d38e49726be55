# One-word entry points; CI calls `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench browser fashion-mnist clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU build; a bare `torch` would pull a CUDA build.
	$(BIN)/pip install -q "torch==2.13.0"
	# dev is everything (the estimators, board, ray, optuna, keras, lightning...); naming torch
	# again keeps any of them from moving it off the CPU build
	$(BIN)/pip install -q -e ".[dev]" "torch==2.13.0"
	touch $(STAMP)

# Debian's Chromium, for the tests that check generated pages in a real browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; browser tests will be skipped"; }

# Debian's Fashion-MNIST (MNIST's IDX format), for the CNN examples and the docs that run them.
fashion-mnist:
	@test -d /usr/share/datasets/fashion-mnist || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	  || echo "warning: could not install dataset-fashion-mnist; the CNN examples' docs tests will fail"; }

demo: $(STAMP)
	$(BIN)/python examples/hyperparams.py

test: $(STAMP) browser fashion-mnist
	$(BIN)/python -m pytest

# The edit-and-test loop: no example scripts, browser, Ray or servers (tests marked slow).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench scripts
	$(BIN)/ruff format --check src tests examples bench scripts
	$(BIN)/mypy

bench: $(STAMP)
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
