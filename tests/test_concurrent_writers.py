"""Two pipelines' jobs at once, as two Spark drivers on one warehouse: nothing is lost.

Delta on S3 is safe for one driver at a time (its default log store cannot refuse a second
writer's commit of the same version). Each job runs once at a time, so the library makes every
table single-writer by construction: a ledger table per job, an outbox per entity, a quarantine
per job. Here the drivers run with that same single-driver log store for local files
(``S3SingleDriverLogStore``), the customers driver (sample REST API) and the orders driver
(PostgreSQL) each running ingest and normalize for several requests at the same time; every
ledger row, outbox event and raw row of both is there afterwards, exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import SparkSession

from glue_replay.tables import Warehouse, read_outbox, read_runs
from glue_replay_devtools.postgres import PostgresServer, insert_orders, sample_orders
from glue_replay_devtools.sample_api import SampleApiServer
from sample_data import ALL_IDS, NOW

pytest_plugins = ["postgres_fixture"]

REPO = Path(__file__).resolve().parents[1]
REQUESTS = ("c-1", "c-2")

#: One driver: the pipeline's ingest then normalize, full, once per request id, in one session
#: whose Delta log store for local files has S3's single-driver semantics.
DRIVER = """
import sys
from glue_replay import run_ingest_job, run_normalize_job
from glue_replay.runtime import build_spark_session

entity, warehouse, setting, value, *requests = sys.argv[1:]
if entity == "customers":
    from glue_replay_examples.customers import PIPELINE
else:
    from glue_replay_examples.orders import PIPELINE
spark = build_spark_session(
    f"concurrent-{entity}",
    {"spark.delta.logStore.file.impl": "io.delta.storage.S3SingleDriverLogStore"},
)
for request in requests:
    argv = [f"{entity}.py", "--replay_mode", "full", "--request_id", f"{entity}-{request}",
            "--warehouse", warehouse, f"--{setting}", value]
    assert run_ingest_job(argv, PIPELINE, spark=spark) == 0, request
    assert run_normalize_job(argv[:-2], PIPELINE, spark=spark) == 0, request
"""


def test_two_pipelines_writing_at_once_lose_nothing(
    spark: SparkSession, postgres: PostgresServer, tmp_path: Path
) -> None:
    warehouse = str(tmp_path / "warehouse")
    postgres.run_sql("TRUNCATE order_lines, orders;")
    orders = sample_orders(10, now=datetime(2026, 11, 20, tzinfo=UTC))
    insert_orders(postgres, orders)
    environment = {**os.environ, **postgres.reader.as_env(), "PYTHONPATH": "lib"}

    with SampleApiServer(records=60, now=NOW) as api:
        drivers = [
            subprocess.Popen(
                [sys.executable, "-c", DRIVER, entity, warehouse, setting, value, *REQUESTS],
                cwd=REPO,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for entity, setting, value in (
                ("customers", "source_url", api.url),
                ("orders", "jdbc_url", postgres.jdbc_url),
            )
        ]
        outputs = [driver.communicate(timeout=900)[0] for driver in drivers]
    assert [driver.returncode for driver in drivers] == [0, 0], "\n".join(
        output[-3000:] for output in outputs
    )

    tables = Warehouse(warehouse)
    ledger = read_runs(spark, tables).select("entity", "stage", "request_id", "status")
    assert_df_equality(
        ledger,
        spark.createDataFrame(
            [
                (entity, stage, f"{entity}-{request}", "succeeded")
                for entity in ("customers", "orders")
                for stage in ("ingest", "normalize")
                for request in REQUESTS
            ],
            "entity string, stage string, request_id string, status string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # A full replay re-publishes every record: one event per record and request, both entities.
    events = read_outbox(spark, tables).select("aggregate_type", "aggregate_id", "request_id")
    expected_ids = {
        # Customers 20, 40 and 60 and the tenth order (index 9) are malformed: quarantined.
        "customers": [i for i in ALL_IDS if i not in {"20", "40", "60"}],
        "orders": [str(order.id) for index, order in enumerate(orders) if index % 10 != 9],
    }
    assert_df_equality(
        events,
        spark.createDataFrame(
            [
                (entity, record, f"{entity}-{request}")
                for entity, ids in expected_ids.items()
                for record in ids
                for request in REQUESTS
            ],
            "aggregate_type string, aggregate_id string, request_id string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
