"""The runs ledger: one row per job run, upserted as the run goes from ``running`` to its end.

It answers the operator's questions (who asked for what, what happened, which ids were missing)
and holds the BAU watermark: only a successful BAU run moves it.
"""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import reduce

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType

from glue_replay.tables.delta import add_missing_columns, ensure_table, table_exists
from glue_replay.tables.pruning import key_predicate
from glue_replay.tables.schemas import RUNS_SCHEMA


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    #: An attempt that died without a word (a kill, a lost driver): a later attempt of the same
    #: request found it still ``running`` and superseded it.
    ABANDONED = "abandoned"


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
    rows_delivered: int | None = None
    rows_dead_lettered: int | None = None
    first_outbox_version: int | None = None
    last_outbox_version: int | None = None
    sink: str | None = None


assert [f.name for f in RUNS_SCHEMA.fields] == list(RunRecord.__dataclass_fields__)


@dataclass(frozen=True)
class PriorRuns:
    """What the ledger says before a run of one request, stage and entity starts."""

    #: The request's earlier runs of the stage, oldest first.
    attempts: list[RunRecord]
    #: The BAU watermark: the latest that a successful BAU run of the stage recorded (see
    #: :meth:`RunsLedger.last_watermark`).
    watermark: datetime | None


#: What identifies a row of the ledger (see :meth:`RunsLedger.record`).
ROW_KEY = ("run_id", "stage", "entity", "request_id")
#: :meth:`RunsLedger.finish` UPDATEs a run with up to this many missing ids (beyond, it MERGEs).
UPDATE_MISSING_IDS = 1_000

#: Ledger tables this process already created or brought up to ``RUNS_SCHEMA``.
_EVOLVED: set[str] = set()


