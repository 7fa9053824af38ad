# glue-replay developer entry points. `make demo` and `make test` set themselves up.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
JARS   := .cache/jars
KAFKA  := .cache/kafka
# checkov pins boto3 and packaging versions that clash with ours: it lives in its own venv.
CHECKOV_VENV := .cache/checkov-venv
CHECKOV_VERSION := 3.3.30
export GLUE_REPLAY_JARS_DIR := $(CURDIR)/$(JARS)
export TZ := UTC

.PHONY: help setup demo test check soak benchmark bench-ingest bench-publish lint typecheck unit package package-dynamodb-logstore clean

help:
	@echo "make demo   - start the sample API and run full, BAU and targeted replays on local Spark + Delta"
	@echo "make test   - ruff, mypy (strict) and the whole pytest suite (what CI runs)"
	@echo "make check  - the inner loop: ruff, mypy and the tests not marked slow (~1 min)"
	@echo "make soak   - the model-based test's long profile (>= 200 random steps, ~1 h); summary in docs/SOAK.md"
	@echo "make setup  - build .venv and fetch the Delta jars (done by demo/test when needed)"
	@echo "make package - build dist/ (the wheel for Glue, the Lambda zip) for terraform/"
	@echo "make benchmark - time targeted selection: literal IN list vs broadcast semi-join (~minutes)"
	@echo "make bench-ingest - REST parallel vs sequential, JDBC partitioned vs one partition (~minutes)"
	@echo "make bench-publish - publisher: file sink vs merely reading the outbox, AWS sinks' calls on moto (~7 min)"

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
	CHECKOV=$(CURDIR)/$(CHECKOV_VENV)/bin/checkov $(BIN)/pytest

test: lint typecheck unit

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
	rm -rf $(VENV) .cache warehouse dist build .pytest_cache .mypy_cache .ruff_cache
