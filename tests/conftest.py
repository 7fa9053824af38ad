"""Shared fixtures: one Delta-enabled Spark session for the whole suite, tables under tmp_path."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["TZ"] = "UTC"
time.tzset()

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("GLUE_REPLAY_JARS_DIR", str(REPO / ".cache" / "jars"))

from pyspark.sql import SparkSession  # noqa: E402 - after TZ is fixed for the JVM and Python


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from glue_replay.runtime import build_spark_session

    session = build_spark_session(
        "glue-replay-tests",
        extra_settings={
            "spark.master": "local[2]",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.databricks.delta.snapshotPartitions": "1",
            "spark.sql.adaptive.enabled": "false",
            "spark.databricks.delta.autoCompact.enabled": "false",
        },
    )
    yield session
    session.stop()


@pytest.fixture
def warehouse(tmp_path: Path) -> str:
    return str(tmp_path / "warehouse")
