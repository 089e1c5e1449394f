# Two commands for a new user: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PIPELINE_HOME ?= $(CURDIR)/.clickflow
# The demo replays history (the public data set's first days): its partitions cover that week.
# For live data, set PIPELINE_PARTITIONS_START to a recent date and PIPELINE_PARTITIONS_END= (empty).
export PIPELINE_PARTITIONS_START ?= 2019-10-01
export PIPELINE_PARTITIONS_END ?= 2019-10-08

.PHONY: install demo test test-fast dev process status bench browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark,bench]'
	@touch $(STAMP)

demo: install
	$(BIN)/clickflow demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

dev: install
	$(BIN)/clickflow dev

process: install
	$(BIN)/clickflow process

status: install
	$(BIN)/clickflow status

# Benchmarks (bench/README.md): writes bench/results.md and bench/results.png. BENCH_ARGS=--quick checks the harness.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Headless Chromium for the browser tests (Debian's package; the tests skip without it).
browser:
	command -v chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)

clean:
	rm -rf .clickflow
