# The two commands every new user needs:
#   make dev    install what is needed and run the whole stack in the foreground
#   make test   install what is needed and run every check and test
# Everything installs from PyPI into two virtualenvs: .venv (the project) and
# .venv-litellm (the LiteLLM proxy, kept apart because it pins its own dependencies).

PYTHON ?= python3
VENV := .venv
LITELLM_VENV := .venv-litellm
PY := $(VENV)/bin/python
PIP_FLAGS := --disable-pip-version-check --no-input --progress-bar off

.PHONY: dev test install check lint format generate lock clean bench help dashboard browser

help:
	@echo "make dev       run the whole stack (embedded PostgreSQL unless DATABASE_URL is set)"
	@echo "make test      run all checks and tests"
	@echo "make bench     measure latency, throughput, streaming and DB work (BENCH_ARGS=--quick for a smoke run)"
	@echo "make dashboard build the admin dashboard (dashboard/dist) if a source changed (needs Node.js + npm)"
	@echo "make generate  regenerate generated/ and gateway/ from protos/"
	@echo "make lint      buf lint + format check, ruff, generated-code drift"
	@echo "make format    apply buf format and ruff format"
	@echo "make lock      re-pin requirements/*.lock from the current virtualenvs"
	@echo "make clean     remove virtualenvs and .data (embedded PostgreSQL data!)"

dev: install
	@$(PY) -m devstack.dashboard build || echo "==> WARNING: the admin dashboard is not built (see above); the rest of the stack starts anyway"
	$(PY) -m devstack

test: install check dashboard browser
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m bench $(BENCH_ARGS)

# The admin dashboard's bundle: npm ci (pinned by dashboard/package-lock.json) and
# tsc + vite build into dashboard/dist, each only when its inputs changed.
dashboard: $(VENV)/.installed
	$(PY) -m devstack.dashboard build

# The dashboard's browser tests drive Debian's Chromium; as root, install it if missing.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "==> installing Debian's chromium for the dashboard's browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "==> WARNING: /usr/bin/chromium is missing: the dashboard tests will fail (apt-get install -y chromium)"; \
	  fi; \
	fi

install: $(VENV)/.installed $(LITELLM_VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/dev.lock client/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (set PYTHON=python3.11)")'
	@echo "==> creating $(VENV) and installing the project (about a minute the first time)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip==26.3
	$(VENV)/bin/pip install $(PIP_FLAGS) -c requirements/dev.lock -e '.[dev]'
	$(VENV)/bin/pip install $(PIP_FLAGS) -c requirements/dev.lock -e ./client
	@touch $@

$(LITELLM_VENV)/.installed: requirements/litellm.lock
	@echo "==> creating $(LITELLM_VENV) and installing the LiteLLM proxy (about 700 MB, 1-2 minutes the first time)"
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip==26.3
	$(LITELLM_VENV)/bin/pip install $(PIP_FLAGS) -r requirements/litellm.lock
	@touch $@

check: install
	@echo "==> generated code is current"
	$(PY) scripts/generate.py --check
	@echo "==> buf lint and format"
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf format --diff --exit-code
	@echo "==> ruff"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

lint: check

format: install
	$(VENV)/bin/buf format -w
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

generate: install
	$(PY) scripts/generate.py

lock: install
	(echo "# Exact versions of everything in the project's virtualenv (.venv), used as pip constraints."; \
	 echo "# Regenerate with: make lock"; $(VENV)/bin/pip freeze --exclude-editable) > requirements/dev.lock
	(echo "# Exact versions of everything in the LiteLLM proxy's virtualenv (.venv-litellm)."; \
	 echo "# Regenerate with: make lock"; $(LITELLM_VENV)/bin/pip freeze) > requirements/litellm.lock

clean:
	rm -rf $(VENV) $(LITELLM_VENV) .data .pytest_cache .ruff_cache dashboard/node_modules dashboard/dist
