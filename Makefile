# alexnet-book. The two commands: `make reproduce` (PROFILE=cifar by default) and `make test`.
PROFILE ?= cifar
# The Python that creates .venv: the first of these that runs and is a version pyproject's requires-python accepts
# (3.11 to 3.13; a test keeps the two in step). A pyenv shim is found by `command -v` but may not run, hence the call.
# Another: make install PYTHON=/path/to/python3.12.
SUPPORTED_PYTHON := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
PYTHON ?= $(firstword $(foreach py,python3.11 python3.12 python3.13 python3,$(shell $(py) -c '$(SUPPORTED_PYTHON)' 2>/dev/null && echo $(py))))
VENV := .venv
# large CPU tensors on transparent huge pages: see alexnet_book/__init__.py
export THP_MEM_ALLOC_ENABLE ?= 1
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install reproduce book test unit nbval bench gpu-check lab lock claims report html html-check clean

# A fresh clone creates .venv and installs the package (editable, with dev extras) at the
# versions verified in constraints.txt; afterwards the stamp makes reruns install nothing.
install: $(STAMP)
$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(or $(PYTHON),$(error no Python 3.11, 3.12 or 3.13 runs here: install one, or name it: make PYTHON=/path/to/python3.12)) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

reproduce: install  ## run every notebook with papermill into results/$(PROFILE)/, then the claims table
	$(PY) -m alexnet_book.reproduce --profile $(PROFILE) $(if $(ONLY),--only $(ONLY))

book: install  ## a cifar run that also refreshes the committed outputs in notebooks/ and the README's results
	$(PY) -m alexnet_book.reproduce --profile cifar --book $(if $(ONLY),--only $(ONLY))
	$(PY) -m alexnet_book.report --profile cifar --readme

test: unit nbval  ## unit tests, then the notebooks under nbval with the smoke profile

unit: install
	$(PY) -m pytest tests -q

nbval: install
	ALEXNET_BOOK_PROFILE=smoke $(PY) -m pytest --nbval-lax notebooks/ -q -p no:cacheprovider

# On a GPU image as it comes (often without network): `make gpu-check PY=python3`. Nothing is installed when PY's torch
# already sees CUDA, nor for a PY other than .venv's, which runs as it is: a check whose package it lacks says SKIP.
gpu-check:  ## on a lent GPU (at most 10 min): one PASS/FAIL/SKIP line per check -> results/gpu-check/gpu-check.json
	@if $(PY) -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then \
		echo "$(PY) imports a torch that sees CUDA: no install step"; \
	elif [ "$(PY)" = "$(VENV)/bin/python" ]; then $(MAKE) --no-print-directory install; fi
	$(PY) -m alexnet_book.gpucheck

bench: install  ## training, data-path, loader and LRN throughput on this device -> results/bench/bench.{json,md}
	$(PY) -m alexnet_book.bench

claims: install  ## results/$(PROFILE)/claims.csv and claims.md from every metrics.json
	$(PY) -m alexnet_book.report --profile $(PROFILE)

report: install  ## the cifar claims table, and the README's results section generated from results/cifar/
	$(PY) -m alexnet_book.report --profile cifar --readme

html: install  ## the executed notebooks of results/$(PROFILE)/notebooks/ (for cifar, else the committed notebooks/) as a static site in results/$(PROFILE)/html/
	$(PY) -m alexnet_book.book --profile $(PROFILE)

# A look at the front page as a browser draws it (Debian: apt-get install chromium); not part of `make test`.
CHROMIUM ?= chromium
HTML_DIR = $(abspath $(or $(ALEXNET_BOOK_RESULTS),results)/$(PROFILE)/html)
html-check: html
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,1600 \
		--screenshot=$(HTML_DIR)/index.png file://$(HTML_DIR)/index.html
	@echo "look at $(HTML_DIR)/index.png"

# As root (the usual case in a container) Jupyter refuses to start without --allow-root, so it is passed then.
lab: install  ## JupyterLab with this environment registered as the kernel "alexnet-book"
	$(PY) -m ipykernel install --user --name alexnet-book --display-name "alexnet-book (.venv)"
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# pip freeze of .venv, plus the old pins of packages this Python does not install but another supported one does
# (overrides below 3.12, aiohttp on 3.12, setuptools from 3.12), so a lock on any one of them keeps the others' pins.
define LOCK
import subprocess, sys
name = lambda pin: pin.split("==")[0].lower().replace("_", "-")
freeze = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True,
                        check=True).stdout.splitlines()
old = open("constraints.txt").read().splitlines()
pins = [pin for pin in freeze if name(pin) != "alexnet-book"]
pins += [pin for pin in old[2:] if name(pin) not in set(map(name, freeze))]
open("constraints.txt", "w").write("\n".join(old[:2] + sorted(pins, key=lambda pin: pin.split("==")[0].lower())) + "\n")
endef
export LOCK
lock:  ## rewrite constraints.txt from what is installed in .venv, keeping the pins that only other Pythons use
	$(PY) -c "$$LOCK"

clean:
	rm -rf results/smoke .pytest_cache
