# tokenfab: `make run` sets up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out

.PHONY: run test bench lint lock setup system-deps clean

# Dependencies come from requirements.lock (pip-compile of pyproject.toml's ranges), so CI and users get
# the same set; `make lock` refreshes it after a change to pyproject.toml.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

lock: $(STAMP)
	$(VENV)/bin/pip-compile -q --no-emit-index-url --no-emit-find-links --strip-extras \
		--extra server --extra ray --extra dev -o requirements.lock pyproject.toml

setup: $(STAMP)

system-deps:
	bash scripts/setup-system.sh

run: $(STAMP)
	$(PY) -m tokenfab.cli run-example --out $(OUT)

test: $(STAMP) system-deps
	$(PY) -m pytest -n 2 --dist loadgroup -q

bench: $(STAMP)
	$(PY) bench/run_all.py

# ruff (lint and format), mypy (paths and per-package strictness in pyproject.toml) and import-linter
# (DESIGN.md's layers, also in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
