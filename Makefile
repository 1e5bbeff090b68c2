# convlab: set-up and entry points. `make demo` and `make test` work on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Written after a successful install; re-install only when the dependencies change.
STAMP := $(VENV)/.convlab-installed

.PHONY: venv demo serve test bench lint system-packages

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev,torch,fast,cli,train,viz,web]" -c constraints.txt
	touch $(STAMP)

demo: venv
	$(BIN)/convlab demo

# The explorer on http://127.0.0.1:8000/ (Ctrl-C stops it).
serve: venv
	$(BIN)/convlab serve

# Debian packages some tests use (the full Fashion-MNIST; chromium, which Playwright drives for the explorer): installed when this runs as root on Debian
# and they are missing; elsewhere (or offline) those tests skip and say why.
DEBIAN_PACKAGES := dataset-fashion-mnist chromium
system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    ! dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES)) \
	    || echo "warning: could not install $(DEBIAN_PACKAGES); the tests that need them will skip"; fi

# pytest-xdist on 2 workers; tests and doctests are configured in pyproject.toml.
test: venv system-packages
	$(BIN)/python -m pytest -n 2

# A measurement against torch, not a test; see the README's Performance section.
bench: venv
	$(BIN)/convlab bench

lint: venv
	$(BIN)/ruff check src tests
