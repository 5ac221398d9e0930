# Transfer Learning, hands-on. Every target sets up what it needs, and skips what is done.
#   make book   execute the chapters and build the HTML book into _build/html
#   make test   the whole test suite (what CI runs)
#   make bench  time every chapter against a calibration workload (the table in book/instructors.md)
#   make margins NB=notebooks/06_x.ipynb   run chapters at 5 seeds and 3 CPU kernels, tabulate claim margins
#   make lab    open the chapters in JupyterLab
#   make student / make solutions   classroom notebooks under _build/student and _build/solutions
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help setup system-packages book test bench margins lab student solutions lock clean

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_PACKAGES := dataset-fashion-mnist openclipart-png chromium
MATHJAX := $(VENV)/share/mathjax/es5/tex-chtml.js
# Jupyter looks for kernels here first, so notebooks run on this environment's Python.
export JUPYTER_PATH := $(CURDIR)/$(VENV)/share/jupyter

help:
	@sed -n '2,7p' Makefile | sed 's/^# //'

$(STAMP): requirements-lock.txt requirements-nodeps.txt pyproject.toml
	@echo "==> Python environment in $(VENV) (first time: about 4 minutes and 7 GB)"
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --progress-bar off --disable-pip-version-check -r requirements-lock.txt
	$(BIN)/pip install --quiet --progress-bar off --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --progress-bar off --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (transfer learning)" >/dev/null
	@touch $@

system-packages:
	@echo "==> Debian packages (the data, and Chromium for the browser test)"
	@scripts/system_packages.sh $(SYSTEM_PACKAGES)

$(MATHJAX): | $(STAMP)
	@echo "==> MathJax, so the book renders math offline"
	@scripts/fetch_mathjax.sh $(VENV)/share/mathjax

setup: $(STAMP) system-packages $(MATHJAX)
	@echo "==> Set-up done ($(VENV) ready)"

book: setup
	@echo "==> Executing the chapters (those whose code changed since their last run)"
	$(BIN)/python scripts/run_notebooks.py
	@echo "==> Building the book"
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going --quiet
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: setup
	@start=$$(date +%s); \
	$(BIN)/python -m pytest; status=$$?; \
	echo "Test suite wall time: $$(( $$(date +%s) - start )) s on $$(nproc) cores"; \
	exit $$status

# make bench BEFORE=../other-checkout   also times that checkout's chapters, interleaved, for before/after ratios
bench: setup
	$(BIN)/python scripts/bench.py $(if $(BEFORE),--compare $(BEFORE)) --write book/_timings.md

# make margins NB="notebooks/06_negative_transfer.ipynb"   hours for the whole course: one chapter at a time
margins: setup
	$(BIN)/python scripts/robustness.py $(NB)

# As root (a container, Colab's terminal) JupyterLab refuses to start without --allow-root: say so and pass it.
lab: setup
	@if [ "$$(id -u)" = 0 ]; then echo "==> Running as root (as in a container): starting JupyterLab with --allow-root"; fi
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

student: $(STAMP)
	$(BIN)/python scripts/classroom.py student

solutions: $(STAMP)
	$(BIN)/python scripts/classroom.py solutions

# Re-resolve requirements.in into requirements-lock.txt (maintainers only).
lock:
	rm -rf _build/lock-venv && $(PYTHON) -m venv _build/lock-venv
	_build/lock-venv/bin/pip install --quiet -r requirements.in
	_build/lock-venv/bin/pip freeze --exclude-editable | $(PYTHON) scripts/make_lock.py > requirements-lock.txt
	rm -rf _build/lock-venv

clean:
	rm -rf _build
