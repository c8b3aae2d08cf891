# mmkit: `make lab` opens the course, `make test` runs every test and notebook.
# Each target creates/updates the virtual environment first, so these are the only commands you need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mmkit-installed
# the platform's torch build; 2.13.0 is taken from a local wheel when one is configured
TORCH  ?= torch==2.13.0
TEST_ENV := HF_HUB_OFFLINE=1 TQDM_DISABLE=1 MPLBACKEND=Agg PYTHONHASHSEED=0
PYTEST_ARGS ?=

.PHONY: help install lab test test-fast demo models clean

help:
	@echo "make lab     open JupyterLab on notebooks/00_start_here.ipynb"
	@echo "make test    run the tests and execute every notebook (offline)"
	@echo "make demo    headless tour of the bundled models; results in out/"
	@echo "make models  rebuild the bundled checkpoints in data/models/ (CPU, deterministic)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)" || $(PY) -m pip install -q torch
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/00_start_here.ipynb

test: $(STAMP)
	@$(TEST_ENV) $(PY) -m pytest -q tests notebooks --nbval-lax --nbval-current-env $(PYTEST_ARGS); \
	rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-fast: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q tests -x $(PYTEST_ARGS)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(PY) scripts/demo.py --out out

models: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) scripts/build_models.py --out data/models

clean:
	rm -rf $(VENV) out .pytest_cache
