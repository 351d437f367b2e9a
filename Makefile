# The two commands of the README: `make run` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# A CPU build keeps the install small; pin it so pip never resolves a multi-GB CUDA build by accident.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed-stamp
INSTALL_LOG := $(VENV)/install.log

# Tests use the shared development copy of the data set when it is beside the project.
SHARED_DATA := $(abspath ../shared/data/captcha_images_v2)
ifneq ($(wildcard $(SHARED_DATA)),)
  export CAPTCHA_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: run test unit notebooks bench bench-styles bench-labels inspect lab clean

$(STAMP): pyproject.toml environment.yml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV) (log: $(INSTALL_LOG))"
	@$(PY) -m pip install "$(TORCH_SPEC)" > $(INSTALL_LOG) 2>&1 || { tail -20 $(INSTALL_LOG); exit 1; }
	@$(PY) -m pip install -e ".[dev]" >> $(INSTALL_LOG) 2>&1 || { tail -20 $(INSTALL_LOG); exit 1; }
	@touch $(STAMP)

## make run: run notebooks 01 -> 05 and 08 with papermill into a new reports/<run-id>/ folder.
run: $(STAMP)
	$(PY) -m captcha_nb report

## make test: unit tests (which also run every notebook with papermill and check what it records), then the
## notebooks exactly as committed under nbval; notebooks/conftest.py asks notebook 03 for a short training.
test: unit notebooks

unit: $(STAMP)
	$(PY) -m pytest tests

notebooks: $(STAMP)
	$(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/

## make bench: the default model against the seed architecture (how to run it: benchmarks/bench.py's docstring).
bench: $(STAMP)
	$(PY) benchmarks/bench.py

## make bench-styles: the default recipe on every captcha style in the shared folder, same budget each
## (benchmarks/styles.py's docstring); results in reports/benchmarks/styles-<date>/ and reports/BENCHMARKS.md.
# Without the shared folder, the styles `python -m captcha_nb download --style all` rebuilt into data/styles.
STYLE_DATA ?= $(or $(wildcard ../shared/data ../shared/data/styles),data data/styles)
bench-styles: $(STAMP)
	$(PY) benchmarks/styles.py --data $(STYLE_DATA) --publish

## make bench-labels: test accuracy against the number of labelled images, from scratch and pretrained
## (benchmarks/labels.py's docstring); results in reports/benchmarks/labels-<date>/ and reports/BENCHMARKS.md.
bench-labels: $(STAMP)
	$(PY) benchmarks/labels.py --data $(STYLE_DATA) --publish

## make inspect: the prediction inspector as an app (Voilà) on localhost, on the newest run.
inspect: $(STAMP)
	$(PY) -m captcha_nb inspect

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf build $(VENV)
