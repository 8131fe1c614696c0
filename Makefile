# Set-up and everyday commands. Each target installs what it needs into .venv
# on first use (one stamp per purpose, so `make demo` installs only the demo's
# packages).
VENV ?= .venv
PY := $(VENV)/bin/python

$(PY):
	python3 -m venv $(VENV)

$(VENV)/.torch: requirements/torch-cpu.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements/torch-cpu.txt
	touch $@

$(VENV)/.installed-%: pyproject.toml $(VENV)/.torch
	$(PY) -m pip install --quiet -e ".[$*]"
	touch $@

.PHONY: setup test demo docs bench-quick
setup: $(VENV)/.installed-test

test: $(VENV)/.installed-test
	$(PY) -m pytest

demo: $(VENV)/.installed-demo
	$(PY) examples/demo.py

bench-quick: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_speed.py --quick
