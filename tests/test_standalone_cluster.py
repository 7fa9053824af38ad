"""Both sources on a real Spark standalone cluster: a master and two workers on loopback.

The job scripts run as their own driver processes (``glue_jobs/ingest_*.py``, as Glue runs them)
against the cluster (``$GLUE_REPLAY_SPARK_MASTER``). The workers run with a clean environment in
their own working directories, so a source that relied on executors sharing the driver's memory,
files, working directory or environment (the database login is only in the driver's) fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from glue_replay.tables import Warehouse
from glue_replay_devtools.postgres import PostgresServer, insert_orders, sample_orders
from glue_replay_devtools.sample_api import SampleApiServer
from sample_data import ALL_IDS, NOW
from spark_cluster import Cluster, standalone_cluster

pytest_plugins = ["postgres_fixture"]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster")) as running:
        yield running


def run_job(cluster: Cluster, script: str, *arguments: str, env: dict[str, str]) -> None:
    """One job as its own driver on the cluster; its output is shown when it fails."""
    result = subprocess.run(
        [sys.executable, script, *arguments],
        cwd=REPO,
        env={**env, "GLUE_REPLAY_SPARK_MASTER": cluster.master_url},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def executor_folders(cluster: Cluster) -> dict[str, int]:
    """How many executors each worker ran (their folders under the worker's work dir)."""
    return {
        home.name: sum(1 for path in (home / "work").glob("app-*/*") if path.is_dir())
        for home in cluster.worker_dirs
    }


def test_both_sources_ingest_on_a_standalone_cluster(
    spark: SparkSession, cluster: Cluster, postgres: PostgresServer, tmp_path: Path
) -> None:
    warehouse = str(tmp_path / "warehouse")
    env = dict(os.environ)
    for name in ("GLUE_REPLAY_JDBC_USER", "GLUE_REPLAY_JDBC_PASSWORD"):
        env.pop(name, None)

    with SampleApiServer(records=60, now=NOW) as api:
        run_job(
            cluster,
            "glue_jobs/ingest_customers.py",
            *("--replay_mode", "full", "--request_id", "cluster-customers"),
            *("--warehouse", warehouse, "--source_url", api.url),
            env=env,
        )

    postgres.run_sql("TRUNCATE order_lines, orders;")
    orders = sample_orders(12, now=datetime(2026, 11, 20, tzinfo=UTC))
    insert_orders(postgres, orders)
    run_job(
        cluster,
        "glue_jobs/ingest_orders.py",
        *("--replay_mode", "full", "--request_id", "cluster-orders"),
        *("--warehouse", warehouse, "--jdbc_url", postgres.jdbc_url),
        env={**env, **postgres.reader.as_env()},
    )

    tables = Warehouse(warehouse)
    customers = spark.read.format("delta").load(tables.raw("customers"))
    assert_df_equality(
        customers.select("id", "request_id"),
        spark.createDataFrame(
            [(i, "cluster-customers") for i in ALL_IDS], "id string, request_id string"
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    raw_orders = spark.read.format("delta").load(tables.raw("orders"))
    assert_df_equality(
        raw_orders.select("id", "request_id"),
        spark.createDataFrame(
            [(str(order.id), "cluster-orders") for order in orders], "id string, request_id string"
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # Both workers ran executors for the jobs: the reads really left the driver.
    assert all(count >= 1 for count in executor_folders(cluster).values()), executor_folders(
        cluster
    )
