# tokenfab: `make run` sets up and runs the main job; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out

.PHONY: run test bench lint lock setup system-deps clean prometheus alertmanager ops-stack ops-rules
OPS_DESIGN ?= examples/site-10mw.yaml
OPS_WORKLOAD ?= examples/workload-mixed.yaml
OPS_OUT ?= $(OUT)/ops
OPS_SPEED ?= 1

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
	$(PY) -m pytest -n 2 --dist loadgroup -q -m 'not alone'
	$(PY) -m pytest -p no:xdist -q -m alone

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

# --- the operations loop: Prometheus and Alertmanager configured from a design ----------------------
$(OPS_OUT)/prometheus.yml: $(STAMP)
	$(PY) -m tokenfab.cli export prometheus $(OPS_DESIGN) --workload $(OPS_WORKLOAD) --out $(OPS_OUT) \
		--token-file $(abspath $(OPS_OUT))/control-token

prometheus: $(OPS_OUT)/prometheus.yml  ## Prometheus on 127.0.0.1:9090 scraping the design's exporters
	prometheus --config.file=$(OPS_OUT)/prometheus.yml --storage.tsdb.path=$(OPS_OUT)/prometheus-data \
		--web.listen-address=127.0.0.1:9090

alertmanager: $(OPS_OUT)/prometheus.yml  ## Alertmanager on 127.0.0.1:9093, webhook to `tokenfab serve`
	prometheus-alertmanager --config.file=$(OPS_OUT)/alertmanager.yml --storage.path=$(OPS_OUT)/alertmanager-data \
		--web.listen-address=127.0.0.1:9093 --cluster.listen-address=

ops-stack: $(STAMP)  ## emulator + control plane + Prometheus + Alertmanager on free loopback ports
	$(PY) -m tokenfab.emulate.stack $(OPS_DESIGN) $(OPS_WORKLOAD) $(OPS_SPEED)

ops-rules: $(STAMP)  ## check and unit-test the shipped rules
	promtool check rules ops/prometheus/rules/*.yml
	cd ops/prometheus/tests && promtool test rules *.yml
