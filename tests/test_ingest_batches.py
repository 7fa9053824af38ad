"""A read in several batches: one commit each, and a failed run's retry completes it.

The source below returns three batches; the second fails while a flag file exists. The first
attempt appends batch 1 only and says so in the ledger; the retry of the same request skips
batch 1 without reading it again, appends batches 2 and 3, and raw holds every record once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from glue_replay import Entity, Pipeline, Source, run_ingest_job
from glue_replay.tables import Warehouse, read_runs

SCHEMA = StructType([StructField("id", StringType()), StructField("updated_at", TimestampType())])
BATCHES = [["a1", "a2"], ["b1"], ["c1", "c2"]]


def _normalize(raw: DataFrame) -> DataFrame:
    return raw.select(
        "*",
        F.col("source_updated_at").alias("updated_at"),
        F.lit(None).cast("string").alias("quarantine_reason"),
    )


ITEMS = Entity(name="items", aggregate="item", schema=SCHEMA, normalize=_normalize)


class BatchedSource(Source):
    """Three batches; each logs its evaluation to ``reads``; batch 2 fails while ``flag``
    exists. The files stand for an external system's state (executors see them in local mode)."""

    def __init__(self, folder: Path) -> None:
        self.flag, self.reads = str(folder / "fail"), str(folder / "reads.log")

    @property
    def description(self) -> str:
        return "three batches"

    def read_full(self, spark: SparkSession) -> list[DataFrame]:
        return [self._batch(spark, n, ids) for n, ids in enumerate(BATCHES, 1)]

    def read_since(self, spark: SparkSession, start: datetime, end: datetime | None) -> DataFrame:
        raise NotImplementedError

    def read_ids(self, spark: SparkSession, ids: DataFrame) -> DataFrame:
        raise NotImplementedError

    def _batch(self, spark: SparkSession, number: int, ids: list[str]) -> DataFrame:
        flag, reads = self.flag, self.reads

        def evaluate(record_id: str) -> str:
            with Path(reads).open("a", encoding="utf-8") as log:
                log.write(f"{number}:{record_id}\n")
            if number == 2 and Path(flag).exists():
                raise RuntimeError("the source went away")
            return "2026-11-20T10:00:00Z"

        stamp = F.udf(evaluate, StringType())
        rows = spark.createDataFrame([(i,) for i in ids], "id string")
        return rows.select(
            "id",
            stamp("id").alias("updated_at"),
            F.to_json(F.struct("id")).alias("payload"),
        )


def test_a_failed_batch_is_completed_by_the_retry_and_nothing_is_appended_twice(
    spark: SparkSession, warehouse: str, tmp_path: Path
) -> None:
    source = BatchedSource(tmp_path)
    pipeline = Pipeline(entity=ITEMS, source=lambda _settings: source)
    argv = [
        "glue_jobs/ingest_items.py",
        *("--replay_mode", "full", "--request_id", "full-1", "--warehouse", warehouse),
    ]
    Path(source.flag).touch()

    assert run_ingest_job(argv, pipeline, spark=spark) == 1
    tables = Warehouse(warehouse)
    (failed,) = read_runs(spark, tables).collect()
    assert failed["status"] == "failed"
    # The cause's own text is Spark's (a Python worker traceback); the ledger keeps its type.
    assert failed["error"].startswith("IncompleteReadError: batch 2 of 3 failed (")
    assert failed["error"].endswith(
        "); batches 1-1 of 3 appended; run the same request again to complete the read"
    )
    assert sorted(
        r["id"] for r in spark.read.format("delta").load(tables.raw("items")).collect()
    ) == [
        "a1",
        "a2",
    ]

    Path(source.flag).unlink()
    assert run_ingest_job(argv, pipeline, spark=spark) == 0

    raw = spark.read.format("delta").load(tables.raw("items"))
    expected = spark.createDataFrame(
        [(i, datetime(2026, 11, 20, 10, 0), "full-1") for ids in BATCHES for i in ids],
        "id string, source_updated_at timestamp, request_id string",
    )
    assert_df_equality(
        raw.select("id", "source_updated_at", "request_id"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # Batch 1 was read once, by the first attempt: the retry skipped it without reading it.
    reads = Path(source.reads).read_text().split()
    assert sorted(r for r in reads if r.startswith("1:")) == ["1:a1", "1:a2"]
    retry = (
        read_runs(spark, tables)
        .where(F.col("status") == "succeeded")
        .select("rows_read", "rows_written", "rows_quarantined")
    )
    assert [tuple(r) for r in retry.collect()] == [(5, 5, 0)]


class SinceRecorder(BatchedSource):
    """Records the window each since read is asked for, then reads the three batches."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.windows: list[tuple[datetime, datetime | None]] = []

    def read_since(
        self, spark: SparkSession, start: datetime, end: datetime | None
    ) -> list[DataFrame]:
        self.windows.append((start, end))
        return self.read_full(spark)


def test_a_since_retry_reads_as_of_the_first_attempt(
    spark: SparkSession, warehouse: str, tmp_path: Path
) -> None:
    """A since request without ``--until`` ends at the request's first attempt's start, for every
    attempt: a retry a day later asks the source for the same window, not up to its own now."""
    source = SinceRecorder(tmp_path)
    pipeline = Pipeline(entity=ITEMS, source=lambda _settings: source)
    argv = [
        "glue_jobs/ingest_items.py",
        *("--replay_mode", "since", "--date", "2026-11-01", "--request_id", "since-1"),
        *("--warehouse", warehouse),
    ]
    first, later = datetime(2026, 11, 20, 12, tzinfo=UTC), datetime(2026, 11, 21, 12, tzinfo=UTC)
    Path(source.flag).touch()
    assert run_ingest_job(argv, pipeline, spark=spark, clock=lambda: first) == 1
    Path(source.flag).unlink()
    assert run_ingest_job(argv, pipeline, spark=spark, clock=lambda: later) == 0

    start = datetime(2026, 11, 1, tzinfo=UTC)
    assert source.windows == [(start, first), (start, first)]
    raw = spark.read.format("delta").load(Warehouse(warehouse).raw("items"))
    assert sorted(r["id"] for r in raw.collect()) == sorted(i for ids in BATCHES for i in ids)
