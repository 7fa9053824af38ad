# glue-replay developer entry points. `make demo` and `make test` set themselves up.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
JARS   := .cache/jars
KAFKA  := .cache/kafka
# checkov pins boto3 and packaging versions that clash with ours: it lives in its own venv.
CHECKOV_VENV := .cache/checkov-venv
CHECKOV_VERSION := 3.3.30
# The Spark 4 profile (AWS Glue 6.0's Spark line: Spark 4.1.1, Scala 2.13, Delta Lake 4.2.0) on
# this machine's Python: its own venv and jar cache, the same suite (`make test-spark4`).
VENV_SPARK4 := .venv-spark4
JARS_SPARK4 := .cache/jars-spark4
export GLUE_REPLAY_JARS_DIR := $(CURDIR)/$(JARS)
# `make test PYTEST_WORKERS=2` runs the suite in two pytest-xdist workers, a test module to a
# worker at a time (modules build module-scoped warehouses and servers once; each worker has its
# own Spark session, servers and tmp_path). Off by default: on this 2-core machine it is not
# faster. Measured on an idle machine, the 162 tests of test_a* to test_d*: serial 858 s with
# the cores 72% busy, 2 workers 903 s with them 96% busy (each worker's JVM compiles the same
# code again; a small Delta job's JVM spends about as much CPU in its JIT compilers as in Spark).
PYTEST_WORKERS ?=
PYTEST_XDIST := $(if $(PYTEST_WORKERS),-n $(PYTEST_WORKERS) --dist loadfile)
export TZ := UTC

.PHONY: help setup demo test test-spark4 check soak benchmark bench bench-ingest bench-publish lint typecheck unit package package-dynamodb-logstore clean

help:
	@echo "make demo   - start the sample API and run full, BAU and targeted replays on local Spark + Delta"
	@echo "make test   - ruff, mypy (strict) and the whole pytest suite (what CI runs)"
	@echo "make check  - the inner loop: ruff, mypy and the tests not marked slow (~4 min)"
	@echo "make test-spark4 - the whole pytest suite on Spark 4.1.1 + Delta 4.2.0 (Glue 6.0's line), own venv"
	@echo "make soak   - the model-based test's long profile (>= 200 random steps, ~1 h); summary in docs/SOAK.md"
	@echo "make setup  - build .venv and fetch the Delta jars (done by demo/test when needed)"
	@echo "make package - build dist/ (the wheel for Glue, the Lambda zip) for terraform/"
	@echo "make benchmark - time targeted selection: literal IN list vs broadcast semi-join (~minutes)"
	@echo "make bench-ingest - REST parallel vs sequential, JDBC partitioned vs one partition (~minutes)"
	@echo "make bench-publish - publisher: file sink vs merely reading the outbox, AWS sinks' calls on moto (~7 min)"
	@echo "make bench  - normalize's modes on 2M raw rows: full vs ceiling, targeted/since/BAU vs hand-written and no-op, files read (~45 min)"

setup: $(VENV)/.installed $(JARS)/.fetched $(KAFKA)/classpath.txt

$(VENV)/.installed: setup.py
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "glue-replay needs Python 3.11 (AWS Glue 5.1); set PYTHON=..."'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(JARS)/.fetched: scripts/fetch_jars.py
	$(PYTHON) scripts/fetch_jars.py $(JARS)
	touch $@

# `dev` with the Spark 4 pins (setup.py's SPARK4) instead of Glue 5.1's.
$(VENV_SPARK4)/.installed: setup.py
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "glue-replay needs Python 3.11 (AWS Glue 5.1); set PYTHON=..."'
	test -x $(VENV_SPARK4)/bin/python || $(PYTHON) -m venv $(VENV_SPARK4)
	$(VENV_SPARK4)/bin/pip install --quiet --upgrade pip
	$(VENV_SPARK4)/bin/pip install --quiet -e '.[dev-spark4]'
	touch $@

$(JARS_SPARK4)/.fetched: scripts/fetch_jars.py
	$(PYTHON) scripts/fetch_jars.py --spark 4.1 $(JARS_SPARK4)
	touch $@

# The Kafka broker the Kafka sink's tests start (KRaft, loopback): its jars from Maven Central.
$(KAFKA)/classpath.txt: scripts/fetch_kafka.py
	$(PYTHON) scripts/fetch_kafka.py $(KAFKA)

demo: setup
	$(BIN)/python scripts/demo.py

benchmark: setup
	$(BIN)/python scripts/benchmark_targeted.py

bench-ingest: setup
	$(BIN)/python scripts/bench_ingest.py

bench-publish: setup
	$(BIN)/python scripts/bench_publish.py

bench: setup
	$(BIN)/python scripts/bench.py

lint: setup
	$(BIN)/ruff check lib glue_jobs scripts tests
	$(BIN)/ruff format --check lib glue_jobs scripts tests

typecheck: setup
	$(BIN)/mypy

$(CHECKOV_VENV)/.installed:
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

unit: setup $(CHECKOV_VENV)/.installed
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov $(BIN)/pytest $(PYTEST_XDIST)

test: lint typecheck unit

test-spark4: $(VENV_SPARK4)/.installed $(JARS_SPARK4)/.fetched $(KAFKA)/classpath.txt $(CHECKOV_VENV)/.installed
	GLUE_REPLAY_JARS_DIR=$(CURDIR)/$(JARS_SPARK4) CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov \
		$(VENV_SPARK4)/bin/pytest $(PYTEST_XDIST)

check: lint typecheck
	$(BIN)/pytest -m "not slow" -q

soak: setup
	GLUE_REPLAY_MODEL_PROFILE=soak $(BIN)/pytest tests/test_replay_model.py -q -s

package: $(VENV)/.installed
	$(BIN)/python scripts/package.py

# Only for enable_dynamodb_log_store = true in terraform/: Delta's DynamoDB log store jar.
package-dynamodb-logstore: package
	$(PYTHON) scripts/fetch_jars.py dist io.delta:delta-storage-s3-dynamodb:3.3.2

clean:
	rm -rf $(VENV) $(VENV_SPARK4) .cache warehouse dist build .pytest_cache .mypy_cache .ruff_cache
