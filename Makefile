# nasoa-study: the two commands of the README.
#   make reproduce   set up .venv and regenerate every report (PROFILE=laptop by default)
#   make test        unit tests + every notebook under nbval at the smoke profile
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= laptop
ONLY ?=
SHARED_DATA := $(abspath ../shared/datasets)
export NASOA_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)
SMOKE_STORE := $(CURDIR)/build/smoke-store
SMOKE_NOTEBOOKS := build/smoke-notebooks

.PHONY: setup reproduce test unit notebooks-smoke benchmarks clean-smoke

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# local CPU-capable build; a bare `torch` requirement would download several GB
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

reproduce: setup
	$(VENV)/bin/nasoa reproduce --profile $(PROFILE) $(if $(ONLY),--only $(ONLY),)

# One pytest run: unit tests, then the notebooks (parameterised to `smoke` by papermill
# --prepare-only, executed by nbval-lax) against a fresh store inside build/.
test: setup clean-smoke
	NASOA_STORE=$(SMOKE_STORE) $(VENV)/bin/nasoa prepare-notebooks --profile smoke --out $(SMOKE_NOTEBOOKS)
	NASOA_STORE=$(SMOKE_STORE) $(PY) -m pytest tests $(SMOKE_NOTEBOOKS) --nbval-lax -p no:cacheprovider

clean-smoke:
	rm -rf $(SMOKE_STORE) $(SMOKE_NOTEBOOKS) reports/smoke

benchmarks: setup
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done
