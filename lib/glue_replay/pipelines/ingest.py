"""Ingest: read a source in the requested mode and append what it returned to ``raw/<entity>``.

The payload is kept exactly as the source gave it; only run metadata is added. Records without
an id cannot be keyed and go to quarantine; requested ids the source did not return are
reported (stdout and the ledger), never fatal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import assert_never

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from glue_replay.entity import Entity
from glue_replay.errors import SourceError
from glue_replay.pipelines.stage import (
    Clock,
    StageContext,
    StageCounts,
    TimeWindow,
    run_stage,
    utc_now,
)
from glue_replay.request import JobArguments, ReplayMode, ReplayRequest
from glue_replay.sources.base import SOURCE_COLUMNS, Source
from glue_replay.tables import RunRecord, append_once
from glue_replay.tables.schemas import QUARANTINE_SCHEMA, RAW_PARTITIONS, RAW_SCHEMA
from glue_replay.transforms.common import parse_utc_timestamp

STAGE = "ingest"
APPEND_ONLY = {"delta.appendOnly": "true"}
_IDS = StructType([StructField("id", StringType(), nullable=False)])


def read_for_request(
    source: Source, spark: SparkSession, request: ReplayRequest, window: TimeWindow
) -> DataFrame:
    """The source read a mode asks for: one method of the source per mode."""
    match request.mode:
        case ReplayMode.FULL:
            return source.read_full(spark)
        case ReplayMode.SINCE:
            assert window.start is not None  # a since request always has its date
            return source.read_since(spark, window.start, window.end)
        case ReplayMode.BAU:
            assert window.start is not None and window.end is not None
            return source.read_bau(spark, window.start, window.end)
        case ReplayMode.TARGETED:
            return source.read_ids(spark, ids_frame(spark, request.ids))
        case _:
            assert_never(request.mode)


def run_ingest(
    spark: SparkSession,
    args: JobArguments,
    entity: Entity,
    source: Source,
    clock: Clock = utc_now,
) -> RunRecord:
    """Run the ingest stage of ``entity`` for ``args.request`` against ``source``."""

    def body(context: StageContext) -> StageCounts:
        return ingest(context, entity, source)

    return run_stage(
        spark,
        args,
        stage=STAGE,
        entity=entity.name,
        body=body,
        clock=clock,
        bau_overlap=entity.bau_overlap,
        first_bau_lookback=entity.first_bau_lookback,
    )


def ingest(context: StageContext, entity: Entity, source: Source) -> StageCounts:
    """Read ``source`` for the context's request and append the records to raw."""
    request = context.request
    context.say(f"reading {source.description} ({_describe(request, context.window)})")
    frame = _conformed(read_for_request(source, context.spark, request, context.window))
    # Read the source exactly once: every count and write below reuses this.
    records = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        totals = records.agg(F.count(F.lit(1)).alias("read"), F.count("id").alias("keyed")).first()
        assert totals is not None
        read, keyed = int(totals["read"]), int(totals["keyed"])
        context.say(f"read {read} records")
        missing = _missing_ids(context.spark, request, records)
        if missing:
            shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
            context.say(f"{len(missing)} requested ids not found at the source: {shown}")
        counts = StageCounts(
            read=read, written=keyed, quarantined=read - keyed, missing_ids=missing
        )
        raw_path = context.warehouse.raw(entity.name)
        if request.dry_run:
            context.say(f"dry run: would append {keyed} rows to {raw_path}")
            return counts
        raw = records.where(F.col("id").isNotNull()).transform(
            with_raw_metadata(context.now, request, context.run_id)
        )
        append_once(raw, raw_path, RAW_SCHEMA, context.app_id("raw"), RAW_PARTITIONS, APPEND_ONLY)
        if read > keyed:
            append_once(
                _quarantine_rows(records.where(F.col("id").isNull()), context),
                context.warehouse.quarantine(entity.name),
                QUARANTINE_SCHEMA,
                context.app_id("quarantine"),
            )
        return counts
    finally:
        records.unpersist()


def with_raw_metadata(
    ingested_at: datetime, request: ReplayRequest, run_id: str
) -> Callable[[DataFrame], DataFrame]:
    """A transform: source rows (``id``, ``updated_at``, ``payload``) -> ``RAW_SCHEMA``.

    ("7", "2026-11-20 10:15:30", '{"id":"7",...}') -> (..., source_updated_at=2026-11-20
    10:15:30, ingested_at=<run start>, request_id, replay_mode, run_id, ingest_date)
    """
    stamp = F.lit(ingested_at).cast("timestamp")

    def transform(records: DataFrame) -> DataFrame:
        return records.select(
            "id",
            "payload",
            _source_time(records).alias("source_updated_at"),
            stamp.alias("ingested_at"),
            F.lit(request.request_id).alias("request_id"),
            F.lit(request.mode.value).alias("replay_mode"),
            F.lit(run_id).alias("run_id"),
            F.to_date(stamp).alias("ingest_date"),
        )

    return transform


def _source_time(records: DataFrame) -> Column:
    """The source's update time: kept if the source gave a timestamp, else parsed from text."""
    if isinstance(records.schema["updated_at"].dataType, TimestampType):
        return F.col("updated_at")
    return parse_utc_timestamp(F.col("updated_at").cast("string"))


def _conformed(frame: DataFrame) -> DataFrame:
    """The source's frame with exactly the source columns, or a clear error naming the gap."""
    missing = [c for c in SOURCE_COLUMNS if c not in frame.columns]
    if missing:
        raise SourceError(
            f"the source returned columns {frame.columns}; missing {missing}; "
            f"accepted: {', '.join(SOURCE_COLUMNS)}"
        )
    updated = F.col("updated_at")
    if not isinstance(frame.schema["updated_at"].dataType, TimestampType):
        updated = updated.cast("string")
    return frame.select(
        F.col("id").cast("string").alias("id"),
        updated.alias("updated_at"),
        F.col("payload").cast("string").alias("payload"),
    )


def ids_frame(spark: SparkSession, ids: tuple[str, ...]) -> DataFrame:
    """The request's (validated, distinct) ids as a one-column DataFrame ``id``."""
    return spark.createDataFrame([(i,) for i in ids], _IDS)


def _missing_ids(spark: SparkSession, request: ReplayRequest, records: DataFrame) -> list[str]:
    """Requested ids the read did not return, in request order (targeted runs only)."""
    if request.mode is not ReplayMode.TARGETED:
        return []
    wanted = ids_frame(spark, request.ids)
    absent = {
        row["id"] for row in wanted.join(records.select("id"), on="id", how="left_anti").collect()
    }
    return [i for i in request.ids if i in absent]


def _quarantine_rows(records: DataFrame, context: StageContext) -> DataFrame:
    request = context.request
    now = F.lit(context.now).cast("timestamp")
    return records.select(
        F.lit(None).cast("string").alias("id"),
        "payload",
        F.lit("record has no id").alias("reason"),
        _source_time(records).alias("source_updated_at"),
        now.alias("raw_ingested_at"),
        F.lit(STAGE).alias("stage"),
        F.lit(request.request_id).alias("request_id"),
        F.lit(request.mode.value).alias("replay_mode"),
        F.lit(context.run_id).alias("run_id"),
        now.alias("quarantined_at"),
    )


def _describe(request: ReplayRequest, window: TimeWindow) -> str:
    match request.mode:
        case ReplayMode.TARGETED:
            return f"{len(request.ids)} ids"
        case ReplayMode.SINCE | ReplayMode.BAU:
            return f"updated in {window.describe()}"
        case ReplayMode.FULL:
            return "everything"
        case _:
            assert_never(request.mode)
