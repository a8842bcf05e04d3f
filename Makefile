# SCITI developer loop. Every target sets up what it needs, idempotently, on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHARED ?= ../shared/data
DEMO   := sciti-data/demo-small
export SCITI_CODELISTS_DIR ?= $(SHARED)/codelists

# pipefail: a failing step fails the target even when its output is filtered.
SHELL := bash
.SHELLFLAGS := -o pipefail -ec
# The package index's per-package notices are noise for a newcomer; real errors still show.
QUIET_PIP := grep -v '^WARNING: Location' || true

VENDOR := src/sciti/web/static/vendor/htmx.min.js

.PHONY: run test lint bench venv clean migration browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | { $(QUIET_PIP); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | { $(QUIET_PIP); }
	touch $(STAMP)

venv: $(STAMP)

# Front-end libraries from the npm registry, copied into the package; served by SCITI (no CDN).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENDOR): node_modules/.package-lock.json | $(STAMP)
	$(BIN)/python -m sciti.web.assets

# Browser tests drive Debian's Chromium; install it (and CJK fonts for the Chinese pages) once.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk >/dev/null; } || \
	  { echo "chromium is missing: install Debian's chromium package (needs root)"; exit 1; }

run: $(STAMP) $(VENDOR)
	$(BIN)/sciti init --if-missing
	$(BIN)/sciti ingest kcs $(SHARED)/kcs/train.csv $(SHARED)/kcs/valid.csv
	$(BIN)/sciti ingest wco-dec $(SHARED)/wco/samples
	test -f $(DEMO)/ground_truth/manifest.json || \
	  $(BIN)/sciti demo generate --scale small --seed 1 --workers 2 --out $(DEMO) --overwrite
	$(BIN)/sciti demo load $(DEMO)
	$(BIN)/sciti demo setup
	$(BIN)/sciti lake maintain
	$(BIN)/sciti serve --host 127.0.0.1 --port 8000

test: $(STAMP) $(VENDOR) browser
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

# Regenerates the (single, pre-release) initial migration from src/sciti/ops/models.py.
migration: $(STAMP)
	$(BIN)/python -m sciti.ops.makemigration

clean:
	rm -rf $(VENV) sciti-data .pytest_cache .mypy_cache .ruff_cache node_modules src/sciti/web/static/vendor
