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

.PHONY: setup test demo docs docs-ci docs-clean bench-quick
setup: $(VENV)/.installed-test

test: $(VENV)/.installed-test
	$(PY) -m pytest

demo: $(VENV)/.installed-demo
	$(PY) examples/demo.py

bench-quick: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_speed.py --quick

# Documentation site in docs/_build/html; warnings are errors. `docs` runs
# every gallery example (a few minutes); `docs-ci` builds the gallery pages
# without running them.
SPHINXBUILD = $(PY) -m sphinx -b html -W --keep-going -q
docs: $(VENV)/.installed-docs
	$(SPHINXBUILD) docs docs/_build/html $(SPHINXOPTS)

docs-ci: $(VENV)/.installed-docs
	$(SPHINXBUILD) -D plot_gallery=0 docs docs/_build/html $(SPHINXOPTS)

docs-clean:
	rm -rf docs/_build docs/api.rst docs/generated docs/auto_examples docs/sg_execution_times.rst
