# convlab: set-up and entry points. `make demo` and `make test` work on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Written after a successful install; re-install only when the dependencies change.
STAMP := $(VENV)/.convlab-installed

.PHONY: venv demo test bench lint

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev,torch,fast,cli]" -c constraints.txt
	touch $(STAMP)

demo: venv
	$(BIN)/convlab demo

# pytest-xdist on 2 workers; tests and doctests are configured in pyproject.toml.
test: venv
	$(BIN)/python -m pytest -n 2

# A measurement against torch, not a test; see the README's Performance section.
bench: venv
	$(BIN)/convlab bench

lint: venv
	$(BIN)/ruff check src tests
