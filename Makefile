# mmkit: `make lab` opens the course, `make test` runs every test and notebook.
# Each target creates/updates the virtual environment first, so these are the only commands you need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# an editable install on a path entry (setuptools' "compat" mode), not only an import hook: a clone named mmkit/ in the
# folder a script runs from is otherwise imported as an empty namespace package, ahead of the hook (two outside testers)
EDITABLE ?= --config-settings editable_mode=compat
STAMP  := $(VENV)/.mmkit-installed
# the platform's torch build; 2.13.0 is taken from a local wheel when one is configured
TORCH  ?= torch==2.13.0
TEST_ENV := HF_HUB_OFFLINE=1 TQDM_DISABLE=1 MPLBACKEND=Agg PYTHONHASHSEED=0 MMKIT_QUICK=1
PYTEST_ARGS ?=
# a second environment with ipywidgets 7.7.1 (what Colab pins) for `make test-widgets7`; inside .venv, so ignored
IPYW7  ?= $(VENV)/ipyw7
# a simulated Hugging Face hub (random weights under the registry's real hub ids) for `make test-hub`; build/ is ignored
HUB    ?= build/hub
# notebooks `make test-hub` leaves out, by name (each is said in its output); none today
HUB_SKIP ?=
# a second environment pinned to Colab's versions (requirements-colab.txt) for `make test-colab`; inside .venv, so ignored
COLAB  ?= $(VENV)/colab
# the unit tests `make test-colab` runs under Colab's versions (the speed-up tests among them)
# (the bundled models' known answers, tasks, maps, speed-ups, registry, hub, tokenizers, panels, Colab setup,
# fine-tuning's checks and data reading, the words check, wide pictures)
COLAB_TESTS ?= tests/test_speedups.py tests/test_config.py tests/test_models.py tests/test_hub.py tests/test_tasks.py \
  tests/test_attention.py tests/test_attention_blip2.py tests/test_bundled_blip.py tests/test_bundled_dual.py \
  tests/test_bundled_vilt.py tests/test_tokenizers.py tests/test_widgets.py tests/test_colab_setup.py \
  tests/test_finetune_checks.py tests/test_finetune_csv.py tests/test_finetune_panel.py tests/test_domain_words.py \
  tests/test_aspect.py tests/test_framing.py tests/test_maps_given.py tests/test_messages_f.py tests/test_metrics_checks.py \
  tests/test_exercises_checks.py tests/test_turns.py tests/test_hues.py tests/test_centre_crop.py tests/test_maps_q.py \
  tests/test_checks_g.py tests/test_leftovers_f.py tests/test_domain_repaint.py tests/test_progress.py \
  tests/test_notices_t.py tests/test_domain_explained.py tests/test_pointing_ties.py tests/test_crowd_colours.py tests/test_forms.py tests/test_tiny_pictures.py tests/test_grey_pictures.py tests/test_small_beside.py \
  tests/test_plain_drawn.py tests/test_words.py
VOILA_ARGS ?=
LAB_ARGS ?=
# `make student REPO=https://github.com/you/fork` points the student notebooks' Colab badges and setup cells at a fork
REPO ?=
# Debian's chromium for `make test-browser` (Playwright drives it; no browser download)
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install lab test test-fast demo models clean app test-widgets7 student instructor test-browser test-hub \
  test-colab book

