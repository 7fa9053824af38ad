"""The runs ledger: one row per job run, upserted as the run goes from ``running`` to its end.

It answers the operator's questions (who asked for what, what happened, which ids were missing)
and holds the BAU watermark: only a successful BAU run moves it.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from delta.tables import DeltaTable
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from glue_replay.tables.delta import ensure_table, table_exists
from glue_replay.tables.schemas import RUNS_SCHEMA


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DRY_RUN = "dry_run"


@dataclass
class RunRecord:
    """A ledger row. Field order is the column order of ``RUNS_SCHEMA``."""

    run_id: str
    request_id: str
    job_name: str
    stage: str
    entity: str
    replay_mode: str
    status: RunStatus
    requested_by: str
    arguments: str
    request_fingerprint: str
    id_count: int
    window_start: datetime | None
    window_end: datetime | None
    started_at: datetime
    finished_at: datetime | None = None
    rows_read: int = 0
    rows_written: int = 0
    rows_outboxed: int = 0
    rows_quarantined: int = 0
    rows_unchanged: int = 0
    missing_ids: list[str] = field(default_factory=list)
    watermark: datetime | None = None
    note: str | None = None
    error: str | None = None


assert [f.name for f in RUNS_SCHEMA.fields] == list(RunRecord.__dataclass_fields__)


class RunsLedger:
    """The ``runs`` Delta table."""

    def __init__(self, spark: SparkSession, path: str) -> None:
        self.spark = spark
        self.path = path

    def start(self, run: RunRecord) -> None:
        """Add the run's row (an append: cheap, and it never touches other runs' rows)."""
        ensure_table(self.spark, self.path, RUNS_SCHEMA)
        values = tuple(str(v) if isinstance(v, StrEnum) else v for v in astuple(run))
        row = self.spark.createDataFrame([values], RUNS_SCHEMA)
        row.write.format("delta").mode("append").save(self.path)

    def finish(self, run: RunRecord) -> None:
        """Overwrite the run's row with its final state.

        A row is keyed by run, stage and entity: a Glue job run id never spans stages on Glue,
        but a local caller may well pass one ``--JOB_RUN_ID`` to both.
        """
        key = ("run_id", "stage", "entity")
        assignments: dict[str, str | Column] = {
            f.name: _literal(getattr(run, f.name), f.dataType)
            for f in RUNS_SCHEMA.fields
            if f.name not in key
        }
        condition = F.lit(True)
        for name in key:
            condition = condition & (F.col(name) == getattr(run, name))
        DeltaTable.forPath(self.spark, self.path).update(condition, assignments)

    def attempts(self, request_id: str, stage: str, entity: str) -> list[RunRecord]:
        """Earlier runs of the same request and stage, oldest first."""
        if not table_exists(self.spark, self.path):
            return []
        rows = (
            self.spark.read.format("delta")
            .load(self.path)
            .where(
                (F.col("request_id") == request_id)
                & (F.col("stage") == stage)
                & (F.col("entity") == entity)
            )
            .orderBy("started_at")
            .collect()
        )
        return [_to_record(row.asDict()) for row in rows]

    def last_watermark(self, stage: str, entity: str) -> datetime | None:
        """The watermark of the latest successful BAU run of ``stage``, if any."""
        if not table_exists(self.spark, self.path):
            return None
        row = (
            self.spark.read.format("delta")
            .load(self.path)
            .where(
                (F.col("stage") == stage)
                & (F.col("entity") == entity)
                & (F.col("replay_mode") == "bau")
                & (F.col("status") == RunStatus.SUCCEEDED.value)
                & F.col("watermark").isNotNull()
            )
            .agg(F.max("watermark").alias("watermark"))
            .first()
        )
        return _utc(row["watermark"]) if row and row["watermark"] else None


def _literal(value: object, data_type: DataType) -> Column:
    if isinstance(value, StrEnum):
        value = str(value)
    if isinstance(value, list):
        return F.array(*[F.lit(v) for v in value]).cast(data_type)
    return F.lit(value).cast(data_type)


def _utc(value: datetime | None) -> datetime | None:
    """Spark hands timestamps back as naive local times; the session and process run in UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _to_record(values: dict[str, object]) -> RunRecord:
    fixed = {k: _utc(v) if isinstance(v, datetime) else v for k, v in values.items()}
    fixed["status"] = RunStatus(str(fixed["status"]))
    fixed["missing_ids"] = list(fixed["missing_ids"] or [])  # type: ignore[call-overload]
    return RunRecord(**fixed)  # type: ignore[arg-type]
