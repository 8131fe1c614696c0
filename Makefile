# Set-up and everyday commands. Each target creates .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml requirements/torch-cpu.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements/torch-cpu.txt
	$(PY) -m pip install --quiet -e ".[test,demo,bench]"
	touch $@

.PHONY: setup test demo bench-quick
setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest

demo: setup
	$(PY) examples/demo.py

bench-quick: setup
	$(PY) benchmarks/bench_speed.py --quick
