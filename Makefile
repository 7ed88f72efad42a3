# automl-od: `make demo` (set up + a real search on real data) and `make test` (set up + tests).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test bench-overhead bench-adbench clean

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
	AUTOML_OD_DISABLE_PLUGIN_AUTOLOAD=1 $(BIN)/python -m pytest -q --durations=25

bench-overhead: setup
	$(BIN)/python benchmarks/overhead.py

bench-adbench: setup
	$(BIN)/python benchmarks/adbench.py --subset quick

clean:
	rm -rf $(VENV) automl_od_runs build *.egg-info
