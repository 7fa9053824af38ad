"""The Spark lines a local session runs on: AWS Glue 5.1's (Spark 3.5.6, Scala 2.12, Delta 3.3.2,
`make test`) and AWS Glue 6.0's (Spark 4.1.1, Scala 2.13, Delta 4.2.0, `make test-spark4`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pyspark
import pytest
from pyspark.sql import SparkSession

from glue_replay.errors import GlueReplayError
from glue_replay.runtime.spark import DELTA_BY_SPARK_LINE, DeltaArtifacts, delta_artifacts

REPO = Path(__file__).resolve().parents[1]


def fetch_jars_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_jars", REPO / "scripts" / "fetch_jars.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_pyspark_line_gets_its_own_scala_and_delta_build() -> None:
    assert delta_artifacts("3.5.6") == DeltaArtifacts("2.12", "3.3.2", ".cache/jars")
    assert delta_artifacts("4.1.1") == DeltaArtifacts("2.13", "4.2.0", ".cache/jars-spark4")
    assert delta_artifacts("4.1.1").packages == (
        "io.delta:delta-spark_2.13:4.2.0",
        "io.delta:delta-storage:4.2.0",
    )
    assert delta_artifacts("3.5.6").jars == (
        "delta-spark_2.12-3.3.2.jar",
        "delta-storage-3.3.2.jar",
    )
    with pytest.raises(
        GlueReplayError, match=r"pyspark 3\.4\.1: the Spark lines known are 3\.5, 4\.1"
    ):
        delta_artifacts("3.4.1")


def test_fetch_jars_fetches_what_each_line_loads() -> None:
    # The script runs before any venv (no pyspark), so it keeps its own copy of the table.
    script = fetch_jars_script()
    assert sorted(script.DELTA_BY_SPARK_LINE) == sorted(DELTA_BY_SPARK_LINE)
    for line, artifacts in DELTA_BY_SPARK_LINE.items():
        fetched = tuple(":".join(coordinate) for coordinate in script.delta_artifacts(line))
        assert fetched == artifacts.packages


def test_the_session_runs_the_installed_lines_delta_with_spark_s_own_ansi_default(
    spark: SparkSession,
) -> None:
    artifacts = delta_artifacts()
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    assert spark.version == pyspark.__version__
    assert jvm.io.delta.package.VERSION() == artifacts.delta
    assert jvm.scala.util.Properties.versionNumberString().startswith(artifacts.scala + ".")
    # Spark 4 (and so Glue 6.0) turns ANSI SQL on by default; the transforms hold up either way.
    ansi = "true" if pyspark.__version__.startswith("4.") else "false"
    assert spark.conf.get("spark.sql.ansi.enabled") == ansi
