# urbaneo: the environment, the pipeline run, the tests.
#
#   make venv                   create .venv from envs/requirements.lock (once)
#   make run [CITIES="a b"] [CORES=4] [ARGS="--dry-run"]
#   make test [PYTEST_ARGS="-m 'not integration'"]   (unit tests only: no Snakemake run)
#   make lint                   snakemake --lint
#   make bench [BENCH_ARGS="--repeats 5"]   benchmarks (bench/README.md)
#   make lock                   re-resolve envs/requirements.in into envs/requirements.lock
#   make clean | distclean
#
# GNU make; recipes are indented with tabs.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
LOCK        := envs/requirements.lock
PROFILE     ?= workflow/profiles/default
CORES       ?= 2
CITIES      ?=
ARGS        ?=
PYTEST_ARGS ?=
LOCK_VENV   ?= /tmp/urbaneo-lock-venv

empty :=
space := $(empty) $(empty)
comma := ,
# CITIES="berlin paris" (or "berlin,paris") -> --config cities=[berlin,paris]
CITIES_LIST := $(subst $(space),$(comma),$(strip $(subst $(comma),$(space),$(CITIES))))
CONFIG_ARGS := $(if $(strip $(CITIES)),--config 'cities=[$(CITIES_LIST)]')

.DEFAULT_GOAL := help
.PHONY: help venv run test lint bench lock clean distclean

help:
	@sed -n '2,10s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

# --- environment -------------------------------------------------------------

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	@$@ -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  echo "WARNING: $(LOCK) was resolved for Python 3.11; $$($@ --version) may not install it (try PYTHON=python3.11)" >&2

# Reinstalls only when the lock or pyproject.toml is newer than the stamp.
# No pip self-upgrade; urbaneo itself goes in editable, without dependencies
# and without build isolation (setuptools comes from the lock).
$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install -r $(LOCK)
	$(BIN)/pip install --no-deps --no-build-isolation -e .
	@touch $@

# --- pipeline ----------------------------------------------------------------

run: venv
	$(BIN)/snakemake --workflow-profile $(PROFILE) --cores $(CORES) all $(CONFIG_ARGS) $(ARGS)
	@$(BIN)/python -c 'import yaml; c = yaml.safe_load(open("config/config.yaml")) or {}; \
	  print("Outputs:"); \
	  print("  raw inputs  resources/raw/<city>/ (generated cities), resources/ingest/<city>/inventory.json"); \
	  print("  aligned     resources/align/<city>/<source>.zarr, resources/tiles/<city>/<model>.parquet"); \
	  print("  published   results/%s/catalog.json (STAC), results/%s/<city>/inputs/*.png, results/%s/<city>/<product>/" % ((c.get("run", "demo"),) * 3)); \
	  print("  logs        logs/<city>/, benchmarks/<city>/")'

lint: venv
	$(BIN)/snakemake --lint

# --- benchmarks --------------------------------------------------------------

bench: venv
	bench/run $(BENCH_ARGS)

# --- tests -------------------------------------------------------------------

# pytest options (testpaths, markers, -ra --strict-markers) are in pyproject.toml.
# Exit code 5 means no test was collected: that is a failure, not a pass.
test: venv
	@rc=0; $(BIN)/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then \
	  echo "*** make test: pytest collected NO tests (exit code 5): failing." >&2; \
	fi; \
	exit $$rc

# --- lock --------------------------------------------------------------------

# Resolve envs/requirements.in in a throw-away venv and write the full freeze
# (setuptools kept, pip dropped) under the lock's comment header.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -r envs/requirements.in
	{ sed -n '/^#/!q;p' $(LOCK) 2>/dev/null; \
	  $(LOCK_VENV)/bin/pip freeze --all --exclude-editable | grep -Ev '^(pip|wheel|distribute)=='; \
	} > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(LOCK_VENV)
	@echo "Updated $(LOCK); now bring envs/urbaneo.yaml to the same versions (make test checks)."

# --- cleaning ----------------------------------------------------------------

clean:
	rm -rf resources .snakemake
	@if [ -d results ]; then \
	  find results -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} + ; \
	fi

distclean: clean
	rm -rf $(VENV)
