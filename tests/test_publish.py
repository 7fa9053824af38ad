"""The publisher end to end: replays of customers (sample API on loopback) published to a JSONL
folder and to SQS (``moto_server`` on loopback), with order per record, kills and dead letters.

Outbox versions are known in advance: the first normalize creates the outbox (version 0) and
appends its events (version 1); every later normalize that emits appends one version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_replay import run_publish_job
from glue_replay.tables import Warehouse, read_outbox
from glue_replay.trigger.status import show_status
from glue_replay_devtools.sample_api import SampleApiServer
from glue_replay_examples.customers import PIPELINE
from moto_process import ACCOUNT, FAKE_AWS_ENVIRONMENT, running_moto_server
from sample_data import NOW
from test_pipelines import Jobs, SteppingClock, backfill, backfilled  # noqa: F401 - a fixture

REPO = Path(__file__).resolve().parents[1]
TEN = [str(n) for n in range(1, 11)]
LEDGER_COLUMNS = (
    "run_id",
    "request_id",
    "replay_mode",
    "status",
    "rows_delivered",
    "rows_dead_lettered",
    "first_outbox_version",
    "last_outbox_version",
)


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(NOW)


@pytest.fixture
def api(clock: SteppingClock) -> Iterator[SampleApiServer]:
    with SampleApiServer(records=10, now=NOW, clock=clock) as server:
        yield server


@pytest.fixture
def jobs(spark: SparkSession, warehouse: str, api: SampleApiServer, clock: SteppingClock) -> Jobs:
    return Jobs(spark, warehouse, api, clock)


@pytest.fixture(scope="module")
def backfilled_template(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """After the backfill ``r-full`` of the ten records (outbox versions 0 and 1): every test
    starts from a copy (``backfilled``, imported: it copies the template of the test's module)."""
    return backfill(spark, tmp_path_factory.mktemp("r-full") / "warehouse", 10, "r-full")


def publish(spark: SparkSession, warehouse: str, clock: SteppingClock, *arguments: str) -> int:
    argv = ["glue_jobs/publish_outbox.py", "--warehouse", warehouse, *arguments]
    return run_publish_job(argv, [PIPELINE], spark=spark, clock=clock)


def published_files(warehouse: str) -> dict[str, list[dict[str, object]]]:
    folder = Path(warehouse) / "published" / "customers"
    return {
        path.name: [json.loads(line) for line in path.read_text().splitlines()]
        for path in sorted(folder.glob("*.jsonl"))
    }


def ledger(spark: SparkSession, warehouse: str) -> DataFrame:
    path = Warehouse(warehouse).runs_of("publish", "customers")
    return spark.read.format("delta").load(path).select(*LEDGER_COLUMNS)


def ledger_frame(spark: SparkSession, rows: list[tuple[object, ...]]) -> DataFrame:
    schema = (
        "run_id string, request_id string, replay_mode string, status string, "
        "rows_delivered long, rows_dead_lettered long, first_outbox_version long, "
        "last_outbox_version long"
    )
    return spark.createDataFrame(rows, schema)


def outbox_lines(spark: SparkSession, warehouse: str, request_id: str) -> list[dict[str, object]]:
    """The request's outbox rows as the envelope the sinks send (payload parsed)."""
    rows = (
        read_outbox(spark, Warehouse(warehouse))
        .where(F.col("request_id") == request_id)
        .orderBy("aggregate_id")
        .collect()
    )
    return [
        {
            "event_id": row["event_id"],
            "aggregate_type": row["aggregate_type"],
            "aggregate_id": row["aggregate_id"],
            "event_type": row["event_type"],
            "occurred_at": row["occurred_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "request_id": row["request_id"],
            "replay_mode": row["replay_mode"],
            "payload": json.loads(row["payload"]),
        }
        for row in rows
    ]


def assert_read_without_spark(
    spark: SparkSession, warehouse: str, changes_expected: list[tuple[str, str, int]]
) -> None:
    """delta-rs (``deltalake``), not Spark: what a consumer of the tables would use. The outbox
    is read with its change feed on (as the publisher turns it on) and holds the same rows."""
    from deltalake import DeltaTable, QueryBuilder

    from glue_replay.pipelines.normalize import normalized_schema
    from glue_replay.tables.schemas import OUTBOX_SCHEMA, RAW_SCHEMA

    tables = Warehouse(warehouse)
    expected_columns = {
        tables.raw("customers"): RAW_SCHEMA.fieldNames(),
        tables.normalized("customers"): normalized_schema(PIPELINE.entity).fieldNames(),
        tables.outbox_of("customers"): OUTBOX_SCHEMA.fieldNames(),
    }
    for path, columns in expected_columns.items():
        table = DeltaTable(path)
        assert [f.name for f in table.schema().fields] == columns, path
        rows = arrow_rows(QueryBuilder().register("t", table).execute("SELECT * FROM t").read_all())
        key = "event_id" if "event_id" in columns else "id"
        strings = [
            f.name
            for f in spark.read.format("delta").load(path).schema.fields
            if f.dataType.simpleString() == "string"
        ]
        by_spark = sorted(
            tuple(row[c] for c in strings)
            for row in spark.read.format("delta").load(path).collect()
        )
        assert sorted(tuple(row[c] for c in strings) for row in rows) == by_spark, path
        assert sorted(row[key] for row in rows) == sorted(r[0] for r in by_spark) or key == "id"
    outbox = DeltaTable(tables.outbox_of("customers"))
    assert outbox.metadata().configuration == {
        "delta.appendOnly": "true",
        "delta.enableChangeDataFeed": "true",
    }
    changes = arrow_rows(outbox.load_cdf(starting_version=0).read_all())
    assert (
        sorted((c["aggregate_id"], c["_change_type"], c["_commit_version"]) for c in changes)
        == changes_expected
    )


@pytest.mark.usefixtures("backfilled")
def test_each_run_publishes_the_new_commits_once_in_commit_order_and_records_them_per_request(
    spark: SparkSession,
    warehouse: str,
    jobs: Jobs,
    api: SampleApiServer,
    clock: SteppingClock,
) -> None:
    assert publish(spark, warehouse, clock, "--JOB_RUN_ID", "p-1") == 0

    first = published_files(warehouse)
    assert list(first) == ["batch-00000000-v00000001-00000001.jsonl"]
    lines = sorted(
        first["batch-00000000-v00000001-00000001.jsonl"], key=lambda e: e["aggregate_id"]
    )
    assert [(e["aggregate_id"], e["event_type"], e["replay_mode"]) for e in lines] == [
        (i, "customer.created", "full") for i in sorted(TEN)
    ]
    # Each line is the outbox event, the payload embedded as JSON, keys in this order.
    assert lines == outbox_lines(spark, warehouse, "r-full")
    assert list(lines[0]) == [
        "event_id",
        "aggregate_type",
        "aggregate_id",
        "event_type",
        "occurred_at",
        "request_id",
        "replay_mode",
        "payload",
    ]

    # Three commits before the next publish; customer 3 changes in each.
    clock.advance(hours=1)
    api.mutate(["3"])
    clock.advance(minutes=1)
    jobs.both("--request_id", "r-bau-1")
    clock.advance(hours=1)
    api.mutate(["3", "5"])
    clock.advance(minutes=1)
    jobs.both("--request_id", "r-bau-2")
    clock.advance(minutes=5)
    jobs.both("--replay_mode", "targeted", "--ids", "3,7", "--request_id", "r-targeted")
    clock.advance(minutes=5)
    assert publish(spark, warehouse, clock, "--JOB_RUN_ID", "p-2") == 0

    second = published_files(warehouse)
    assert list(second) == [
        "batch-00000000-v00000001-00000001.jsonl",
        "batch-00000001-v00000002-00000004.jsonl",
    ]
    batch = second["batch-00000001-v00000002-00000004.jsonl"]
    # The three commits' events; per aggregate in commit order: every change of 3 in the order
    # it was made (the file orders each aggregate's events, not the batch as a whole).
    assert sorted((e["aggregate_id"], e["request_id"], e["event_type"]) for e in batch) == [
        ("3", "r-bau-1", "customer.updated"),
        ("3", "r-bau-2", "customer.updated"),
        ("3", "r-targeted", "customer.updated"),
        ("5", "r-bau-2", "customer.updated"),
        ("7", "r-targeted", "customer.updated"),
    ]
    assert [(e["request_id"], e["event_type"]) for e in batch if e["aggregate_id"] == "3"] == [
        ("r-bau-1", "customer.updated"),
        ("r-bau-2", "customer.updated"),
        ("r-targeted", "customer.updated"),
    ]
    assert (
        first["batch-00000000-v00000001-00000001.jsonl"]
        == second["batch-00000000-v00000001-00000001.jsonl"]
    )

    # The request traced to the sink: ingest -> normalize -> publish, and what was delivered.
    said: list[str] = []
    assert show_status("r-bau-2", warehouse=warehouse, say=said.append)
    stages = [line.split()[0] for line in said if line.startswith("  ")]
    assert stages == ["ingest", "normalize", "publish"]
    publish_line = next(line for line in said if line.startswith("  publish"))
    sink = f"file:{Path(warehouse).resolve()}/published"
    assert (
        f"succeeded  delivered 2, dead-lettered 0, outbox versions 3..3, to {sink}  run p-2"
        in publish_line
    )
    assert said[-1] == f"delivered: customers 2 of 2 events, to {sink}"

    # Nothing new: no file, a run that delivered nothing.
    clock.advance(minutes=5)
    assert publish(spark, warehouse, clock, "--JOB_RUN_ID", "p-3") == 0
    assert published_files(warehouse) == second

    assert_read_without_spark(
        spark,
        warehouse,
        sorted(
            [(i, "insert", 1) for i in TEN]
            + [("3", "insert", 2), ("3", "insert", 3), ("5", "insert", 3)]
            + [("3", "insert", 4), ("7", "insert", 4)]
        ),
    )
    assert_df_equality(
        ledger(spark, warehouse),
        ledger_frame(
            spark,
            [
                ("p-1", "p-1", "", "succeeded", 10, 0, 1, 1),
                ("p-1", "r-full", "full", "succeeded", 10, 0, 1, 1),
                ("p-2", "p-2", "", "succeeded", 5, 0, 2, 4),
                ("p-2", "r-bau-1", "bau", "succeeded", 1, 0, 2, 2),
                ("p-2", "r-bau-2", "bau", "succeeded", 2, 0, 3, 3),
                ("p-2", "r-targeted", "targeted", "succeeded", 2, 0, 4, 4),
                ("p-3", "p-3", "", "succeeded", 0, 0, None, None),
            ],
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def publish_killed_after_delivery(
    warehouse: str, *arguments: str, environment: dict[str, str] | None = None
) -> None:
    """The publish job in a process of its own, SIGKILLed once its first batch is delivered."""
    killed = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "model_job.py"),
            NOW.isoformat(),
            "after_delivery",
            "customers",
            "publish",
            "glue_jobs/publish_outbox.py",
            "--warehouse",
            warehouse,
            "--entities",
            "customers",
            *arguments,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(environment or {})},
    )
    assert killed.returncode == -9, killed.stderr[-2000:]


# --- AWS sinks through the publish stage: SQS on moto_server ---------------------------------


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_moto_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture
def aws(spark: SparkSession, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The fake AWS environment, here and in Spark's Python workers (which send the events)."""
    environment = {**FAKE_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": moto_endpoint}
    workers = spark.sparkContext.environment
    saved = {key: workers.get(key) for key in environment}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
        workers[key] = value
    yield moto_endpoint
    for key, value in saved.items():
        if value is None:
            workers.pop(key, None)
        else:
            workers[key] = value


def received(queue_url: str) -> list[tuple[str, str, str]]:
    """Every message on the queue, in the order SQS hands them out: (group, request, event);
    the group of a FIFO queue's message is its aggregate, a standard queue's is ``-``."""
    sqs = boto3.client("sqs")
    messages: list[tuple[str, str, str]] = []
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["MessageGroupId"],
            WaitTimeSeconds=0,
        )
        batch = response.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            body = json.loads(message["Body"])
            group = message.get("Attributes", {}).get("MessageGroupId", "-")
            assert group in ("-", body["aggregate_id"])
            messages.append((group, body["request_id"], body["event_id"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def dead_letter_state(spark: SparkSession, warehouse: str) -> DataFrame:
    from glue_replay.pipelines.publish import dead_letter_state as state

    return state(spark, Warehouse(warehouse).dead_letter("customers")).select(
        "aggregate_id", "request_id", "status"
    )


@pytest.mark.usefixtures("backfilled")
def test_events_a_queue_refused_are_dead_lettered_their_aggregate_held_then_retried_in_order(
    spark: SparkSession,
    warehouse: str,
    jobs: Jobs,
    api: SampleApiServer,
    clock: SteppingClock,
    aws: str,
) -> None:
    queue_url = f"{aws}/{ACCOUNT}/customer-events.fifo"
    sink = f"sqs:{queue_url}"

    # The queue does not exist yet: every event is refused (not retryable) and dead-lettered.
    assert publish(spark, warehouse, clock, "--sink", sink, "--JOB_RUN_ID", "p-1") == 0
    clock.advance(hours=1)
    api.mutate(["3"])
    clock.advance(minutes=1)
    jobs.both("--request_id", "r-bau")
    # 3's new event waits behind its dead one; with --fail_on_dead_letter the run says so.
    assert (
        publish(
            spark,
            warehouse,
            clock,
            "--sink",
            sink,
            "--fail_on_dead_letter",
            "true",
            "--JOB_RUN_ID",
            "p-2",
        )
        == 1
    )
    expected_state = [(i, "r-full", "dead") for i in TEN] + [("3", "r-bau", "held")]
    assert_df_equality(
        dead_letter_state(spark, warehouse),
        spark.createDataFrame(
            expected_state, "aggregate_id string, request_id string, status string"
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )

    # An id that is not a dead letter is refused before anything is sent.
    assert (
        publish(
            spark,
            warehouse,
            clock,
            "--sink",
            sink,
            "--dead_letters",
            "retry",
            "--dead_letter_ids",
            "no-such-event",
        )
        == 2
    )

    boto3.client("sqs").create_queue(
        QueueName="customer-events.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false"},
    )
    clock.advance(minutes=5)
    assert (
        publish(
            spark,
            warehouse,
            clock,
            "--sink",
            sink,
            "--dead_letters",
            "retry",
            "--JOB_RUN_ID",
            "p-3",
        )
        == 0
    )

    messages = received(queue_url)
    by_group: dict[str, list[str]] = {}
    for group, request_id, _ in messages:
        by_group.setdefault(group, []).append(request_id)
    assert by_group == {i: (["r-full", "r-bau"] if i == "3" else ["r-full"]) for i in TEN}
    outbox = read_outbox(spark, Warehouse(warehouse)).select("event_id").collect()
    assert sorted(e for _, _, e in messages) == sorted(row["event_id"] for row in outbox)
    assert_df_equality(
        dead_letter_state(spark, warehouse),
        spark.createDataFrame(
            [(i, r, "delivered") for i, r, _ in expected_state],
            "aggregate_id string, request_id string, status string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_df_equality(
        ledger(spark, warehouse).where(F.col("run_id") == "p-3"),
        ledger_frame(
            spark,
            [
                ("p-3", "p-3", "", "succeeded", 11, 0, 1, 2),
                ("p-3", "r-full", "full", "succeeded", 10, 0, 1, 1),
                ("p-3", "r-bau", "bau", "succeeded", 1, 0, 2, 2),
            ],
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def arrow_rows(table: Any) -> list[dict[str, Any]]:
    """An Arrow table (delta-rs hands back arro3's) as a list of dicts."""
    names = list(table.column_names)
    columns = [table.column(name).to_pylist() for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


@pytest.mark.usefixtures("backfilled")
def test_a_run_killed_after_delivering_a_batch_loses_nothing_and_repeats_it_under_the_same_ids(
    spark: SparkSession, warehouse: str, clock: SteppingClock, aws: str
) -> None:
    """Killed once a batch reached the sink, before its checkpoint recorded it: the next run
    redoes the batch. The file sink rewrites the same file (exactly once); a queue gets every
    event again under the event id the consumer already has (at least once)."""
    publish_killed_after_delivery(warehouse, "--JOB_RUN_ID", "p-killed")
    # The batch reached the sink; the checkpoint does not say so.
    name = "batch-00000000-v00000001-00000001.jsonl"
    delivered_before = published_files(warehouse)
    assert list(delivered_before) == [name]

    assert (
        publish(spark, warehouse, SteppingClock(NOW + timedelta(hours=1)), "--JOB_RUN_ID", "p-2")
        == 0
    )

    after = published_files(warehouse)
    assert list(after) == [name]
    assert sorted(after[name], key=lambda e: e["aggregate_id"]) == outbox_lines(
        spark, warehouse, "r-full"
    )
    assert_df_equality(
        ledger(spark, warehouse),
        ledger_frame(
            spark,
            [
                ("p-killed", "p-killed", "", "abandoned", 0, 0, None, None),
                ("p-2", "p-2", "", "succeeded", 10, 0, 1, 1),
                ("p-2", "r-full", "full", "succeeded", 10, 0, 1, 1),
            ],
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )

    queue_url = boto3.client("sqs").create_queue(QueueName="customer-events")["QueueUrl"]
    environment = {**FAKE_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": aws}
    sink = ("--sink", f"sqs:{queue_url}")
    publish_killed_after_delivery(
        warehouse, *sink, "--JOB_RUN_ID", "p-killed-sqs", environment=environment
    )
    first = received(queue_url)
    assert publish(spark, warehouse, clock, *sink, "--JOB_RUN_ID", "p-sqs") == 0
    again = received(queue_url)
    outbox_ids = sorted(r["event_id"] for r in read_outbox(spark, Warehouse(warehouse)).collect())
    assert sorted(event_id for _, _, event_id in first) == outbox_ids
    assert sorted(event_id for _, _, event_id in again) == outbox_ids
    assert publish(spark, warehouse, clock, *sink, "--JOB_RUN_ID", "p-sqs-2") == 0
    assert received(queue_url) == []
