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
from glue_replay.runtime.spark import (
    DELTA_BY_SPARK_LINE,
    JDBC_DRIVER_PACKAGES,
    S3A_BY_SPARK_LINE,
    DeltaArtifacts,
    delta_artifacts,
    s3a_artifacts,
)

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


def test_each_pyspark_line_gets_the_s3a_connector_of_the_hadoop_it_bundles() -> None:
    # pyspark 3.5.6 bundles Hadoop 3.3.4 (S3A on the AWS SDK v1), 4.1.1 Hadoop 3.4.2 (SDK v2).
    key_providers = (
        "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
        "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    )
    v1, v2 = s3a_artifacts("3.5.6"), s3a_artifacts("4.1.1")
    assert v1.packages == (
        "org.apache.hadoop:hadoop-aws:3.3.4",
        "com.amazonaws:aws-java-sdk-bundle:1.12.262",
    )
    assert v1.jars == ("hadoop-aws-3.3.4.jar", "aws-java-sdk-bundle-1.12.262.jar")
    assert v1.credential_providers == (
        *key_providers,
        "com.amazonaws.auth.DefaultAWSCredentialsProviderChain",
    )
    assert v2.packages == (
        "org.apache.hadoop:hadoop-aws:3.4.2",
        "software.amazon.awssdk:bundle:2.29.52",
    )
    assert v2.jars == ("hadoop-aws-3.4.2.jar", "bundle-2.29.52.jar")
    assert v2.credential_providers == (
        *key_providers,
        "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
    )
    with pytest.raises(
        GlueReplayError, match=r"no S3A artifacts for pyspark 3\.4\.1: the Spark lines known"
    ):
        s3a_artifacts("3.4.1")


def test_the_installed_pysparks_hadoop_is_the_one_its_s3a_connector_was_built_for() -> None:
    bundled = sorted(Path(pyspark.__file__).parent.glob("jars/hadoop-client-api-*.jar"))
    assert [jar.name for jar in bundled] == [f"hadoop-client-api-{s3a_artifacts().hadoop}.jar"]


def test_fetch_jars_fetches_what_each_line_loads() -> None:
    # The script runs before any venv (no pyspark), so it keeps its own copy of the tables.
    script = fetch_jars_script()
    assert sorted(script.DELTA_BY_SPARK_LINE) == sorted(DELTA_BY_SPARK_LINE)
    assert sorted(script.S3A_BY_SPARK_LINE) == sorted(S3A_BY_SPARK_LINE)
    for line, artifacts in DELTA_BY_SPARK_LINE.items():
        fetched = tuple(":".join(coordinate) for coordinate in script.delta_artifacts(line))
        assert fetched == artifacts.packages
    for line, s3a in S3A_BY_SPARK_LINE.items():
        fetched = tuple(":".join(coordinate) for coordinate in script.s3a_artifacts(line))
        assert fetched == s3a.packages
        # and nothing else: no other line's S3A jars (useless, and hundreds of MB)
        everything = [":".join(coordinate) for coordinate in script.line_artifacts(line)]
        assert sorted(everything) == sorted(
            [*DELTA_BY_SPARK_LINE[line].packages, *JDBC_DRIVER_PACKAGES, *s3a.packages]
        )


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
