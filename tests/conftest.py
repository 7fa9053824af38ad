"""Shared fixtures: one Delta-enabled Spark session for the whole suite, tables under tmp_path."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["TZ"] = "UTC"
time.tzset()

REPO = Path(__file__).resolve().parents[1]

#: JVM flags of the Spark drivers the tests start in processes of their own (``SPARK_SUBMIT_OPTS``
#: reaches the driver JVM that spark-submit launches; every job process inherits it): the C1
#: compiler alone and the serial collector. Such a driver lives for one or a few jobs on a few
#: hundred rows, where C2's and G1's background threads only compete for the 2 cores: a small
#: Delta job's JVM used 70 s of CPU with the defaults and 36 s with these (39 s -> 30 s of wall
#: time). The suite's own session (below) lives for the whole run and keeps the defaults: C2
#: pays off there (with these flags the customers conformance test took 147 s instead of 97 s).
JOB_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
os.environ.setdefault("SPARK_SUBMIT_OPTS", JOB_JVM_OPTIONS)

from pyspark.sql import SparkSession  # noqa: E402 - after TZ is fixed for the JVM and Python

from glue_replay.runtime.spark import delta_artifacts  # noqa: E402

#: The Delta jars of the installed pyspark's line (``.cache/jars``; ``.cache/jars-spark4`` in
#: ``.venv-spark4``), for this session and the jobs the tests start; and the venv running the
#: tests for the jobs they start through ``scripts/spark-submit``.
os.environ.setdefault("GLUE_REPLAY_JARS_DIR", str(REPO / delta_artifacts().cache))
if sys.prefix != sys.base_prefix:
    os.environ.setdefault("GLUE_REPLAY_VENV", sys.prefix)

#: Modules that run whole jobs, real servers or Terraform: `make test` runs them, `make check`
#: (the inner loop) skips them with ``-m "not slow"``.
SLOW_MODULES = frozenset(
    {
        "test_pipelines",
        "test_extension_api",
        "test_conformance_customers",
        "test_aws_cli",
        "test_terraform",
        "test_cli",
        "test_orders",
        "test_jdbc_source",
        "test_ingest_batches",
        "test_standalone_cluster",
        "test_concurrent_writers",
        "test_deletes_and_drift",
        "test_dry_run",
        "test_replay_model",
        "test_publish",
        "test_sinks_kafka",
        "test_s3_warehouse",
        "test_deployment",
        "test_layout",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


#: The suite's session: two cores, small sizes (tests that start a session of their own reuse it),
#: and Spark's interpreted evaluation instead of generated code (``NO_CODEGEN``; Spark's own
#: suites run both, with the same results). The tests' data is a few hundred rows, where
#: compiling each new plan's Java costs more than it saves: three modules took 338-371 s this
#: way and 427-432 s with code generation (docs/BENCHMARKS.md, "The test suite's time"). The S3A
#: test's driver takes these settings too. The jobs other tests start in processes of their own
#: (the Glue-like deployment, the standalone cluster, concurrent writers, kills, Glue's argv)
#: keep code generation, as Glue runs it.
TEST_SESSION_SETTINGS = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.databricks.delta.autoCompact.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from glue_replay.runtime import build_spark_session

    job_jvm_options = os.environ.get("SPARK_SUBMIT_OPTS")
    if job_jvm_options == JOB_JVM_OPTIONS:  # only the job processes' flags, not a caller's
        del os.environ["SPARK_SUBMIT_OPTS"]
    try:
        session = build_spark_session(
            "glue-replay-tests",
            extra_settings=TEST_SESSION_SETTINGS,
        )
    finally:
        if job_jvm_options is not None:
            os.environ["SPARK_SUBMIT_OPTS"] = job_jvm_options
    yield session
    session.stop()


@pytest.fixture
def warehouse(tmp_path: Path) -> str:
    return str(tmp_path / "warehouse")
