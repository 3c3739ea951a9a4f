# Two entry points for a fresh machine: `make quickstart` and `make test`.
# Both create (or reuse) the virtual environment in .venv and install what they need.

PYTHON ?= python3
VENV ?= .venv
# The CPU build is enough for everything but speed; GPU users can install their own
# torch into .venv first, and this step then leaves it alone.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install quickstart test dashboard

$(VENV)/.medgan-installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -c "import torch" 2>/dev/null || $(VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.medgan-installed

quickstart: install
	$(VENV)/bin/medgan run pipelines/quickstart.yaml

test: install
	$(VENV)/bin/python -m pytest -q

dashboard: install
	$(VENV)/bin/medgan dashboard --runs runs
