"""Ingest: read a source in the requested mode and append what it returned to ``raw/<entity>``.

The payload is kept exactly as the source gave it; only run metadata is added. Records without
an id cannot be keyed and go to quarantine; requested ids the source did not return are
reported (stdout and the ledger), never fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, assert_never

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from glue_replay.entity import Entity
from glue_replay.errors import GlueReplayError, SourceError, task_error
from glue_replay.pipelines.dry_run import describe_batches
from glue_replay.pipelines.stage import (
    Clock,
    StageContext,
    StageCounts,
    TimeWindow,
    run_stage,
    utc_now,
)
from glue_replay.request import JobArguments, ReplayMode, ReplayRequest
from glue_replay.sources.base import SOURCE_COLUMNS, ReadScope, Source
from glue_replay.tables import RunRecord, append_once, read_table
from glue_replay.tables.delta import committed_txn_version, table_exists
from glue_replay.tables.schemas import QUARANTINE_SCHEMA, RAW_PARTITIONS, RAW_SCHEMA
from glue_replay.transforms.common import parse_utc_timestamp

STAGE = "ingest"
APPEND_ONLY = {"delta.appendOnly": "true"}
_IDS = StructType([StructField("id", StringType(), nullable=False)])


SourceRead = DataFrame | Sequence[DataFrame]


def read_for_request(
    source: Source,
    spark: SparkSession,
    request: ReplayRequest,
    window: TimeWindow,
    as_of: datetime | None = None,
) -> SourceRead:
    """The source read a mode asks for: one method of the source per mode.

    ``as_of`` ends a read the request leaves open (full, since without ``--until``): the
    request's first attempt's start, so that a retry asks for the same data in the same batches.
    """
    match request.mode:
        case ReplayMode.FULL:
            return source.read_full_until(spark, as_of) if as_of else source.read_full(spark)
        case ReplayMode.SINCE:
            assert window.start is not None  # a since request always has its date
            return source.read_since(spark, window.start, window.end or as_of)
        case ReplayMode.BAU:
            assert window.start is not None and window.end is not None
            return source.read_bau(spark, window.start, window.end)
        case ReplayMode.TARGETED:
            return source.read_ids(spark, ids_frame(spark, request.ids))
        case _:
            assert_never(request.mode)


def read_scope(request: ReplayRequest, window: TimeWindow, as_of: datetime | None) -> ReadScope:
    """The read :func:`read_for_request` asks for, as data (for a dry run's description)."""
    match request.mode:
        case ReplayMode.FULL:
            return ReadScope("full", end=as_of)
        case ReplayMode.SINCE:
            return ReadScope("since", window.start, window.end or as_of)
        case ReplayMode.BAU:
            return ReadScope("bau", window.start, window.end)
        case ReplayMode.TARGETED:
            return ReadScope("ids", ids=request.ids)
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
    """Read ``source`` for the context's request and append the records to raw.

    A read is one DataFrame or a sequence of batches. Each batch is appended in its own commit
    (Delta ``txnVersion`` = its index), quarantine first, then raw: a batch whose raw commit
    exists is complete, so the retry of a run that failed mid-read skips the batches already
    appended (without reading them again) and completes the rest.
    """
    request = context.request
    raw_path = context.warehouse.raw(entity.name)
    context.say(
        f"reading {source.description} ({_describe(request, context.window, context.as_of)})"
    )
    batches = as_batches(
        read_for_request(source, context.spark, request, context.window, context.as_of)
    )
    if request.dry_run:
        scope = read_scope(request, context.window, context.as_of)
        _print_read_plan(context, source, scope, batches)
    done = -1
    if context.retry and not request.dry_run:
        committed = committed_txn_version(context.spark, raw_path, context.app_id("raw"))
        done = -1 if committed is None else committed
    counts = StageCounts()
    found: set[str] = set()
    for index, batch in enumerate(batches):
        label = f"batch {index + 1}/{len(batches)}" if len(batches) > 1 else "the read"
        if index <= done:
            context.say(f"{label}: appended by an earlier attempt of this request; skipped")
            continue
        try:
            what = label if len(batches) > 1 else "the source"
            with context.phase(f"read {what} and append it to raw"):
                batch_counts = _ingest_batch(context, entity, batch, index, found)
        except Exception as exc:
            # A source failing on the executors: its own error, not Spark's wrapper around it.
            cause = task_error(exc) or exc
            if len(batches) == 1:
                if cause is exc:
                    raise
                raise cause from exc
            raise IncompleteReadError(index, len(batches), cause) from exc
        counts.read += batch_counts.read
        counts.written += batch_counts.written
        counts.quarantined += batch_counts.quarantined
        if len(batches) > 1:
            context.say(f"{label}: read {batch_counts.read} records")
    if done >= 0:
        # A retry: earlier attempts appended some batches; the request's totals are the tables'.
        counts = _request_totals(context, entity)
        found = _ids_in_raw(context, entity) if request.mode is ReplayMode.TARGETED else set()
    counts.missing_ids = [i for i in request.ids if i not in found]
    context.say(f"read {counts.read} records")
    if counts.missing_ids:
        shown = ", ".join(counts.missing_ids[:20]) + (
            " ..." if len(counts.missing_ids) > 20 else ""
        )
        context.say(f"{len(counts.missing_ids)} requested ids not found at the source: {shown}")
    if request.mode is ReplayMode.FULL and not request.dry_run:
        counts.note = absent_from_full_read(context, entity)
        if counts.note:
            context.say(counts.note)
    if request.dry_run:
        context.say(f"dry run: would append {counts.written} rows to {raw_path}")
    return counts


#: How many of the ids a full read no longer returned the ledger's note names.
ABSENT_SAMPLE = 10


def absent_from_full_read(context: StageContext, entity: Entity) -> str | None:
    """The ledger note of a full read: live ids of ``normalized/<entity>`` it did not return.

    A record gone from the source is not a deletion (only the entity's ``SoftDelete`` flag
    deletes): it is reported here, counted, with the first few ids, and left as it is.

        normalized ids 1, 2, 3 (none deleted), full read 1, 3 -> "1 id in normalized/... : 2"
    """
    spark = context.spark
    path = context.warehouse.normalized(entity.name)
    if not table_exists(spark, path):
        return None
    normalized = spark.read.format("delta").load(path)
    live = normalized
    if "is_deleted" in normalized.columns:
        live = normalized.where(~F.coalesce(F.col("is_deleted"), F.lit(False)))
    raw = read_table(spark, context.warehouse.raw(entity.name), RAW_SCHEMA)
    read = raw.where(F.col("request_id") == context.request.request_id).select("id")
    ids = live.select(F.col(entity.key).cast("string").alias("id"))
    absent = ids.join(read, on="id", how="left_anti").distinct()
    total = absent.count()
    if total == 0:
        return None
    sample = [row["id"] for row in absent.orderBy("id").limit(ABSENT_SAMPLE).collect()]
    more = ", ..." if total > len(sample) else ""
    noun = "id" if total == 1 else "ids"
    return (
        f"{total} {noun} in normalized/{entity.name} not in this full read (reported, "
        f"not deleted; only a deleted flag deletes): {', '.join(sample)}{more}"
    )


def _print_read_plan(
    context: StageContext, source: Source, scope: ReadScope, batches: Sequence[DataFrame]
) -> None:
    """A dry run's account of the source read, before anything is fetched: what the source
    says the read asks for (its slices, batches or queries), else each batch's scan node from
    its physical plan (a JDBC relation with its partitions and pushed filters)."""
    batches_read = "1 batch" if len(batches) == 1 else f"{len(batches)} batches"
    context.say(f"dry run: would read {source.description} in {batches_read}")
    for line in source.describe_read(scope) or describe_batches(batches):
        context.say(f"  {line}")


class IncompleteReadError(GlueReplayError):
    """A read in several batches failed after some of them were appended."""

    def __init__(self, failed: int, total: int, cause: BaseException) -> None:
        self.failed, self.total = failed, total
        lines = str(cause).strip().splitlines()
        self.cause = f"{type(cause).__name__}: {lines[0] if lines else ''}"
        appended = f"batches 1-{failed} of {total} appended" if failed else "no batch appended"
        super().__init__(
            f"batch {failed + 1} of {total} failed ({self.cause}); {appended}; "
            "run the same request again to complete the read"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_incomplete, (self.failed, self.total, self.cause))


def _incomplete(failed: int, total: int, cause: str) -> IncompleteReadError:
    return IncompleteReadError(failed, total, GlueReplayError(cause))


def as_batches(read: SourceRead) -> list[DataFrame]:
    """A read as its list of batches (one DataFrame is one batch)."""
    if isinstance(read, DataFrame):
        return [read]
    batches = list(read)
    wrong = [type(b).__name__ for b in batches if not isinstance(b, DataFrame)]
    if wrong:
        raise SourceError(f"the source returned {wrong[0]} batches; accepted: DataFrames")
    return batches


def _ingest_batch(
    context: StageContext, entity: Entity, frame: DataFrame, index: int, found: set[str]
) -> StageCounts:
    """Append one batch: its unkeyed records to quarantine, then the rest to raw."""
    request = context.request
    # Read the batch exactly once: every count and write below reuses this.
    records = _conformed(frame).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        totals = records.agg(F.count(F.lit(1)).alias("read"), F.count("id").alias("keyed")).first()
        assert totals is not None
        read, keyed = int(totals["read"]), int(totals["keyed"])
        if request.mode is ReplayMode.TARGETED:
            wanted = ids_frame(context.spark, request.ids)
            found.update(
                row["id"]
                for row in records.join(wanted, on="id", how="left_semi")
                .select("id")
                .distinct()
                .collect()
            )
        # A batch commits only what it has: a targeted read of ids the source lacks appends
        # nothing, and a retry reads such a batch again, which finds nothing again.
        if not request.dry_run and read > keyed:
            append_once(
                _quarantine_rows(records.where(F.col("id").isNull()), context),
                context.warehouse.quarantine_of(STAGE, entity.name),
                QUARANTINE_SCHEMA,
                context.app_id("quarantine"),
                version=index,
            )
        if not request.dry_run and keyed:
            raw = records.where(F.col("id").isNotNull()).transform(
                with_raw_metadata(context.now, request, context.run_id)
            )
            append_once(
                raw,
                context.warehouse.raw(entity.name),
                RAW_SCHEMA,
                context.app_id("raw"),
                RAW_PARTITIONS,
                APPEND_ONLY,
                version=index,
            )
        return StageCounts(read=read, written=keyed, quarantined=read - keyed)
    finally:
        records.unpersist()


def _request_totals(context: StageContext, entity: Entity) -> StageCounts:
    """What this request's ingest put in raw and quarantine, over all its attempts."""
    spark, request_id = context.spark, context.request.request_id
    raw = read_table(spark, context.warehouse.raw(entity.name), RAW_SCHEMA)
    written = raw.where(F.col("request_id") == request_id).count()
    quarantine = read_table(
        spark, context.warehouse.quarantine_of(STAGE, entity.name), QUARANTINE_SCHEMA
    )
    quarantined = quarantine.where(
        (F.col("request_id") == request_id) & (F.col("stage") == STAGE)
    ).count()
    return StageCounts(read=written + quarantined, written=written, quarantined=quarantined)


def _ids_in_raw(context: StageContext, entity: Entity) -> set[str]:
    raw = read_table(context.spark, context.warehouse.raw(entity.name), RAW_SCHEMA)
    mine = raw.where(F.col("request_id") == context.request.request_id).select("id")
    wanted = ids_frame(context.spark, context.request.ids)
    return {row["id"] for row in mine.join(wanted, on="id", how="left_semi").distinct().collect()}


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


def _describe(request: ReplayRequest, window: TimeWindow, as_of: datetime | None) -> str:
    match request.mode:
        case ReplayMode.TARGETED:
            return f"{len(request.ids)} ids"
        case ReplayMode.SINCE:
            return f"updated in {TimeWindow(window.start, window.end or as_of).describe()}"
        case ReplayMode.BAU:
            return f"updated in {window.describe()}"
        case ReplayMode.FULL:
            return f"everything as of {as_of.isoformat()}" if as_of else "everything"
        case _:
            assert_never(request.mode)