class RunsLedger:
    """The ``runs`` Delta table."""

    def __init__(self, spark: SparkSession, path: str) -> None:
        self.spark = spark
        self.path = path

    def start(self, run: RunRecord) -> None:
        """Add the run's row (an append: cheap, and it never touches other runs' rows)."""
        self._ensure()
        self._rows([run]).write.format("delta").mode("append").save(self.path)

    def finish(self, run: RunRecord) -> None:
        """Overwrite the run's row, which :meth:`start` wrote (or a read of the ledger found),
        with its final state: :meth:`update` when it carries up to :data:`UPDATE_MISSING_IDS`
        missing ids (every run finishes, and an UPDATE is two queries where a MERGE is seven),
        else :meth:`record`, so the plan does not grow with the ids."""
        if len(run.missing_ids) > UPDATE_MISSING_IDS:
            self.record([run])
        else:
            self.update(run)

    def update(self, run: RunRecord) -> None:
        """Overwrite the run's existing row with ``run`` in one UPDATE, its values literals (the
        missing ids one JSON text); a row that is not there is not added (see :meth:`record`)."""
        self._ensure()
        values = dict(zip(RUNS_SCHEMA.fieldNames(), _values(run), strict=True))
        # Equalities on the row's key, by which Delta skips every file but the row's own.
        mine = reduce(Column.__and__, [F.col(key) == F.lit(values[key]) for key in ROW_KEY])
        DeltaTable.forPath(self.spark, self.path).update(
            mine,
            {
                f.name: _literal(values[f.name], f.dataType)
                for f in RUNS_SCHEMA.fields
                if f.name not in ROW_KEY
            },
        )

    def record(self, runs: list[RunRecord]) -> None:
        """Insert or overwrite these rows in one MERGE.

        A row is keyed by run, stage, entity and request: a Glue job run id never spans stages
        on Glue, but a local caller may well pass one ``--JOB_RUN_ID`` to both; a publish run
        has a row per request it delivered events of.
        """
        self._ensure()
        matches = F.expr(" AND ".join(f"ledger.{key} = run.{key}" for key in ROW_KEY))
        # Naming the run ids lets Delta read and rewrite only the files that may hold them (a
        # run's row was appended in a file of its own), not the whole ledger.
        mine = key_predicate(F.col("ledger.run_id"), [run.run_id for run in runs])
        (
            DeltaTable.forPath(self.spark, self.path)
            .alias("ledger")
            .merge(self._rows(runs).alias("run"), matches & mine)
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )

    def _ensure(self) -> None:
        """Create the table, or add the columns a table written by an older version lacks."""
        if self.path in _EVOLVED:
            return
        ensure_table(self.spark, self.path, RUNS_SCHEMA)
        add_missing_columns(self.spark, self.path, RUNS_SCHEMA)
        _EVOLVED.add(self.path)

    def abandon(self, attempts: list[RunRecord], by_run_id: str, at: datetime) -> None:
        """Mark ``attempts`` (still ``running``, of the same job: dead, as the job runs once at
        a time) ``abandoned`` by the run that supersedes them."""
        for attempt in attempts:
            self.finish(
                replace(
                    attempt,
                    status=RunStatus.ABANDONED,
                    finished_at=at,
                    note=f"abandoned: run {by_run_id} of the same request started at "
                    f"{at.isoformat()} while this attempt was still marked running",
                )
            )

    def _rows(self, runs: list[RunRecord]) -> DataFrame:
        # One file per write: the ledger is read by every run, and each file costs a read.
        return self.spark.createDataFrame([_values(r) for r in runs], RUNS_SCHEMA).coalesce(1)

    def before_run(self, request_id: str, stage: str, entity: str) -> PriorRuns:
        """What a run needs from the ledger before it starts, in one query: the request's
        earlier attempts (:meth:`attempts`) and the BAU watermark (:meth:`last_watermark`)."""
        if not table_exists(self.spark, self.path):
            return PriorRuns([], None)
        mine = F.col("request_id") == request_id
        moved_watermark = _moved_watermark()
        row = (
            self.spark.read.format("delta")
            .load(self.path)
            .where(
                (F.col("stage") == stage) & (F.col("entity") == entity) & (mine | moved_watermark)
            )
            .agg(
                F.collect_list(F.when(mine, F.struct(*RUNS_SCHEMA.fieldNames()))).alias("mine"),
                F.max(F.when(moved_watermark, F.col("watermark"))).alias("watermark"),
            )
            .first()
        )
        assert row is not None  # a global aggregation has one row
        attempts = sorted(
            (_to_record(attempt.asDict()) for attempt in row["mine"]),
            key=lambda attempt: attempt.started_at,
        )
        return PriorRuns(attempts, _utc(row["watermark"]))

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

    def running(self, stage: str, entity: str) -> list[RunRecord]:
        """Runs of ``stage`` still marked ``running`` (one per run: a publish run's per-request
        rows are left out)."""
        if not table_exists(self.spark, self.path):
            return []
        rows = (
            self.spark.read.format("delta")
            .load(self.path)
            .where(
                (F.col("stage") == stage)
                & (F.col("entity") == entity)
                & (F.col("status") == RunStatus.RUNNING.value)
                & (F.col("request_id") == F.col("run_id"))
            )
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
            .where((F.col("stage") == stage) & (F.col("entity") == entity) & _moved_watermark())
            .agg(F.max("watermark").alias("watermark"))
            .first()
        )
        return _utc(row["watermark"]) if row and row["watermark"] else None


def _values(run: RunRecord) -> tuple[object, ...]:
    """The run's row as ``RUNS_SCHEMA`` holds it (enums as their text)."""
    return tuple(str(v) if isinstance(v, StrEnum) else v for v in astuple(run))


def _literal(value: object, kind: DataType) -> Column:
    """``value`` as a literal of ``kind``; a list as one JSON text literal parsed (folded to a
    constant when the plan is optimized), not one literal per item: a py4j call and an
    analyzer pass each (docs/BENCHMARKS.md, "The ledger")."""
    if isinstance(value, list):
        assert isinstance(kind, ArrayType), kind
        return F.from_json(F.lit(json.dumps(value)), kind)
    return F.lit(value).cast(kind)


def _moved_watermark() -> Column:
    """A ledger row of a successful BAU run that recorded a watermark."""
    return (
        (F.col("replay_mode") == "bau")
        & (F.col("status") == RunStatus.SUCCEEDED.value)
        & F.col("watermark").isNotNull()
    )


def _utc(value: datetime | None) -> datetime | None:
    """Spark hands timestamps back as naive local times; the session and process run in UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _to_record(values: dict[str, object]) -> RunRecord:
    fixed = {k: _utc(v) if isinstance(v, datetime) else v for k, v in values.items()}
    fixed["status"] = RunStatus(str(fixed["status"]))
    fixed["missing_ids"] = list(fixed["missing_ids"] or [])  # type: ignore[call-overload]
    return RunRecord(**fixed)  # type: ignore[arg-type]
