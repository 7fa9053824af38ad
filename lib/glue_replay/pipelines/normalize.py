"""Normalize: raw rows selected by the request's mode -> normalized (MERGE) + outbox events.

Order of writes, chosen so that a kill at any point loses nothing and a re-run of the same
request duplicates nothing:

1. outbox append (once per request, by Delta ``txnAppId``), computed against a pinned snapshot
   of the normalized table;
2. MERGE into normalized (latest version wins; idempotent by construction);
3. quarantine append (once per request).

A replay emits one event per touched id, with the winning version's content, under ids of its
own request; BAU emits only where the normalized content changed, under ids of the change
itself, and never appends an event the outbox already holds (see :func:`event_id`). Besides the
mode's own selection, normalize always takes the raw rows its own request ingested, so every
record a request ingested ends normalized, unchanged or quarantined with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import assert_never

from delta.tables import DeltaTable
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    IntegralType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from glue_replay.entity import Entity
from glue_replay.errors import PipelineDefinitionError
from glue_replay.pipelines.dry_run import (
    changed_fields,
    describe_scans,
    diff_report,
    record_changes,
)
from glue_replay.pipelines.stage import (
    Clock,
    StageContext,
    StageCounts,
    TimeWindow,
    run_stage,
    utc_now,
)
from glue_replay.request import JobArguments, ReplayMode, ReplayRequest
from glue_replay.tables import RunRecord, append_once, read_table
from glue_replay.tables.delta import (
    CHANGE_FEED,
    DELETION_VECTORS,
    committed_txn_version,
    ensure_change_feed,
    table_exists,
    table_version,
)
from glue_replay.tables.layout import ROWS_PER_FILE
from glue_replay.tables.pruning import (
    PRUNING_KEYS,
    KeyScope,
    exact_key_predicate,
    key_predicate,
)
from glue_replay.tables.schemas import (
    NORMALIZED_METADATA,
    OUTBOX_PARTITIONS,
    OUTBOX_SCHEMA,
    QUARANTINE_SCHEMA,
    RAW_SCHEMA,
)
from glue_replay.transforms.common import (
    JSON_OPTIONS,
    content_hash,
    deterministic_uuid,
    latest_per_key,
    with_payload_shape_errors,
)

STAGE = "normalize"
#: The first element of an event id's hashed inputs: a BAU id and a replay id never share it.
BAU_EVENT, REPLAY_EVENT = "bau-change", "replay"
APPEND_ONLY = {"delta.appendOnly": "true"}
#: The outbox also records its change feed: the publisher reads it by commit version (the order
#: events must be delivered in), see :mod:`glue_replay.pipelines.publish`.
OUTBOX_PROPERTIES = {**APPEND_ONLY, CHANGE_FEED: "true"}
IDS_SCHEMA = StructType([StructField("id", StringType(), nullable=False)])
#: Rows per file of a normalized table's first write, sorted by key (maintenance keeps it).
NORMALIZED_ROWS_PER_FILE = ROWS_PER_FILE
#: The working column :func:`with_entity_columns` holds the payload's shape errors in.
_SHAPE_ERRORS = "__glue_replay_payload_shape_errors"
#: How many would-be events a dry run prints.
DRY_RUN_SAMPLE = 10


def normalized_schema(entity: Entity) -> StructType:
    return StructType(entity.schema.fields + NORMALIZED_METADATA.fields)


def run_normalize(
    spark: SparkSession, args: JobArguments, entity: Entity, clock: Clock = utc_now
) -> RunRecord:
    """Run the normalize stage for ``args.request`` on ``entity``."""

    def body(context: StageContext) -> StageCounts:
        return normalize(context, entity)

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


@dataclass(frozen=True)
class NormalizePreview:
    """A dry-run normalize: its ledger row and the field-level diff it printed."""

    run: RunRecord
    #: :func:`dry_run_diff` of the run: lazy, over the snapshots the run pinned (a dry run
    #: writes nothing, so reading it later gives what the run printed).
    diff: DataFrame


def preview_normalize(
    spark: SparkSession, args: JobArguments, entity: Entity, clock: Clock = utc_now
) -> NormalizePreview:
    """Run normalize for ``args.request`` as a dry run and return what it would change.

    Exactly :func:`run_normalize` with ``--dry_run true``: it prints the same report and its
    ledger row is its only write. ``preview.diff`` is the (id, change, field, before, after)
    frame the report's sample and per-field counts come from.
    """
    args = replace(args, request=replace(args.request, dry_run=True))
    diffs: list[DataFrame] = []

    def body(context: StageContext) -> StageCounts:
        return normalize(context, entity, on_diff=diffs.append)

    run = run_stage(
        spark,
        args,
        stage=STAGE,
        entity=entity.name,
        body=body,
        clock=clock,
        bau_overlap=entity.bau_overlap,
        first_bau_lookback=entity.first_bau_lookback,
    )
    return NormalizePreview(run, diffs[-1])


def with_entity_columns(entity: Entity) -> Callable[[DataFrame], DataFrame]:
    """A transform: raw rows -> the entity's normalized rows, typed, with ``quarantine_reason``.

    Applies ``entity.normalize``, then what no entity may forget: a record without a key or a
    version, or whose key differs from the raw record's id, cannot be merged and is quarantined
    (when the entity's own checks let it through); the business columns are cast to the schema.
    Schema drift is quarantined with the field's name: a payload field whose JSON shape differs
    from ``entity.payload`` (when declared), and a column the transform produced as a value the
    schema's type cannot hold (a cast that would silently give null).

        raw (id "7", payload '{"order_id": "8", ...}') -> quarantine_reason
        "order_id differs from the record id"
        raw (id "7", payload '{"address": "1 Main St", ...}') -> quarantine_reason
        "address is a single value, expected an object"
    """

    def transform(raw: DataFrame) -> DataFrame:
        normalized = raw.transform(entity.normalize)
        shape_errors: list[Column] = []
        if entity.payload is not None:
            normalized = normalized.transform(
                with_payload_shape_errors(entity.payload, "payload", _SHAPE_ERRORS)
            )
            shape_errors.append(F.col(_SHAPE_ERRORS))
        wanted = (*entity.business_columns, "quarantine_reason")
        missing = [c for c in wanted if c not in normalized.columns]
        if missing:
            raise PipelineDefinitionError(
                f"entity {entity.name!r}: its normalize transform did not produce {missing}"
            )
        produced = {f.name: f.dataType for f in normalized.schema.fields}
        typed = {f.name: _typed(f.name, produced[f.name], f.dataType) for f in entity.schema}
        key, version = typed[entity.key], typed[entity.version]
        ours = F.concat_ws(
            "; ",
            F.when(key.isNull(), F.lit(f"{entity.key} is missing")),
            F.when(
                key.isNotNull() & (key.cast("string") != F.col("id")),
                F.lit(f"{entity.key} differs from the record id"),
            ),
            F.when(version.isNull(), F.lit(f"{entity.version} is missing or not valid")),
        )
        # Drift first: a field whose type changed at the source, or a column the transform
        # produced as another type than the schema's, names itself instead of becoming null.
        drift = shape_errors + [
            F.when(
                F.col(f.name).isNotNull() & typed[f.name].isNull(),
                F.lit(f"{f.name} is not {_a(f.dataType)}"),
            )
            for f in entity.schema.fields
            if not _same_type(produced[f.name], f.dataType)
        ]
        own = F.coalesce(F.col("quarantine_reason"), F.when(ours != "", ours))
        reason = F.concat_ws("; ", *drift, own)
        return normalized.select(
            *[c for c in RAW_SCHEMA.fieldNames() if c not in entity.business_columns],
            *[typed[f.name].alias(f.name) for f in entity.schema.fields],
            F.when(reason != "", reason).alias("quarantine_reason"),
        )

    return transform


def select_for_replay(
    raw: DataFrame,
    request: ReplayRequest,
    window: TimeWindow,
    ids: DataFrame | None = None,
    source_clock_skew: timedelta = timedelta(days=1),
) -> DataFrame:
    """The raw rows a request selects: its mode's selection, plus the rows it ingested itself.

    full: every row; since: ``source_updated_at`` in the window; targeted: rows whose id is in
    ``ids`` (an OR of equalities for a few, a broadcast semi-join beyond; never a literal IN
    list); BAU: rows ingested in the window. In every mode, the rows whose ``request_id`` is the
    request's own are selected too: a record the request ingested whose source time did not
    parse (null, so in no window) is then quarantined for it instead of vanishing.

    Each selection also says what lets Delta skip raw files by their statistics: since, that a
    row updated at the source from D on was ingested from D minus ``source_clock_skew`` on;
    targeted with up to :data:`PRUNING_KEYS` ids, an OR of them (:func:`key_predicate`; for a
    few ids it is exact, :func:`exact_key_predicate`, and the whole selection: no join); the
    request's own rows, its ``request_id`` (one per ingest commit).

        since [2024-08-01, 2024-09-01), raw ("40", source_updated_at null, request "s-1")
        -> selected by request "s-1", not by another since request
    """
    ours = F.col("request_id") == F.lit(request.request_id)
    match request.mode:
        case ReplayMode.FULL:
            return raw
        case ReplayMode.SINCE:
            updated = _within(F.col("source_updated_at"), window)
            if window.start is not None:
                earliest = F.lit(window.start - source_clock_skew).cast("timestamp")
                updated = updated & (F.col("ingested_at") >= earliest)
            return raw.where(updated | ours)
        case ReplayMode.TARGETED:
            if ids is None:
                raise ValueError("a targeted selection needs the ids frame")
            exact = exact_key_predicate(F.col("id"), request.ids)
            if exact is not None:  # one equality per id: no join, no union
                return raw.where(exact | ours)
            candidates = raw
            if len(request.ids) <= PRUNING_KEYS:
                candidates = raw.where(key_predicate(F.col("id"), request.ids))
            requested = candidates.join(F.broadcast(ids), on="id", how="left_semi")
            # Disjoint from the above; cheap, as Delta skips files by their request_id stats.
            others = raw.where(ours).join(F.broadcast(ids), on="id", how="left_anti")
            return requested.unionByName(others)
        case ReplayMode.BAU:
            return raw.where(_within(F.col("ingested_at"), window) | ours)
        case _:
            assert_never(request.mode)


def decide_changes(
    incoming: DataFrame, existing: DataFrame, entity: Entity, mode: ReplayMode
) -> DataFrame:
    """Compare the latest incoming version of each id with the normalized table.

    Returns the winning version's business columns with ``content_hash``, ``raw_ingested_at``
    and the flags ``is_new``, ``write`` (MERGE it) and ``emit`` (outbox it). An older incoming
    version never wins; a replay emits every id it touched, BAU only content changes. Whether
    the winner is deleted follows from its own columns (``entity.deletion_flag``): deleting is a
    content change like any other (BAU emits it once), and a later version that no longer
    matches the entity's ``SoftDelete`` un-deletes.

        incoming (7, v2, "a@x.io"), existing (7, v1, "b@x.io") -> write, emit (any mode)
        incoming (7, v1, "b@x.io"), existing (7, v2, "a@x.io") -> no write; emit v2 if replay
    """
    columns, key, version = entity.business_columns, entity.key, entity.version
    current = existing.select(
        key,
        *[F.col(c).alias(f"_old_{c}") for c in columns if c != key],
        F.col("content_hash").alias("_old_hash"),
    )
    joined = incoming.join(current, on=key, how="left")
    is_new = F.col("_old_hash").isNull()
    newer = F.col(version) > F.col(f"_old_{version}")
    same_version = F.col(version) == F.col(f"_old_{version}")
    changed = F.col("content_hash") != F.col("_old_hash")
    incoming_wins = is_new | newer | same_version
    write = is_new | newer | (same_version & changed)
    emit = F.lit(True) if mode.is_replay else (is_new | (incoming_wins & changed))

    def winner(column: str) -> Column:
        if column == key:
            return F.col(key)
        return F.when(incoming_wins, F.col(column)).otherwise(F.col(f"_old_{column}"))

    return joined.select(
        *[winner(c).alias(c) for c in columns],
        F.when(incoming_wins, F.col("content_hash"))
        .otherwise(F.col("_old_hash"))
        .alias("content_hash"),
        "raw_ingested_at",
        is_new.alias("is_new"),
        write.alias("write"),
        emit.alias("emit"),
    )


def event_id(entity: Entity, request: ReplayRequest) -> Column:
    """The ``event_id`` of a decided row (its key, version and ``content_hash`` columns).

    BAU: derived from the entity, the aggregate id, its version and its content hash, so one
    change has one id whichever BAU run emits it (a BAU after an interrupted one re-derives the
    same ids, and :func:`normalize` skips those the outbox holds). Replay: derived from the
    request id, the entity, the aggregate id and its version, so a new request re-publishes
    under new ids and the same request run again yields the same ids. The two hash different
    inputs (first element ``"bau-change"`` or ``"replay"``, unambiguously encoded), so a BAU id
    never equals a replay id.

        BAU,    (invoices, "7", 2026-02-01T00:00:00, <hash>) -> the same id in every BAU run
        replay, ("req-1", invoices, "7", 2026-02-01T00:00:00) -> another id per request
    """
    aggregate_id = F.col(entity.key).cast("string")
    if request.mode is ReplayMode.BAU:
        return deterministic_uuid(
            F.lit(BAU_EVENT),
            F.lit(entity.name),
            aggregate_id,
            version_text(entity),
            F.col("content_hash"),
        )
    return deterministic_uuid(
        F.lit(REPLAY_EVENT),
        F.lit(request.request_id),
        F.lit(entity.name),
        aggregate_id,
        version_text(entity),
    )


def outbox_events(
    decided: DataFrame, entity: Entity, request: ReplayRequest, occurred_at: datetime
) -> DataFrame:
    """One outbox event per row to emit, in ``OUTBOX_SCHEMA``, identified by :func:`event_id`.

    The event type is ``deleted`` when the winning version is a tombstone, else ``created`` for
    an id new to normalized, else ``updated`` (also for a version that un-deletes).

    decided (7, v2, emit) in BAU request "bau-9" -> event (<id of the change>, invoices,
    "7", invoice.updated, <payload>, occurred_at, "bau-9", "bau", <date>)
    """
    stamp = F.lit(occurred_at).cast("timestamp")
    aggregate_id = F.col(entity.key).cast("string")
    events = entity.event_types
    return decided.where(F.col("emit")).select(
        event_id(entity, request).alias("event_id"),
        F.lit(entity.name).alias("aggregate_type"),
        aggregate_id.alias("aggregate_id"),
        F.when(entity.deletion_flag, F.lit(events.deleted))
        .when(F.col("is_new"), F.lit(events.created))
        .otherwise(F.lit(events.updated))
        .alias("event_type"),
        F.to_json(F.struct(*entity.business_columns), JSON_OPTIONS).alias("payload"),
        stamp.alias("occurred_at"),
        F.lit(request.request_id).alias("request_id"),
        F.lit(request.mode.value).alias("replay_mode"),
        F.to_date(stamp).alias("event_date"),
    )


def normalize(
    context: StageContext,
    entity: Entity,
    on_diff: Callable[[DataFrame], None] | None = None,
) -> StageCounts:
    """Select, normalize, decide and write one request's worth of ``entity``.

    A dry run writes nothing: it prints what it would read and change, and hands the change's
    :func:`dry_run_diff` to ``on_diff`` (see :func:`preview_normalize`).
    """
    spark, request, warehouse = context.spark, context.request, context.warehouse
    raw_path, normalized_path = warehouse.raw(entity.name), warehouse.normalized(entity.name)
    quarantine_path = warehouse.quarantine_of(STAGE, entity.name)
    schema = normalized_schema(entity)
    outbox_path = warehouse.outbox_of(entity.name)
    with context.phase("pin the tables read"):
        if not request.dry_run:
            evolve_normalized(spark, normalized_path, schema, entity, context)
        # Pin every input: recomputing a cached frame after our own writes must see the same data.
        raw = read_table(spark, raw_path, RAW_SCHEMA, table_version(spark, raw_path))
        existing = _read_normalized(spark, normalized_path, schema)
        quarantined_before = read_table(
            spark, quarantine_path, QUARANTINE_SCHEMA, table_version(spark, quarantine_path)
        )
        outbox = read_table(spark, outbox_path, OUTBOX_SCHEMA, table_version(spark, outbox_path))

    # Every frame cached below is released when the run ends, however it ends.
    with ExitStack() as cached:
        ids = _ids_frame(spark, request.ids) if request.mode is ReplayMode.TARGETED else None
        selected = select_for_replay(raw, request, context.window, ids, entity.source_clock_skew)
        # Persisting plans the query, and planning a Delta read already reads: inside the phases.
        with context.phase("select, parse and check raw rows"):
            parsed = selected.transform(with_entity_columns(entity))
            parsed = _cached(parsed, cached)
            selection = _summarize(parsed, entity.key)
            valid = parsed.where(F.col("quarantine_reason").isNull())
            keys = KeyScope.counted(valid, entity.key, selection.keys)
        newest_first = [F.col(entity.version).desc(), F.col("ingested_at").desc()]
        latest = latest_per_key(valid, entity.key, newest_first).select(
            *entity.business_columns,
            content_hash(entity.hashed_columns).alias("content_hash"),
            F.col("ingested_at").alias("raw_ingested_at"),
        )
        with context.phase("decide changes against normalized"):
            decided = decide_changes(
                latest, keys.restrict(existing, entity.key), entity, request.mode
            )
            decided = _cached(decided, cached)
            events = outbox_events(decided, entity, request, context.now)
            if request.mode is ReplayMode.BAU:
                events = events.transform(without_published_changes(outbox, entity, request))
            events = _cached(events, cached)
            counts, emitted = _count(selection, decided)
        # A replay outboxes every row it emits; BAU leaves out changes already published.
        if request.mode is ReplayMode.BAU:
            with context.phase("leave out changes already in the outbox"):
                counts.outboxed = events.count()
        else:
            counts.outboxed = emitted
        if ids is not None:
            with context.phase("requested ids missing from raw"):
                counts.missing_ids = _missing_ids(ids, parsed, request.ids, keys, entity)
            if counts.missing_ids:
                context.say(f"{len(counts.missing_ids)} requested ids are not in raw")
        if request.dry_run:
            reads = {
                raw_path: (selected, raw),
                normalized_path: (existing, existing),
                quarantine_path: (quarantined_before, quarantined_before),
            }
            if request.mode is ReplayMode.BAU:
                reads[outbox_path] = (outbox, outbox)
            _print_dry_run(context, entity, counts, events, decided, existing)
            if on_diff is not None:
                on_diff(dry_run_diff(decided, existing, entity))
            _print_dry_run_reads(context, reads)
            return counts

        # Only a retry can find its own outbox commit (see StageContext.retry); a write with
        # nothing in it is not committed at all.
        with context.phase("find this request's outbox commit"):
            committed = context.retry and (
                committed_txn_version(spark, outbox_path, context.app_id("outbox")) is not None
            )
        if committed:
            # A retry after a kill that came after the outbox commit: the events are the ones
            # that commit holds (a BAU retry finds nothing left to publish, its ledger row
            # must still count what the request published).
            with context.phase("count this request's outbox events"):
                counts.outboxed = outbox.where(F.col("request_id") == request.request_id).count()
        elif counts.outboxed:
            with context.phase("append to the outbox"):
                if table_exists(spark, outbox_path):
                    ensure_change_feed(spark, outbox_path)  # an outbox from before the publisher
                append_once(
                    events,
                    outbox_path,
                    OUTBOX_SCHEMA,
                    context.app_id("outbox"),
                    OUTBOX_PARTITIONS,
                    OUTBOX_PROPERTIES,
                )
        if counts.written:
            with context.phase("MERGE into normalized"):
                _merge_latest(
                    decided.where(F.col("write")),
                    normalized_path,
                    schema,
                    entity,
                    context,
                    keys,
                    counts.written,
                )
        if counts.quarantined:
            # A raw row already quarantined for the same reason (BAU windows overlap, replays
            # revisit) is not added again: the quarantine holds each bad raw row once per reason.
            # Such a row has the same ingest time as one quarantined now, so only the part of the
            # quarantine ingested between the first and the last of those is looked at: Delta
            # skips the files of other windows by their statistics, and the quarantine grows
            # with every window, like the outbox.
            seen = quarantined_before
            if selection.quarantined_ingested is not None:  # (raw rows always have one)
                first, last = selection.quarantined_ingested
                seen = seen.where(F.col("raw_ingested_at").between(F.lit(first), F.lit(last)))
            quarantined = _quarantine_rows(
                parsed.where(F.col("quarantine_reason").isNotNull()), context
            ).join(
                seen.select("id", "raw_ingested_at", "reason"),
                on=["id", "raw_ingested_at", "reason"],
                how="left_anti",
            )
            with context.phase("append to the quarantine"):
                # All of them already there (a BAU window's overlap): no empty commit.
                quarantined = _cached(quarantined, cached)
                if not quarantined.isEmpty():
                    append_once(
                        quarantined,
                        quarantine_path,
                        QUARANTINE_SCHEMA,
                        context.app_id("quarantine"),
                    )
        return counts


def _cached(frame: DataFrame, cached: ExitStack) -> DataFrame:
    """``frame`` persisted (memory, then disk), to be unpersisted when ``cached`` closes."""
    kept = frame.persist(StorageLevel.MEMORY_AND_DISK)
    cached.callback(kept.unpersist)
    return kept


def without_published_changes(
    outbox: DataFrame, entity: Entity, request: ReplayRequest
) -> Callable[[DataFrame], DataFrame]:
    """A transform: BAU events -> those whose ``event_id`` no other request put in the outbox.

    A BAU run killed after its outbox commit and before its MERGE leaves its changes emitted but
    not merged; the next BAU (a new request) decides the same changes again and derives the same
    ids (:func:`event_id`), which this drops. The request's own earlier events are not looked
    at, so every attempt of one request computes the same frame and its ``txnAppId`` append
    stays the once-only write.

    The whole outbox's BAU events are looked at, not only recent ones: a change can come back
    long after it was published (the same content at the same version, after a replay had
    normalized it differently), and no two outbox rows may share an ``event_id``.

        events ("e-1", "e-2"), outbox of another BAU request ("e-1") -> events ("e-2")
    """
    published = outbox.where(
        (F.col("aggregate_type") == F.lit(entity.name))
        & (F.col("replay_mode") == F.lit(ReplayMode.BAU.value))
        & (F.col("request_id") != F.lit(request.request_id))
    ).select("event_id")

    def transform(events: DataFrame) -> DataFrame:
        return events.join(published, on="event_id", how="left_anti")

    return transform


def version_text(entity: Entity) -> Column:
    """The version as text for event ids: timestamps to the microsecond, anything else cast."""
    column = F.col(entity.version)
    if isinstance(entity.schema[entity.version].dataType, TimestampType):
        return F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")
    return column.cast("string")


def _within(column: Column, window: TimeWindow) -> Column:
    condition = F.lit(True)
    if window.start is not None:
        condition = condition & (column >= F.lit(window.start).cast("timestamp"))
    if window.end is not None:
        condition = condition & (column < F.lit(window.end).cast("timestamp"))
    return condition


def _ids_frame(spark: SparkSession, ids: tuple[str, ...]) -> DataFrame:
    return spark.createDataFrame([(i,) for i in ids], IDS_SCHEMA)


@dataclass(frozen=True)
class _Selection:
    """What one aggregation of the selected, parsed raw rows says (see :func:`_summarize`)."""

    read: int
    quarantined: int
    #: Distinct keys of the valid rows: what the run may MERGE, and its :class:`KeyScope`.
    keys: int
    #: The earliest and latest ingest times of the rows quarantined (``None`` when none are).
    quarantined_ingested: tuple[datetime, datetime] | None = None


def _summarize(parsed: DataFrame, key: str) -> _Selection:
    """Count the selected raw rows, those quarantined and the valid rows' distinct keys, and
    bound the quarantined rows' ingest times, in the one job that also fills ``parsed``'s
    cache."""
    valid_key = F.when(F.col("quarantine_reason").isNull(), F.col(key))
    bad_ingested = F.when(F.col("quarantine_reason").isNotNull(), F.col("ingested_at"))
    row = parsed.agg(
        F.count(F.lit(1)).alias("read"),
        F.count("quarantine_reason").alias("quarantined"),
        F.count_distinct(valid_key).alias("keys"),
        F.min(bad_ingested).alias("first_bad"),
        F.max(bad_ingested).alias("last_bad"),
    ).first()
    assert row is not None
    bounds = None if row["first_bad"] is None else (row["first_bad"], row["last_bad"])
    return _Selection(int(row["read"]), int(row["quarantined"]), int(row["keys"]), bounds)


def _count(selection: _Selection, decided: DataFrame) -> tuple[StageCounts, int]:
    """The raw-row counts, and how many decided rows are to be emitted (one aggregation).

    read: the raw rows selected; quarantined: those quarantined; written: those MERGEd (the
    winning version of an id whose row was inserted or updated, so at most one per id);
    unchanged: the rest, valid rows that changed nothing (an older version than the one merged
    or held, a duplicate of it, or the same content as held). So read = written + unchanged +
    quarantined. The outboxed count is the events' (see :func:`normalize`).
    """
    out = decided.agg(
        F.sum(F.col("write").cast("long")).alias("written"),
        F.sum(F.col("emit").cast("long")).alias("emitted"),
    ).first()
    assert out is not None
    written = int(out["written"] or 0)
    counts = StageCounts(
        read=selection.read,
        written=written,
        unchanged=selection.read - selection.quarantined - written,
        quarantined=selection.quarantined,
    )
    return counts, int(out["emitted"] or 0)


def _missing_ids(
    ids: DataFrame,
    selected: DataFrame,
    requested: tuple[str, ...],
    keys: KeyScope,
    entity: Entity,
) -> list[str]:
    """Requested ids raw does not have, in request order (as ingest reports them).

    A valid row's key is its raw id (:func:`with_entity_columns` quarantines the others), so
    when the keys the run collected name every requested id, none is missing and nothing more
    is read; else ``selected`` (cached, every selected raw row's id) is joined with the ids.
    """
    textual = _textual(entity.schema[entity.key].dataType)
    if keys.values is not None and textual and set(requested) <= {str(k) for k in keys.values}:
        return []
    absent = ids.join(selected.select("id").distinct(), on="id", how="left_anti")
    found = {row["id"] for row in absent.collect()}
    return [i for i in requested if i in found]


def _textual(kind: DataType) -> bool:
    """A key type whose Python value prints as Spark casts it to text (strings, integers)."""
    return isinstance(kind, StringType | IntegralType)


def _merge_latest(
    rows: DataFrame,
    path: str,
    schema: StructType,
    entity: Entity,
    context: StageContext,
    keys: KeyScope,
    rows_written: int,
) -> None:
    """MERGE the winning versions: insert new ids, update where the version is newer or, at the
    same version, the content differs (a renormalization after a fix). Never go backwards.

    The MERGE condition names the keys (:meth:`KeyScope.target_predicate`) so that Delta reads
    and rewrites only the files that may hold them. Into a table that does not exist yet (the
    first full run) the rows are appended instead, sorted by key into range-partitioned files
    (the layout later MERGEs and targeted replays skip files by), about
    :data:`NORMALIZED_ROWS_PER_FILE` rows a file, once per request; with the entity's
    ``deletion_vectors`` on, the table is created with them, and a MERGE then rewrites none of
    the rows it leaves alone."""
    source = rows.select(
        *entity.business_columns,
        "content_hash",
        "raw_ingested_at",
        F.lit(context.request.request_id).alias("request_id"),
        F.lit(context.request.mode.value).alias("replay_mode"),
        F.lit(context.now).cast("timestamp").alias("normalized_at"),
        entity.deletion_flag.alias("is_deleted"),
    )
    if not table_exists(context.spark, path):
        files = max(1, -(-rows_written // NORMALIZED_ROWS_PER_FILE))
        ordered = source.repartitionByRange(files, entity.key).sortWithinPartitions(entity.key)
        properties = {DELETION_VECTORS: "true"} if entity.deletion_vectors else None
        append_once(ordered, path, schema, context.app_id("normalized"), (), properties)
        return
    key, version = f"`{entity.key}`", f"`{entity.version}`"
    condition = F.expr(f"t.{key} = s.{key}")
    pruning = keys.target_predicate(F.col(f"t.{key}"))
    if pruning is not None:
        condition = condition & pruning
    (
        DeltaTable.forPath(context.spark, path)
        .alias("t")
        .merge(source.alias("s"), condition)
        .whenMatchedUpdateAll(
            condition=f"s.{version} > t.{version} OR "
            f"(s.{version} = t.{version} AND s.content_hash <> t.content_hash)"
        )
        .whenNotMatchedInsertAll()
        .execute()
    )


def evolve_normalized(
    spark: SparkSession, path: str, schema: StructType, entity: Entity, context: StageContext
) -> None:
    """Add the columns ``schema`` has and the normalized table lacks (nullable, at the end).

    An entity that starts mapping a new source field gains its column here; the rows already
    normalized hold null in it until a replay renormalizes them (at the same version, the
    content differs, so the MERGE updates them). A table from before tombstones gets
    ``is_deleted`` computed from its rows. A column whose type changed is not migrated: the
    MERGE then fails with Delta's error, and the table needs a rebuild (a full replay into a
    new warehouse).
    """
    if not table_exists(spark, path):
        return
    present = set(spark.read.format("delta").load(path).columns)
    missing = [f for f in schema.fields if f.name not in present]
    if not missing:
        return
    columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
    spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({columns})")
    context.say(f"normalized table gained columns {[f.name for f in missing]}")
    if any(f.name == "is_deleted" for f in missing):
        DeltaTable.forPath(spark, path).update(set={"is_deleted": entity.deletion_flag})


def _read_normalized(spark: SparkSession, path: str, schema: StructType) -> DataFrame:
    """The normalized table pinned at its version, columns it lacks (a dry run before the
    entity's new column is added) as null."""
    version = table_version(spark, path)
    if version is None:
        return spark.createDataFrame([], schema)
    table = spark.read.format("delta").option("versionAsOf", version).load(path)
    return table.select(
        *[
            (F.col(f.name) if f.name in table.columns else F.lit(None).cast(f.dataType)).alias(
                f.name
            )
            for f in schema.fields
        ]
    )


def _typed(name: str, produced: DataType, wanted: DataType) -> Column:
    """The column cast to its schema type; a value the type cannot hold becomes null (and a
    quarantine reason), also with ANSI casts on."""
    if _same_type(produced, wanted):
        return F.col(name).cast(wanted)
    return F.expr(f"try_cast(`{name}` AS {wanted.simpleString()})")


def _same_type(produced: DataType, wanted: DataType) -> bool:
    """Equal but for nullability (which a plain cast adjusts, and no value depends on)."""
    return produced.simpleString() == wanted.simpleString()


def _a(kind: DataType) -> str:
    text = kind.simpleString()
    return f"an {text}" if text[:1] in "aeiou" else f"a {text}"


def _quarantine_rows(rows: DataFrame, context: StageContext) -> DataFrame:
    request = context.request
    now = F.lit(context.now).cast("timestamp")
    return rows.select(
        "id",
        "payload",
        F.col("quarantine_reason").alias("reason"),
        "source_updated_at",
        F.col("ingested_at").alias("raw_ingested_at"),
        F.lit(STAGE).alias("stage"),
        F.lit(request.request_id).alias("request_id"),
        F.lit(request.mode.value).alias("replay_mode"),
        F.lit(context.run_id).alias("run_id"),
        now.alias("quarantined_at"),
    )


def dry_run_diff(decided: DataFrame, existing: DataFrame, entity: Entity) -> DataFrame:
    """What a normalize would change, field by field: (id, change, field, before, after).

    The frame a dry run prints (see :func:`glue_replay.pipelines.dry_run.changed_fields`).
    """
    return changed_fields(decided, existing, entity)


def _print_dry_run(
    context: StageContext,
    entity: Entity,
    counts: StageCounts,
    events: DataFrame,
    decided: DataFrame,
    existing: DataFrame,
) -> None:
    context.say(
        f"dry run: would merge {counts.written} rows, emit {counts.outboxed} events, "
        f"quarantine {counts.quarantined} of {counts.read} raw rows; nothing written"
    )
    for row in events.select("aggregate_id", "event_type").limit(DRY_RUN_SAMPLE).collect():
        context.say(f"  would emit {row['event_type']} for id {row['aggregate_id']}")
    records = record_changes(decided)
    context.say(
        f"dry run: records: {records.created} created, {records.updated} updated, "
        f"{records.unchanged} unchanged"
    )
    diff = dry_run_diff(decided, existing, entity).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        for line in diff_report(diff, entity):
            context.say(line)
    finally:
        diff.unpersist()


def _print_dry_run_reads(
    context: StageContext, reads: dict[str, tuple[DataFrame, DataFrame]]
) -> None:
    """What the run would read of each Delta input: see :func:`describe_scans`."""
    for line in describe_scans(reads):
        context.say(f"dry run: {line}")
