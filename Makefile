# Everything runs from a local virtualenv that these targets create on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test bench lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install  ## web + worker with embedded defaults (own Redis under ./var, emails to ./var/outbox)
	$(PY) scripts/run_local.py

test: install  ## the whole suite; starts its own redis-server on a free port
	$(PY) -m pytest -q

bench: install  ## receive-path and notice throughput, each as a ratio to a baseline in the same run
	$(PY) bench/run.py

lint: install
	$(VENV)/bin/ruff check receiver worker.py tests bench scripts
	$(VENV)/bin/mypy receiver worker.py

clean:
	rm -rf $(VENV) var .pytest_cache
