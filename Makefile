# tokenfab: `make run` sets up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out

.PHONY: run test bench lint setup system-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[server,ray,dev]'
	touch $(STAMP)

setup: $(STAMP)

system-deps:
	bash scripts/setup-system.sh

run: $(STAMP)
	$(PY) -m tokenfab.cli run-example --out $(OUT)

test: $(STAMP) system-deps
	$(PY) -m pytest -n 2 --dist loadgroup -q

bench: $(STAMP)
	$(PY) bench/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
