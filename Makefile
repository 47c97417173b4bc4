# One entry point for people and CI. `make test` and `make demo` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lint format test test-fast test-faults test-future-clock demo demo-drift bench fuzz clean

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

# the report's browser test (tests/integration/test_report.py) opens it in Debian's Chromium
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

# lint and types first, then unit, doctests and integration tests with coverage; the fault
# suite (marker `faults`) is part of it, its figures printed at the end. It runs on two
# pytest-xdist workers (docs/contributing.md); TEST_WORKERS=0 runs it in one process.
# REQUIRE_CHROMIUM: the report's browser test fails, not skips, without Chromium
TEST_WORKERS ?= 2
test: lint $(CHROMIUM)
	REQUIRE_CHROMIUM=1 $(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --cov --cov-report=term:skip-covered

# the fault suite alone (docs/faults.md), its figures also in fault-figures.json
test-faults: $(STAMP)
	FAULT_FIGURES=fault-figures.json $(BIN)/pytest -m faults

test-fast: $(STAMP)
	$(BIN)/pytest tests/unit stream_app models monitors

# The suite with every process's wall clock FUTURE_CLOCK ahead (default 400 days: past
# 2027-01-01), monotonic clocks and sleeps real: libfaketime built from PyPI's sdist, preloaded with
# tests/future_clock/cnd_timedwait.c (docs/contributing.md). PYTEST_ARGS picks tests.
FAKETIME := $(VENV)/faketime
FAKETIME_SRC := $(FAKETIME)/libfaketime-3.0.1/libfaketime/vendor/libfaketime/src
FUTURE_CLOCK ?= +400d
PYTEST_ARGS ?=

$(FAKETIME)/libfaketime.so.1: $(STAMP)
	$(BIN)/python -m pip download --quiet --no-deps --no-binary libfaketime libfaketime==3.0.1 -d $(FAKETIME)
	tar -xzf $(FAKETIME)/libfaketime-3.0.1.tar.gz -C $(FAKETIME)
	$(MAKE) -C $(FAKETIME_SRC) libfaketime.so.1 FAKETIME_COMPILE_CFLAGS="-UFAKE_SLEEP -UFAKE_PTHREAD"
	cp $(FAKETIME_SRC)/libfaketime.so.1 $@

$(FAKETIME)/cnd_timedwait.so: tests/future_clock/cnd_timedwait.c
	mkdir -p $(FAKETIME)
	$(CC) -shared -fPIC -O2 -Wall -Wextra -Werror -o $@ $< -ldl

test-future-clock: $(FAKETIME)/libfaketime.so.1 $(FAKETIME)/cnd_timedwait.so | $(CHROMIUM)
	export LD_PRELOAD="$(abspath $^)" FAKETIME=$(FUTURE_CLOCK) DONT_FAKE_MONOTONIC=1 REQUIRE_CHROMIUM=1 && \
	$(BIN)/python -c 'import datetime as d; assert d.date.today() > d.date(2027, 1, 1), "clock not shifted"' && \
	$(BIN)/pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/stream-app demo

# a concept drift, the retrainer's run, shadow, promotion and watch, from SQL (docs/retraining.md)
demo-drift: $(STAMP)
	$(BIN)/stream-app demo-drift

# throughput, decision latency, warehouse visibility and memory; the figures also in bench.json
bench: $(STAMP)
	$(BIN)/stream-app bench --json bench.json

clean:
	rm -rf $(VENV) .stream_app .pytest_cache .mypy_cache .ruff_cache .coverage fault-figures.json

# coverage-guided fuzzing (atheris) of the record decoders, the control-command parser and the
# rules loader, FUZZ_RUNS executions each (docs/fuzzing.md)
FUZZ_RUNS ?= 1000000
fuzz: $(STAMP)
	for target in record command rules poll; do \
		$(BIN)/python -m tests.fuzz.run $$target --runs $(FUZZ_RUNS) || exit 1; \
	done
