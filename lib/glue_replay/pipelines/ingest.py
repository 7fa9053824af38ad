"""Ingest: read a source in the requested mode and append what it returned to ``raw/<entity>``.

The payload is kept exactly as the source gave it; only run metadata is added. Records without
an id cannot be keyed and go to quarantine; requested ids the source did not return are
reported (stdout and the ledger), never fatal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import assert_never

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from glue_replay.pipelines.stage import (
    Clock,
    StageContext,
    StageCounts,
    TimeWindow,
    run_stage,
    utc_now,
)
from glue_replay.request import JobArguments, ReplayMode, ReplayRequest
from glue_replay.sources import Source, SourceQuery, SourceRecord
from glue_replay.tables import RunRecord, append_once
from glue_replay.tables.schemas import QUARANTINE_SCHEMA, RAW_PARTITIONS, RAW_SCHEMA
from glue_replay.transforms.common import parse_utc_timestamp

STAGE = "ingest"
APPEND_ONLY = {"delta.appendOnly": "true"}
_SOURCE_ROW = StructType(
    [StructField(name, StringType()) for name in ("id", "payload", "source_updated_at_text")]
)


def source_query_for(request: ReplayRequest, window: TimeWindow) -> SourceQuery:
    """The source read a mode asks for."""
    match request.mode:
        case ReplayMode.FULL:
            return SourceQuery()
        case ReplayMode.SINCE | ReplayMode.BAU:
            return SourceQuery(updated_since=window.start, updated_before=window.end)
        case ReplayMode.TARGETED:
            return SourceQuery(ids=request.ids)
        case _:
            assert_never(request.mode)


def run_ingest(
    spark: SparkSession, args: JobArguments, source: Source, clock: Clock = utc_now
) -> RunRecord:
    """Run the ingest stage for ``args.request`` against ``source``."""

    def body(context: StageContext) -> StageCounts:
        return ingest(context, source)

    return run_stage(spark, args, stage=STAGE, entity=source.entity, body=body, clock=clock)


def ingest(context: StageContext, source: Source) -> StageCounts:
    """Read ``source`` for the context's request and append the records to raw."""
    request = context.request
    query = source_query_for(request, context.window)
    context.say(f"reading {source.description} ({_describe(query)})")
    records = _read_all(source, query, context.say)
    keyed = [r for r in records if r.id is not None]
    unkeyed = [r for r in records if r.id is None]
    missing = _missing_ids(request.ids, keyed)
    if missing:
        shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        context.say(f"{len(missing)} requested ids not found at the source: {shown}")

    raw = _source_frame(context.spark, keyed).transform(
        with_raw_metadata(context.now, request, context.run_id)
    )
    counts = StageCounts(
        read=len(records), written=len(keyed), quarantined=len(unkeyed), missing_ids=missing
    )
    if request.dry_run:
        context.say(
            f"dry run: would append {len(keyed)} rows to {context.warehouse.raw(source.entity)}"
        )
        return counts

    append_once(
        raw,
        context.warehouse.raw(source.entity),
        RAW_SCHEMA,
        context.app_id("raw"),
        RAW_PARTITIONS,
        APPEND_ONLY,
    )
    if unkeyed:
        append_once(
            _quarantine_frame(context, unkeyed),
            context.warehouse.quarantine(source.entity),
            QUARANTINE_SCHEMA,
            context.app_id("quarantine"),
        )
    return counts


def with_raw_metadata(
    ingested_at: datetime, request: ReplayRequest, run_id: str
) -> Callable[[DataFrame], DataFrame]:
    """A transform: source rows (``id``, ``payload``, ``source_updated_at_text``) -> ``RAW_SCHEMA``.

    ("7", '{"id":"7",...}', "2026-11-20 10:15:30") -> (..., source_updated_at=2026-11-20
    10:15:30, ingested_at=<run start>, request_id, replay_mode, run_id, ingest_date)
    """
    stamp = F.lit(ingested_at).cast("timestamp")

    def transform(records: DataFrame) -> DataFrame:
        return records.select(
            "id",
            "payload",
            parse_utc_timestamp(F.col("source_updated_at_text")).alias("source_updated_at"),
            stamp.alias("ingested_at"),
            F.lit(request.request_id).alias("request_id"),
            F.lit(request.mode.value).alias("replay_mode"),
            F.lit(run_id).alias("run_id"),
            F.to_date(stamp).alias("ingest_date"),
        )

    return transform


def _read_all(source: Source, query: SourceQuery, say: Callable[[str], None]) -> list[SourceRecord]:
    records: list[SourceRecord] = []
    for record in source.read(query):
        records.append(record)
        if len(records) % 10_000 == 0:
            say(f"read {len(records)} records so far")
    say(f"read {len(records)} records")
    return records


def _missing_ids(requested: tuple[str, ...], found: list[SourceRecord]) -> list[str]:
    returned = {record.id for record in found}
    return [record_id for record_id in requested if record_id not in returned]


def _source_frame(spark: SparkSession, records: list[SourceRecord]) -> DataFrame:
    rows = [(r.id, r.payload, r.updated_at) for r in records]
    return spark.createDataFrame(rows, _SOURCE_ROW)


def _quarantine_frame(context: StageContext, records: list[SourceRecord]) -> DataFrame:
    request = context.request
    rows = [
        (
            None,
            record.payload,
            "record has no id",
            None,
            context.now,
            STAGE,
            request.request_id,
            request.mode.value,
            context.run_id,
            context.now,
        )
        for record in records
    ]
    return context.spark.createDataFrame(rows, QUARANTINE_SCHEMA)


def _describe(query: SourceQuery) -> str:
    if query.ids is not None:
        return f"{len(query.ids)} ids"
    if query.updated_since or query.updated_before:
        return f"updated in {TimeWindow(query.updated_since, query.updated_before).describe()}"
    return "everything"
