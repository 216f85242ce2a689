# ptyfast developer commands. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.DEFAULT_GOAL := help
.PHONY: help venv build demo test test-rust lint test-python bench docs clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "maturin>=1.9,<2"

venv: $(PY) ## create the local virtual environment (.venv)

build: $(PY) ## build the extension (release) into .venv with the test and docs extras
	$(VENV)/bin/maturin develop --release --locked --extras test,docs -q

demo: $(PY) ## build, then simulate a dataset on built-in defaults into out/
	$(VENV)/bin/maturin develop --release --locked -q
	$(VENV)/bin/ptyfast simulate --output out/demo.npz --preview out/demo.png

test-rust: ## cargo test, clippy (-D warnings), fmt --check
	cargo test --locked -p ptyfast-core --release
	cargo clippy --locked --workspace --all-targets -- -D warnings
	cargo fmt --all --check

lint: build ## ruff, ruff format --check, stubtest of _core.pyi
	$(VENV)/bin/ruff check python tests benches examples docs
	$(VENV)/bin/ruff format --check python tests benches examples docs
	$(PY) -m mypy.stubtest ptyfast._core

test-python: build ## pytest (including the TensorFlow reference tests)
	$(PY) -m pytest -q

test: test-rust lint test-python docs ## everything CI runs

bench: build ## run the benchmarks: docs/benchmarks/results.json + plots (baselines run alongside)
	$(PY) benches/run_all.py

docs: build ## build the documentation site into site/ (strict), regenerating its figures
	$(PY) docs/gen_figures.py
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean: ## remove build outputs and the virtual environment
	cargo clean
	rm -rf $(VENV) out python/ptyfast/*.so site docs/figures/*.png
