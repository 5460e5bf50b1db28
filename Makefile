# alexnet-book. The two commands: `make reproduce` (PROFILE=cifar by default) and `make test`.
PROFILE ?= cifar
PYTHON ?= $(shell command -v python3.11 || command -v python3)
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
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
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

gpu-check: install  ## on a lent GPU (at most 10 min): one PASS/FAIL/SKIP line per check -> results/gpu-check/gpu-check.json
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

lock:  ## rewrite constraints.txt from what is installed in .venv
	{ head -n 2 constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^alexnet-book'; } > constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf results/smoke .pytest_cache
