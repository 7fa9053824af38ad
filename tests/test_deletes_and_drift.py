"""Soft deletes and schema drift, end to end: the job entry points, the sample API on loopback
(or a small in-memory source) and a Delta warehouse under ``tmp_path``.

The clock is a :class:`SteppingClock` shared by the jobs and the API, so every version,
window and event below is known in advance.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from glue_replay import (
    Pipeline,
    RecordSource,
    SourceRecord,
    SourceSettings,
    run_ingest_job,
    run_normalize_job,
)
from glue_replay.tables import Warehouse, read_outbox, read_quarantine, read_runs
from glue_replay_devtools.sample_api import SampleApiServer
from glue_replay_examples.customers import CUSTOMERS, PIPELINE
from glue_replay_examples.customers.transforms import (
    CUSTOMER_SCHEMA,
    PAYLOAD_SCHEMA,
    normalize_customers,
)
from sample_data import NOW
from test_pipelines import SteppingClock, T

#: The business columns a test compares, and whether the row is a tombstone.
ROW = (
    "id string, email string, status string, loyalty_points int, address_city string, "
    "updated_at timestamp, is_deleted boolean"
)
EVENTS = "aggregate_id string, event_type string, replay_mode string, status string"
LEDGER = (
    "stage string, status string, rows_read long, rows_written long, rows_outboxed long, "
    "rows_quarantined long, rows_unchanged long, note string"
)


class Jobs:
    """The two job entry points of one pipeline, as ``glue_jobs/*.py`` run them."""

    def __init__(self, spark: SparkSession, warehouse: str, url: str, clock: SteppingClock) -> None:
        self.spark, self.clock = spark, clock
        self.common = ["--warehouse", warehouse, "--source_url", url]

    def ingest(self, pipeline: Pipeline, *arguments: str) -> int:
        argv = [f"glue_jobs/ingest_{pipeline.name}.py", *arguments, *self.common]
        return run_ingest_job(argv, pipeline, spark=self.spark, clock=self.clock)

    def normalize(self, pipeline: Pipeline, *arguments: str) -> int:
        argv = [f"glue_jobs/normalize_{pipeline.name}.py", *arguments, *self.common]
        return run_normalize_job(argv, pipeline, spark=self.spark, clock=self.clock)

    def both(self, *arguments: str, pipeline: Pipeline = PIPELINE) -> None:
        """Ingest, then normalize one minute later, as the workflow cascade does."""
        assert self.ingest(pipeline, *arguments) == 0
        self.clock.advance(minutes=1)
        assert self.normalize(pipeline, *arguments) == 0


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(NOW)


@pytest.fixture
def api(clock: SteppingClock) -> Iterator[SampleApiServer]:
    with SampleApiServer(records=60, now=NOW, clock=clock) as server:
        yield server


@pytest.fixture
def tables(warehouse: str) -> Warehouse:
    return Warehouse(warehouse)


@pytest.fixture
def jobs(spark: SparkSession, warehouse: str, api: SampleApiServer, clock: SteppingClock) -> Jobs:
    return Jobs(spark, warehouse, api.url, clock)


def normalized(spark: SparkSession, tables: Warehouse, ids: Sequence[str]) -> DataFrame:
    table = spark.read.format("delta").load(tables.normalized("customers"))
    return table.where(F.col("id").isin(*ids)).select(*[c.split()[0] for c in ROW.split(", ")])


def events(spark: SparkSession, tables: Warehouse, request_id: str) -> DataFrame:
    return (
        read_outbox(spark, tables)
        .where(F.col("request_id") == request_id)
        .select(
            "aggregate_id",
            "event_type",
            "replay_mode",
            F.get_json_object("payload", "$.status").alias("status"),
        )
    )


def ledger(spark: SparkSession, tables: Warehouse, request_id: str) -> DataFrame:
    return (
        read_runs(spark, tables)
        .where(F.col("request_id") == request_id)
        .orderBy("started_at", "stage")
        .select(*[c.split()[0] for c in LEDGER.split(", ")])
    )


def frame(spark: SparkSession, rows: Iterable[tuple[object, ...]], schema: str) -> DataFrame:
    return spark.createDataFrame(list(rows), schema)


def assert_same(actual: DataFrame, expected: DataFrame) -> None:
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


# --- soft deletes ----------------------------------------------------------------------------


def test_a_soft_delete_is_a_tombstone_and_one_deleted_event_and_an_update_undeletes(
    spark: SparkSession, jobs: Jobs, api: SampleApiServer, clock: SteppingClock, tables: Warehouse
) -> None:
    jobs.both("--replay_mode", "full", "--request_id", "full-1")

    clock.advance(hours=1)  # 13:01
    assert api.delete(["5"]) == ["5"]
    assert api.insert(1) == ["61"]
    clock.advance(minutes=1)
    jobs.both("--request_id", "bau-1")

    # The record stays, marked deleted; the insert is a new live row.
    deleted_at, inserted_at = T(61 / 60), T(61 / 60)
    assert_same(
        normalized(spark, tables, ["1", "5", "61"]),
        frame(
            spark,
            [
                ("1", "amira.smith1@example.org", "suspended", 4249, "Utrecht",
                 datetime(2025, 3, 3, 0, 7, 13), False),
                ("5", "jane.schmidt5@mail.example.com", "deleted", 2066, None, deleted_at, True),
                ("61", "john.andersson61@example.com", "active", 3046, "Paris", inserted_at,
                 False),
            ],
            ROW,
        ),
    )  # fmt: skip
    assert_same(
        events(spark, tables, "bau-1"),
        frame(
            spark,
            [
                ("5", "customer.deleted", "bau", "deleted"),
                ("61", "customer.created", "bau", "active"),
            ],
            EVENTS,
        ),
    )
    assert_same(
        ledger(spark, tables, "bau-1"),
        frame(
            spark,
            [
                ("ingest", "succeeded", 2, 2, 0, 0, 0, None),
                # The first BAU's window is the last 24 hours of raw: full-1's rows too.
                ("normalize", "succeeded", 62, 2, 2, 3, 57, None),
            ],
            LEDGER,
        ),
    )

    # BAU publishes a deletion once: the next BAU window still holds it, and emits nothing.
    clock.advance(minutes=5)
    jobs.both("--request_id", "bau-2")
    assert_same(events(spark, tables, "bau-2"), frame(spark, [], EVENTS))

    # A replay re-publishes what it touches, as it is: deleted.
    clock.advance(minutes=5)
    jobs.both("--replay_mode", "targeted", "--ids", "5", "--request_id", "t-1")
    assert_same(
        events(spark, tables, "t-1"),
        frame(spark, [("5", "customer.deleted", "targeted", "deleted")], EVENTS),
    )

    # A later change at the source un-deletes: the normal updated event, a live row again.
    clock.advance(hours=1)  # 14:15
    api.mutate(ids=["5"])
    clock.advance(minutes=1)
    jobs.both("--request_id", "bau-3")
    assert_same(
        events(spark, tables, "bau-3"),
        frame(spark, [("5", "customer.updated", "bau", "active")], EVENTS),
    )
    assert_same(
        normalized(spark, tables, ["5"]),
        frame(
            spark,
            [("5", "jane.schmidt5@mail.example.com", "active", 2076, None, T(135 / 60), False)],
            ROW,
        ),
    )


class MemorySource(RecordSource):
    """A source whose records the test edits between runs (a record can vanish)."""

    def __init__(self, records: list[dict[str, object]]) -> None:
        self.records = records

    @property
    def description(self) -> str:
        return "memory"

    def records_full(self) -> Iterator[SourceRecord]:
        return (SourceRecord.from_json(r) for r in self.records)

    def records_since(self, start: datetime, end: datetime | None) -> Iterator[SourceRecord]:
        return self.records_full()

    def records_for_ids(self, ids: Sequence[str]) -> Iterator[SourceRecord]:
        return (r for r in self.records_full() if r.id in ids)


def customer(id_: str, status: str) -> dict[str, object]:
    return {"id": id_, "email": f"c{id_}@example.com", "status": status,
            "updated_at": "2026-05-01T00:00:00Z"}  # fmt: skip


def test_ids_missing_from_a_full_read_are_noted_in_the_ledger_never_deleted(
    spark: SparkSession, warehouse: str, clock: SteppingClock, tables: Warehouse
) -> None:
    source = MemorySource(
        [customer("1", "active"), customer("2", "active"), customer("3", "deleted"),
         customer("4", "active")]
    )  # fmt: skip

    def factory(settings: SourceSettings) -> MemorySource:
        return source

    pipeline = Pipeline(CUSTOMERS, source=factory)
    jobs = Jobs(spark, warehouse, "http://127.0.0.1:9", clock)
    jobs.both("--replay_mode", "full", "--request_id", "full-1", pipeline=pipeline)
    source.records = [customer("1", "active")]  # 2 and 4 vanished; 3 is a tombstone already
    clock.advance(hours=1)
    jobs.both("--replay_mode", "full", "--request_id", "full-2", pipeline=pipeline)

    note = (
        "2 ids in normalized/customers not in this full read (reported, not deleted; "
        "only a deleted flag deletes): 2, 4"
    )
    assert_same(
        ledger(spark, tables, "full-2"),
        frame(
            spark,
            [
                ("ingest", "succeeded", 1, 1, 0, 0, 0, note),
                ("normalize", "succeeded", 5, 0, 4, 0, 5, None),
            ],
            LEDGER,
        ),
    )  # fmt: skip
    vanished_at = datetime(2026, 5, 1)
    assert_same(
        normalized(spark, tables, ["1", "2", "3", "4"]),
        frame(
            spark,
            [
                ("1", "c1@example.com", "active", None, None, vanished_at, False),
                ("2", "c2@example.com", "active", None, None, vanished_at, False),
                ("3", "c3@example.com", "deleted", None, None, vanished_at, True),
                ("4", "c4@example.com", "active", None, None, vanished_at, False),
            ],
            ROW,
        ),
    )
    assert_same(
        events(spark, tables, "full-2"),
        frame(
            spark,
            [
                ("1", "customer.updated", "full", "active"),
                ("2", "customer.updated", "full", "active"),
                ("3", "customer.deleted", "full", "deleted"),  # a tombstone stays deleted
                ("4", "customer.updated", "full", "active"),
            ],
            EVENTS,
        ),
    )


# --- schema drift ----------------------------------------------------------------------------


def with_tier(raw: DataFrame) -> DataFrame:
    """The customers transform plus the source's new optional field ``tier``."""
    return normalize_customers(raw).withColumn(
        "tier", F.lower(F.trim(F.get_json_object("payload", "$.tier")))
    )


TIERED = replace(
    CUSTOMERS,
    schema=StructType([*CUSTOMER_SCHEMA.fields, StructField("tier", StringType())]),
    payload=StructType([*PAYLOAD_SCHEMA.fields, StructField("tier", StringType())]),
    normalize=with_tier,
)


def test_a_new_field_breaks_nothing_and_is_normalized_once_mapped_and_a_retyped_one_is_quarantined(
    spark: SparkSession, jobs: Jobs, api: SampleApiServer, clock: SteppingClock, tables: Warehouse
) -> None:
    jobs.both("--replay_mode", "full", "--request_id", "full-1")

    clock.advance(hours=1)  # 13:01
    api.mutate(ids=["5"], fields={"tier": " Gold"})  # a new optional field
    api.mutate(ids=["2"], fields={"address": "1 Main St"})  # an object becomes text
    api.mutate(ids=["3"], fields={"loyalty_points": "a lot"})  # a number becomes text
    api.mutate(ids=["4"], fields={"first_name": {"given": "Jane"}})  # text becomes an object
    clock.advance(minutes=1)
    jobs.both("--request_id", "bau-1")

    # Raw keeps every payload as the source gave it, the new field included.
    raw = spark.read.format("delta").load(tables.raw("customers"))
    assert_same(
        raw.where(F.col("request_id") == "bau-1").select(
            "id", F.get_json_object("payload", "$.tier").alias("tier")
        ),
        frame(
            spark,
            [("2", None), ("3", None), ("4", None), ("5", " Gold")],
            "id string, tier string",
        ),
    )  # fmt: skip
    assert_same(
        read_quarantine(spark, tables, "customers")
        .where(F.col("request_id") == "bau-1")
        .select("id", "reason", "stage"),
        frame(
            spark,
            [
                ("2", "address is a single value, expected an object", "normalize"),
                ("3", "loyalty_points is not an integer", "normalize"),
                ("4", "first_name is an object, expected a single value", "normalize"),
            ],
            "id string, reason string, stage string",
        ),
    )
    # 5's new version merged (newer), its normalized content unchanged: no BAU event.
    assert_same(events(spark, tables, "bau-1"), frame(spark, [], EVENTS))
    assert_same(
        ledger(spark, tables, "bau-1"),
        frame(
            spark,
            [
                ("ingest", "succeeded", 4, 4, 0, 0, 0, None),
                # The first BAU's window holds full-1's 60 rows (3 malformed) too.
                ("normalize", "succeeded", 64, 1, 0, 6, 57, None),
            ],
            LEDGER,
        ),
    )  # fmt: skip

    # The entity starts mapping the field: a replay renormalizes, and normalized gains it.
    tiered = Pipeline(TIERED, source=PIPELINE.source)
    clock.advance(minutes=5)
    assert (
        jobs.normalize(tiered, "--replay_mode", "targeted", "--ids", "1,5", "--request_id", "t-1")
        == 0
    )
    table = spark.read.format("delta").load(tables.normalized("customers"))
    assert_same(
        table.where(F.col("id").isin("1", "5", "6")).select("id", "tier", "request_id"),
        frame(
            spark,
            [("1", None, "t-1"), ("5", "gold", "t-1"), ("6", None, "full-1")],
            "id string, tier string, request_id string",
        ),
    )
    payloads = read_outbox(spark, tables).where(F.col("request_id") == "t-1")
    assert_same(
        payloads.select(
            "aggregate_id", "event_type", F.get_json_object("payload", "$.tier").alias("tier")
        ),
        frame(
            spark,
            [("1", "customer.updated", None), ("5", "customer.updated", "gold")],
            "aggregate_id string, event_type string, tier string",
        ),
    )
    assert "tier" in json.loads(payloads.where(F.col("aggregate_id") == "1").first()["payload"])
