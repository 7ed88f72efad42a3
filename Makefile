# automl-od: `make demo` (set up + a real search on real data) and `make test` (set up + tests).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# pytest processes side by side (pytest-xdist): most tests wait on Ray, MLflow or a subprocess (3 were no
# faster than 2 on 2 cores: 8 min 29 s against 8 min 22 s)
TEST_WORKERS ?= 2

.PHONY: setup demo test test-busy bench-overhead bench-adbench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# The CPU build of torch lies on this machine's disk: take it first (seconds instead of a multi-GB CUDA
	@# download); elsewhere pip picks a torch that satisfies the range in pyproject.toml.
	$(BIN)/pip install -q torch==2.13.0 || echo "torch==2.13.0 is not available here; pip will pick a torch in range"
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: setup
	$(BIN)/python examples/cli_kddcup.py

test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	AUTOML_OD_DISABLE_PLUGIN_AUTOLOAD=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=25

# the same, with every core kept busy by another process (one `yes > /dev/null` per core), as on a
# shared machine: no test's verdict may depend on how fast the machine is that day
test-busy: setup
	@pids=""; for i in $$(seq $$(nproc)); do yes > /dev/null & pids="$$pids $$!"; done; \
	trap "kill $$pids" EXIT; $(MAKE) --no-print-directory test

bench-overhead: setup
	$(BIN)/python benchmarks/overhead.py

bench-adbench: setup
	$(BIN)/python benchmarks/adbench.py --subset quick

clean:
	rm -rf $(VENV) automl_od_runs build *.egg-info
