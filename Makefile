# Two commands for a new user: `make study` (set up, then run the study on the embedded synthetic cohort)
# and `make test` (unit tests + nbval over the notebooks). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= demo
# The CPU-friendly PyTorch releases this project is tested with; override for another platform or a GPU build.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup radiomics study test test-unit test-ui lab smoke bench notebooks clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[notebooks,test,fetch]'
	$(MAKE) --no-print-directory radiomics
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

# pyradiomics (the handcrafted baseline, radiolib.learn.handcrafted) has no wheel for current Python: build it against the
# installed numpy, without build isolation. Without it the baseline rows are skipped with this command as the reason.
radiomics:
	$(PY) -m pip install --quiet numpy setuptools wheel versioneer
	$(PY) -m pip install --quiet --no-build-isolation pyradiomics==3.0.1

study: setup
	$(PY) -m radiolib study --profile $(PROFILE)

test: setup
	$(VENV)/bin/ruff check radiolib tests benchmarks
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider --durations=15 -n auto

# The developer's loop: the unit tests without those marked slow (the end-to-end runs, the planted and null cohorts
# trained in full: pyproject's pytest markers), no nbval. `make test` still runs everything.
test-unit: setup
	$(VENV)/bin/ruff check radiolib tests benchmarks
	$(PY) -m pytest tests -m "not slow" -p no:cacheprovider --durations=10 -n auto

# The browser test: JupyterLab + headless Chromium (Playwright) run notebook 01 and move its explorer's controls.
# Installs Debian's chromium (apt-get, as root) and the playwright Python package when missing; see docs/testing.md.
test-ui: setup
	$(PY) tests/ui/run_ui.py

# JupyterLab with the project's settings (jupyter/overrides.json: no saved widget state, no news or update checks).
# More options through LAB_ARGS, e.g. make lab LAB_ARGS="--no-browser --port 8899".
LAB_ARGS ?=
lab: setup
	$(VENV)/bin/jupyter lab --LabApp.app_settings_dir=$(CURDIR)/jupyter $(LAB_ARGS) notebooks/01_preprocessing.ipynb

smoke: setup
	$(PY) -m radiolib study --profile smoke

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

# Re-execute the committed notebooks in place, in a fresh runs/interactive, at their defaults (what nbval then
# compares against), then write them as JupyterLab saves them (nbformat, final newline) without the run's
# timestamps (radiolib/run/notebook_files.py), so opening and saving one in JupyterLab changes nothing.
notebooks: setup
	rm -rf runs/interactive  # as nbval's fresh run folder: 06 runs before 07-09, so it finds none of their results
	for nb in notebooks/0*.ipynb; do $(PY) -m papermill $$nb $$nb --cwd notebooks --no-progress-bar || exit 1; done
	$(PY) -m radiolib.run.notebook_files notebooks/0*.ipynb

clean:
	rm -rf runs .pytest_cache
