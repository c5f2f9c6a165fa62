# The two commands of the README. Each creates .venv from pyproject.toml on first use.
#   make report [PARAMS=params/quick.yaml]   run the notebook series, report in outputs/<run>/
#   make test                                 run the test suite
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
PARAMS ?= params/smoke.yaml

.PHONY: setup report test lab clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

report: $(STAMP)
	$(VENV)/bin/lthkit-report $(PARAMS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
