# One entry point for people and CI. `make test` and `make demo` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lint format test test-fast test-faults demo bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# lint and types first, then unit, doctests and integration tests with coverage; the fault
# suite (marker `faults`) is part of it, its figures printed at the end
test: lint
	$(BIN)/pytest --cov --cov-report=term:skip-covered

# the fault suite alone (docs/faults.md), its figures also in fault-figures.json
test-faults: $(STAMP)
	FAULT_FIGURES=fault-figures.json $(BIN)/pytest -m faults

test-fast: $(STAMP)
	$(BIN)/pytest tests/unit stream_app models monitors

demo: $(STAMP)
	$(BIN)/stream-app demo

# throughput, decision latency, warehouse visibility and memory; the figures also in bench.json
bench: $(STAMP)
	$(BIN)/stream-app bench --json bench.json

clean:
	rm -rf $(VENV) .stream_app .pytest_cache .mypy_cache .ruff_cache .coverage fault-figures.json

# coverage-guided fuzzing (atheris) of the record decoders, the control-command parser and the
# rules loader, FUZZ_RUNS executions each (docs/fuzzing.md)
FUZZ_RUNS ?= 1000000
fuzz: $(STAMP)
	for target in record command rules; do \
		$(BIN)/python -m tests.fuzz.run $$target --runs $(FUZZ_RUNS) || exit 1; \
	done