help:
	@echo "make lab     open JupyterLab on notebooks/00_start_here.ipynb"
	@echo "make test    run the tests and execute every notebook (offline)"
	@echo "make demo    headless tour of the bundled models; results in out/"
	@echo "make models  rebuild the bundled checkpoints in data/models/ (CPU, bit-identical, about 55 min on 2 cores)"
	@echo "make app     serve the captioning app (notebooks/11_caption_app.ipynb) as a web page with Voila"
	@echo "make test-widgets7  run the panel tests under ipywidgets 7.7.1 (Colab's version) in $(IPYW7)"
	@echo "make test-hub       the pretrained path on a simulated hub (random weights under the real hub ids, $(HUB))"
	@echo "make test-colab     unit tests and the simulated-hub notebooks under Colab's versions (requirements-colab.txt)"
	@echo "make student        student notebooks (solutions and ci-check cells removed) in build/student/ and on branch student; REPO=url for a fork"
	@echo "make book           the course as a web site in out/book/ from the executed notebooks (links and figures checked)"
	@echo "make instructor     instructor notebooks (solutions shown, no markers) in build/instructor/"
	@echo "make test-browser   real-browser tests (chromium + Playwright): JupyterLab runs 00, Voila app clicked through"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)" || $(PY) -m pip install -q torch
	$(PY) -m pip install -q -e ".[dev]" $(EDITABLE) || $(PY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/00_start_here.ipynb $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

# two phases, each timed: the unit tests, then the notebooks; each writes a JUnit file to build/test-times/ (per-test
# times; `python scripts/notebook_times.py build/test-times/notebooks.xml` makes the per-notebook table). Both phases
# always run; the exit status is the first failing phase's (pytest's "no tests collected", 5, counts as success).
test: $(STAMP)
	@mkdir -p build/test-times; rc=0; t0=$$(date +%s); \
	for phase in "unit tests|tests" "notebooks|notebooks"; do \
	  name=$${phase%%|*}; dir=$${phase#*|}; start=$$(date +%s); \
	  $(TEST_ENV) $(PY) -m pytest -q $$dir --nbval-lax --nbval-current-env --junitxml=build/test-times/$$dir.xml \
	    $(PYTEST_ARGS); r=$$?; \
	  if [ $$r -eq 5 ]; then echo "pytest collected no $$name"; r=0; fi; \
	  echo "make test: $$name took $$(( $$(date +%s) - start )) s (exit $$r; make test so far $$(( $$(date +%s) - t0 )) s)"; \
	  if [ $$r -ne 0 ] && [ $$rc -eq 0 ]; then rc=$$r; fi; \
	done; exit $$rc

test-fast: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q tests -x $(PYTEST_ARGS)

# fine-tuning at real size (BLIP-base, CLIP-B/32, ViLT, random weights, with and without LoRA): minutes on a 2-core CPU
test-finetune-real: $(STAMP)
	MMKIT_FINETUNE_REAL=1 $(TEST_ENV) $(PY) -m pytest -q tests/test_finetune_real.py $(PYTEST_ARGS)

# collection jobs at full size: the resume test over 1,000 images with 10 SIGKILLs, the Ray engine on a local cluster
.PHONY: test-scale
test-scale: $(STAMP)
	MMKIT_SCALE_TESTS=1 $(TEST_ENV) $(PY) -m pytest -q tests/test_jobs_resume.py tests/test_jobs_ray.py $(PYTEST_ARGS)

# the classroom load test at CI size without a browser: 6 protocol-level students for 1 minute against make classroom
# (about 2 minutes; the full size, 30 students for 5 minutes against make classroom and make app: benchmarks/classroom.py)
.PHONY: test-classroom
test-classroom: $(STAMP)
	MMKIT_CLASSROOM_LOAD=1 $(TEST_ENV) $(PY) -m pytest -q tests/test_classroom.py $(PYTEST_ARGS)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 MPLBACKEND=Agg $(PY) scripts/demo.py --out out

models: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) scripts/build_models.py --out data/models

app: $(STAMP)
	@$(PY) -c "import voila" 2>/dev/null || $(PY) -m pip install -q -e ".[app]" $(EDITABLE)
	MPLBACKEND=Agg $(VENV)/bin/voila notebooks/11_caption_app.ipynb $(VOILA_ARGS)

# `make classroom`: the caption app for a whole class from one machine (docs/CLASSROOM.md): one shared model process
# and a pool of POOL preheated Voila kernels that call it; CLASSROOM_ARGS="--ip 0.0.0.0" serves the classroom network
# POOL above the class size: a visitor who finds the pool empty waits for Voila's refill (181 s measured)
POOL ?= 40
CLASSROOM_ARGS ?=
.PHONY: classroom
classroom: $(STAMP)
	@$(PY) -c "import voila" 2>/dev/null || $(PY) -m pip install -q -e ".[app]" $(EDITABLE)
	MPLBACKEND=Agg $(PY) -m mmkit.classroom --pool $(POOL) $(CLASSROOM_ARGS)

test-widgets7: $(STAMP)
	@test -x $(IPYW7)/bin/python || $(PY) -m venv $(IPYW7)
	@$(IPYW7)/bin/python -c "import ipywidgets, torch, mmkit, pytest, hypothesis, av, filelock; assert ipywidgets.__version__ == '7.7.1'" 2>/dev/null || \
	  { { $(IPYW7)/bin/python -m pip install -q "$(TORCH)" || $(IPYW7)/bin/python -m pip install -q torch; } && \
	    $(IPYW7)/bin/python -m pip install -q -e ".[video]" $(EDITABLE) "ipywidgets==7.7.1" "pytest>=8" "hypothesis>=6"; }
	@$(IPYW7)/bin/python -c "import ipywidgets; print('ipywidgets', ipywidgets.__version__)"
	$(TEST_ENV) $(IPYW7)/bin/python -m pytest -q tests/test_widgets.py tests/test_attention_explorer.py tests/test_fusion_lab.py \
	  tests/test_annotation_panel.py tests/test_safety.py tests/test_video_panel.py tests/test_notices.py \
	  tests/test_fuzz_surfaces.py tests/test_head_view.py tests/test_finetune_panel.py tests/test_classroom.py \
  tests/test_progress.py tests/test_notices_t.py \
	  -W ignore::DeprecationWarning $(PYTEST_ARGS)

# The pretrained path: every family name resolves to its real hub id through a simulated hub (random weights), and
# the notebooks that load family models run their pretrained (`else:`) branches; quality asserts sit under
# `if BUNDLED:` and are skipped there, which the last line says.
test-hub: $(STAMP)
	@HF_HUB_OFFLINE=1 $(PY) -m mmkit.testing hub $(HUB)
	$(TEST_ENV) HF_HUB_CACHE=$(abspath $(HUB)) MMKIT_SIMULATED_HUB=$(abspath $(HUB)) $(PY) -m pytest -q \
	  tests/test_hub_path.py $$($(PY) -m mmkit.testing notebooks notebooks --skip $(HUB_SKIP)) --nbval-lax --nbval-current-env $(PYTEST_ARGS)
	@$(PY) -m mmkit.testing skipped $$($(PY) -m mmkit.testing notebooks notebooks --skip $(HUB_SKIP))

# Colab's versions (requirements-colab.txt, with the date they were read and what cannot be matched here) in a second
# environment, rebuilt when the pins change; torch is the platform's CPU build, as for `make test-widgets7`; the
# extras the notebooks name in their setup cells (scripts/colab_setup.py installs them on Colab). Runs the unit tests
# that touch transformers or the widgets (the speed-up tests among them) and the simulated-hub notebooks.
test-colab: $(STAMP)
	@test -x $(COLAB)/bin/python || $(PY) -m venv $(COLAB)
	@cmp -s requirements-colab.txt $(COLAB)/.pins 2>/dev/null || \
	  { { $(COLAB)/bin/python -m pip install -q "$(TORCH)" || $(COLAB)/bin/python -m pip install -q torch; } && \
	    $(COLAB)/bin/python -m pip install -q -e ".[metrics,video,finetune,index]" $(EDITABLE) -r requirements-colab.txt "nbval>=0.11" "hypothesis>=6" \
	      "nbformat>=5" "nbclient>=0.10" && cp requirements-colab.txt $(COLAB)/.pins; }
	@$(COLAB)/bin/python -c "import sys, transformers, ipywidgets, numpy, PIL, matplotlib, torch; \
	  print('Colab pins:', 'python', sys.version.split()[0], 'transformers', transformers.__version__, 'ipywidgets', \
	  ipywidgets.__version__, 'numpy', numpy.__version__, 'pillow', PIL.__version__, 'matplotlib', matplotlib.__version__, \
	  'torch', torch.__version__)"
	$(TEST_ENV) MMKIT_EXPECT_TRANSFORMERS=$$(sed -n 's/^transformers==//p' requirements-colab.txt) \
	  $(COLAB)/bin/python -m pytest -q $(COLAB_TESTS) -W ignore::DeprecationWarning $(PYTEST_ARGS)
	@HF_HUB_OFFLINE=1 $(COLAB)/bin/python -m mmkit.testing hub $(HUB)-colab
	$(TEST_ENV) HF_HUB_CACHE=$(abspath $(HUB))-colab MMKIT_SIMULATED_HUB=$(abspath $(HUB))-colab $(COLAB)/bin/python -m pytest \
	  -q tests/test_hub_path.py $$($(PY) -m mmkit.testing notebooks notebooks --skip $(HUB_SKIP)) --nbval-lax --nbval-current-env \
	  -W ignore::DeprecationWarning $(PYTEST_ARGS)

student: $(STAMP)
	$(PY) scripts/make_student.py --out build/student --branch student $(if $(REPO),--repo $(REPO))

# The course as a static site in out/book/ (mkdocs-material + mkdocs-jupyter, the `book` extra, installed on demand):
# every notebook executed as the tests run it (executed copies in build/book-src/ reused while the notebook is
# unchanged), then checked: a broken internal link, a missing figure or a visible ci-check cell fails. BOOK_ARGS=--only 00 04
BOOK_ARGS ?=
book: $(STAMP)
	@$(PY) -c "import mkdocs_jupyter, material" 2>/dev/null || $(PY) -m pip install -q -e ".[book]" $(EDITABLE)
	$(TEST_ENV) $(PY) scripts/make_book.py $(BOOK_ARGS)

instructor: $(STAMP)
	$(PY) scripts/make_student.py --instructor --out build/instructor $(if $(REPO),--repo $(REPO))

test-browser: $(STAMP)
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@$(PY) -c "import playwright, voila" 2>/dev/null || $(PY) -m pip install -q -e ".[browser,app]" $(EDITABLE)
	MMKIT_BROWSER_REQUIRED=1 MMKIT_CHROMIUM=$(CHROMIUM) $(TEST_ENV) $(PY) -m pytest -q tests_browser $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache
