"""Publish: each entity's outbox, read incrementally by commit, delivered in order to its sink.

For each entity (one at a time, under its lease: :mod:`glue_replay.pipelines.lease`):

1. the outbox's **change feed** is read by Structured Streaming with ``availableNow``: every
   commit since the checkpoint (``<warehouse>/_publish/<entity>/<sink>/checkpoint``), in
   micro-batches, then the run ends. The checkpoint is the durable position: a batch is marked
   done only after ``foreachBatch`` returned, so a run killed mid-batch redoes that batch (the
   same events, the same ``event_id``s) and loses nothing;
2. a batch's events are ordered by outbox commit version, then by the entity's version, and sent
   (:func:`glue_replay.sinks.base.deliver`: per aggregate one at a time, batched within the API's
   limits, partial failures retried with backoff); the file sink writes one JSONL file per batch
   (:mod:`glue_replay.sinks.files`), exactly once per checkpoint;
3. what could not be delivered goes to ``dead_letter/<entity>`` with the reason (``dead``), and
   the later events of its aggregate are **held** there too, until the operator resolves it
   (``--dead_letters retry|skip``): an aggregate is never delivered out of order;
4. the ledger (``runs/publish/<entity>``) gets a row for the run and one per replay request whose
   events it delivered (counts, first/last outbox version, the sink), updated after every batch.

The outbox's change feed is turned on by normalize, its only writer. An outbox whose feed was
turned on after its first commit (a deployment from before the publisher) is read once from a
snapshot of its current state, ordered by ``occurred_at`` and version, then by commit.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from glue_replay.entity import Entity
from glue_replay.errors import GlueReplayError, InvalidRequestError
from glue_replay.pipelines.lease import Lease, acquire_lease
from glue_replay.pipelines.normalize import normalized_schema
from glue_replay.pipelines.stage import Clock, describe_error, utc_now
from glue_replay.publishing import DeadLetterAction, PublishArguments
from glue_replay.sinks import SinkSpec, open_sink
from glue_replay.sinks.base import Delivery, Event, RetryPolicy, deliver
from glue_replay.sinks.files import write_jsonl
from glue_replay.tables import (
    RunRecord,
    RunsLedger,
    RunStatus,
    Warehouse,
    append_once,
    read_table,
)
from glue_replay.tables.delta import (
    CHANGE_FEED,
    change_feed_on,
    hadoop_filesystem,
    table_exists,
    table_version,
)
from glue_replay.tables.schemas import DEAD_LETTER_SCHEMA, OUTBOX_SCHEMA

log = logging.getLogger(__name__)

STAGE = "publish"
#: A long run records its progress (what it delivered so far) in the ledger this often, so a
#: run killed later still shows most of what it delivered; a short run records its end only.
PROGRESS_EVERY = timedelta(seconds=60)
#: The outbox columns a sink sends (``event_date`` only partitions the outbox).
EVENT_COLUMNS = tuple(name for name in OUTBOX_SCHEMA.fieldNames() if name != "event_date")
#: Dead-letter states that block an aggregate.
UNRESOLVED = (Delivery.DEAD.value, Delivery.HELD.value)
SKIPPED = "skipped"
_OUTCOMES = StructType(
    [
        StructField("event_id", StringType()),
        StructField("delivery", StringType()),
        StructField("attempts", IntegerType()),
        StructField("reason", StringType()),
    ]
)


@dataclass
class RequestTotals:
    replay_mode: str
    delivered: int = 0
    dead_lettered: int = 0
    first_version: int | None = None
    last_version: int | None = None

    def add(self, delivered: int, dead: int, first: int | None, last: int | None) -> None:
        self.delivered += delivered
        self.dead_lettered += dead
        self.first_version = _least(self.first_version, first)
        self.last_version = _greatest(self.last_version, last)


@dataclass
class PublishTotals:
    """What one run did for one entity (all batches)."""

    batches: int = 0
    delivered: int = 0
    dead: int = 0
    held: int = 0
    calls: int = 0
    call_bytes: list[int] = field(default_factory=list)
    requests: dict[str, RequestTotals] = field(default_factory=dict)
    first_version: int | None = None
    last_version: int | None = None


@dataclass
class PublishContext:
    spark: SparkSession
    args: PublishArguments
    entity: Entity
    warehouse: Warehouse
    sink: SinkSpec
    clock: Clock
    policy: RetryPolicy
    run: RunRecord
    ledger: RunsLedger
    lease: Lease
    totals: PublishTotals = field(default_factory=PublishTotals)
    #: Aggregates with a dead or held event (nothing more of theirs is sent): read from the
    #: dead-letter table once the run's own resolving is done, then kept up to date by the run.
    held: set[str] = field(default_factory=set)
    #: When the ledger last recorded this run's progress (``time.monotonic()``).
    recorded_at: float = field(default_factory=time.monotonic)

    @property
    def dead_letter_path(self) -> str:
        return self.warehouse.dead_letter(self.entity.name)

    @property
    def sink_folder(self) -> str:
        return f"{self.sink.target.rstrip('/')}/{self.entity.name}"

    def say(self, message: str) -> None:
        print(f"publish {self.entity.name}: {message}", flush=True)


def run_publish(
    spark: SparkSession,
    args: PublishArguments,
    entities: Sequence[Entity],
    clock: Clock = utc_now,
    policy: RetryPolicy | None = None,
) -> list[RunRecord]:
    """Publish every chosen entity's outbox; the run rows of the entities it published (an
    entity whose lease another run holds is skipped: that run catches up)."""
    warehouse = Warehouse(args.warehouse)
    records: list[RunRecord] = []
    failures: list[str] = []
    for entity in entities:
        if entity.name not in args.entities:
            continue
        try:
            record = publish_entity(spark, args, entity, warehouse, clock, policy or RetryPolicy())
        except InvalidRequestError:
            raise
        except Exception as exc:  # the ledger has it; the other entities still publish
            log.exception("publish of %s failed", entity.name)
            failures.append(f"{entity.name}: {describe_error(exc)}")
            continue
        if record is not None:
            records.append(record)
    if failures:
        raise GlueReplayError("publish failed for " + "; ".join(failures))
    return records


def publish_entity(
    spark: SparkSession,
    args: PublishArguments,
    entity: Entity,
    warehouse: Warehouse,
    clock: Clock,
    policy: RetryPolicy,
) -> RunRecord | None:
    sink = args.sink_for(entity.name)
    outbox_path = warehouse.outbox_of(entity.name)
    lease = acquire_lease(warehouse.publish_state(entity.name), f"run {args.run_id}", clock)
    if isinstance(lease, str):
        print(
            f"publish {entity.name}: the publisher is already running ({lease}); this start "
            "is a no-op: that run, or the next, catches up",
            flush=True,
        )
        return None
    finished = False  # the run's end is in the ledger (else the next run looks for dead runs)
    try:
        ledger = RunsLedger(spark, warehouse.runs_of(STAGE, entity.name))
        now = clock()
        run = RunRecord(
            run_id=args.run_id,
            request_id=args.run_id,
            job_name="publish_outbox",
            stage=STAGE,
            entity=entity.name,
            replay_mode="",
            status=RunStatus.RUNNING,
            requested_by="",
            arguments=_arguments_text(args, sink),
            request_fingerprint="",
            id_count=len(args.dead_letter_ids),
            window_start=None,
            window_end=None,
            started_at=now,
            rows_delivered=0,
            rows_dead_lettered=0,
            sink=str(sink),
        )
        ledger.start(run)
        if not lease.previous_finished:
            _abandon_dead_runs(ledger, run, now)
        context = PublishContext(
            spark, args, entity, warehouse, sink, clock, policy, run, ledger, lease
        )
        try:
            if args.dead_letters is not None:
                resolve_dead_letters(context)
            context.held = unresolved_aggregates(spark, context.dead_letter_path)
            if not table_exists(spark, outbox_path):
                context.say("no outbox yet: nothing to publish")
            elif not change_feed_on(spark, outbox_path):
                context.say(
                    "the outbox records no change feed yet (its next normalize run turns it "
                    "on): nothing published"
                )
            else:
                stream_outbox(context)
        except Exception as exc:
            ledger.record(_ledger_rows(context, RunStatus.FAILED, describe_error(exc)))
            finished = True
            raise
        ledger.record(_ledger_rows(context, RunStatus.SUCCEEDED, None))
        finished = True
        _report(context)
        if args.fail_on_dead_letter and (context.totals.dead or context.totals.held):
            raise GlueReplayError(
                f"{context.totals.dead} events of {entity.name} dead-lettered and "
                f"{context.totals.held} held (--fail_on_dead_letter true); see "
                f"{context.dead_letter_path}"
            )
        return context.run
    finally:
        lease.release(finished)


def stream_outbox(context: PublishContext) -> None:
    """Every outbox commit since the checkpoint, batch by batch, then stop (``availableNow``)."""
    spark = context.spark
    outbox_path = context.warehouse.outbox_of(context.entity.name)
    checkpoint = (
        f"{context.warehouse.publish_state(context.entity.name)}/{context.sink.key}/checkpoint"
    )
    reader = spark.readStream.format("delta").option("readChangeFeed", "true")
    # Where a new checkpoint starts (an existing one knows its position and ignores this).
    if not _path_exists(spark, f"{checkpoint}/offsets") and _change_feed_from_start(
        spark, outbox_path
    ):
        reader = reader.option("startingVersion", 0)
    query = (
        reader.load(outbox_path)
        .writeStream.queryName(f"publish-{context.entity.name}-{context.run.run_id}")
        .foreachBatch(lambda batch, batch_id: publish_batch(context, batch, batch_id, checkpoint))
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()


def publish_batch(
    context: PublishContext, batch: DataFrame, batch_id: int, checkpoint: str
) -> None:
    """One micro-batch: deliver, dead-letter, record. Redone whole after a kill."""
    entity = context.entity
    events = batch.where(F.col("_change_type") == "insert").select(
        *EVENT_COLUMNS,
        F.col("_commit_version").alias("outbox_version"),
        version_of(entity).alias("entity_version"),
    )
    held = set(context.held)
    if context.sink.kind == "file" and not held:
        # The common case, kept to two passes over the batch: the counts (narrow columns
        # only), then the file. Nothing can be dead or held, so there is no outcome to keep.
        tally = _tally(events.withColumn("delivery", F.lit(Delivery.DELIVERED.value)))
        if not tally:
            return
        first, last = _span(tally)
        write_jsonl(
            events, context.sink_folder, _batch_name(batch_id, first, last), delivery_order()
        )
        _finish_batch(context, batch_id, tally, first, last)
        return
    events = events.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        span = events.agg(F.min("outbox_version"), F.max("outbox_version")).first()
        if span is None or span[0] is None:
            return
        first, last = int(span[0]), int(span[1])
        outcomes = send(context, events, held, _batch_name(batch_id, first, last))
        tally = _tally(outcomes)
        if any(row.dead or row.held for row in tally):
            context.held |= {
                row["aggregate_id"]
                for row in outcomes.where(F.col("delivery").isin(*UNRESOLVED))
                .select("aggregate_id")
                .distinct()
                .collect()
            }
            append_once(
                _dead_letter_rows(context, outcomes, _next_sequence(context)),
                context.dead_letter_path,
                DEAD_LETTER_SCHEMA,
                f"glue-replay/publish/{entity.name}/{_checkpoint_id(context.spark, checkpoint)}",
                version=batch_id,
            )
        _finish_batch(context, batch_id, tally, first, last)
        outcomes.unpersist()
    finally:
        events.unpersist()


def _batch_name(batch_id: int, first: int, last: int) -> str:
    return f"batch-{batch_id:08d}-v{first:08d}-{last:08d}"


def _finish_batch(
    context: PublishContext, batch_id: int, tally: list[Tally], first: int, last: int
) -> None:
    """Count the batch in the run's totals; record the run's progress in the ledger at most
    every :data:`PROGRESS_EVERY` (its end is always recorded), and renew the lease."""
    summary = _account(context, tally)
    context.totals.batches += 1
    if time.monotonic() - context.recorded_at >= PROGRESS_EVERY.total_seconds():
        context.ledger.record(_ledger_rows(context, RunStatus.RUNNING, None))
        context.recorded_at = time.monotonic()
    context.lease.renew()
    context.say(f"batch {batch_id}: outbox versions {first}..{last}, {summary}")


def send(context: PublishContext, events: DataFrame, held: set[str], name: str) -> DataFrame:
    """Deliver ``events`` (outbox columns, ``outbox_version``, ``entity_version``) to the sink;
    returns them with ``delivery``, ``attempts`` and ``reason`` (persisted: computed once)."""
    order = delivery_order()
    if context.sink.kind == "file":
        is_held = F.col("aggregate_id").isin(sorted(held)) if held else F.lit(False)
        flagged = events.withColumn("is_held", is_held)
        write_jsonl(flagged.where(~F.col("is_held")), context.sink_folder, name, order)
        outcomes = flagged.select(
            *events.columns,
            F.when(F.col("is_held"), F.lit(Delivery.HELD.value))
            .otherwise(F.lit(Delivery.DELIVERED.value))
            .alias("delivery"),
            F.when(F.col("is_held"), F.lit(0)).otherwise(F.lit(1)).alias("attempts"),
            F.when(
                F.col("is_held"),
                F.concat(
                    F.lit("held: an earlier event of aggregate "),
                    F.col("aggregate_id"),
                    F.lit(" is dead-lettered"),
                ),
            ).alias("reason"),
        )
        return outcomes.persist(StorageLevel.MEMORY_AND_DISK)
    spark = context.spark
    partitions = max(1, spark.sparkContext.defaultParallelism)
    ordered = events.repartition(partitions, "aggregate_id").sortWithinPartitions(*order)
    results = ordered.rdd.mapPartitions(_partition_sender(context.sink, context.policy, held))
    # Checkpointed at once, lineage cut: nothing later can recompute (and so resend) a call.
    reported = spark.createDataFrame(results, _OUTCOMES).localCheckpoint(eager=True)
    stats = reported.where(F.col("event_id").isNull()).collect()
    for row in stats:
        context.totals.calls += int(row["attempts"])
        context.totals.call_bytes.extend(json.loads(row["reason"]))
    outcomes = events.join(
        reported.where(F.col("event_id").isNotNull()), on="event_id", how="left"
    ).persist(StorageLevel.MEMORY_AND_DISK)
    outcomes.count()
    return outcomes


def delivery_order() -> list[Column]:
    """Outbox commit order, then the entity's version, then the event id (a stable tie-break)."""
    return [F.col("outbox_version"), F.col("entity_version"), F.col("event_id")]


def version_of(entity: Entity) -> Column:
    """The entity's version column, read back (typed) from the event's payload."""
    kind = normalized_schema(entity)[entity.version].dataType
    shape = StructType([StructField(entity.version, kind)])
    return F.from_json(F.col("payload"), shape, {"timeZone": "UTC"})[entity.version]


def _partition_sender(
    spec: SinkSpec, policy: RetryPolicy, held: set[str]
) -> Callable[[Iterable[Row]], Iterable[tuple[Any, ...]]]:
    def send_partition(rows: Iterable[Row]) -> Iterator[tuple[Any, ...]]:
        events = [
            Event(
                row["event_id"],
                row["aggregate_type"],
                row["aggregate_id"],
                row["event_type"],
                row["payload"],
                row["occurred_at"],
                row["request_id"],
                row["replay_mode"],
            )
            for row in rows
        ]
        if not events:
            return
        sink = open_sink(spec)
        try:
            report = deliver(events, sink, policy, held_aggregates=held)
        finally:
            sink.close()
        for outcome in report.outcomes:
            yield (outcome.event_id, outcome.delivery.value, outcome.attempts, outcome.reason)
        yield (None, "calls", report.calls, json.dumps(report.call_bytes))

    return send_partition


def unresolved_aggregates(spark: SparkSession, path: str) -> set[str]:
    """Aggregates with a ``dead`` or ``held`` event: nothing more of theirs is sent."""
    if not table_exists(spark, path):
        return set()
    state = dead_letter_state(spark, path)
    rows = (
        state.where(F.col("status").isin(*UNRESOLVED)).select("aggregate_id").distinct().collect()
    )
    return {row["aggregate_id"] for row in rows}


def dead_letter_state(spark: SparkSession, path: str) -> DataFrame:
    """The latest row of every dead-lettered event (its current state), as of the table's
    current version (pinned: the caller's own writes later do not change what it read)."""
    if not table_exists(spark, path):
        return spark.createDataFrame([], DEAD_LETTER_SCHEMA)
    rows = read_table(spark, path, DEAD_LETTER_SCHEMA, table_version(spark, path))
    latest = Window.partitionBy("event_id").orderBy(F.col("sequence").desc())
    return rows.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1").drop("_rank")


def resolve_dead_letters(context: PublishContext) -> None:
    """The operator's ``--dead_letters retry|skip``: skip (or send again) the chosen dead events,
    then send the events held behind them, in order. Chosen: ``--dead_letter_ids``, else all."""
    spark, args = context.spark, context.args
    state = dead_letter_state(spark, context.dead_letter_path).where(
        F.col("status").isin(*UNRESOLVED)
    )
    if args.dead_letter_ids:
        found = {
            row["event_id"]
            for row in state.where(F.col("event_id").isin(*args.dead_letter_ids))
            .select("event_id")
            .collect()
        }
        unknown = [i for i in args.dead_letter_ids if i not in found]
        if unknown:
            raise InvalidRequestError(
                "dead_letter_ids",
                f"{', '.join(unknown[:5])} {'is' if len(unknown) == 1 else 'are'} not a dead or "
                f"held event of {context.entity.name}",
                "event ids from the dead_letter table with status dead or held",
            )
        aggregates = state.where(F.col("event_id").isin(*args.dead_letter_ids)).select(
            "aggregate_id"
        )
        chosen = state.join(aggregates.distinct(), on="aggregate_id", how="left_semi")
    else:
        chosen = state
    chosen = chosen.persist(StorageLevel.MEMORY_AND_DISK)
    if chosen.isEmpty():
        context.say("no dead letters to resolve")
        chosen.unpersist()
        return
    skip = F.lit(False)
    if args.dead_letters is DeadLetterAction.SKIP:
        skip = F.col("status") == Delivery.DEAD.value
        if args.dead_letter_ids:
            skip = skip & F.col("event_id").isin(*args.dead_letter_ids)
    marked = chosen.withColumn("skip", skip)
    skipped = marked.where(F.col("skip"))
    again = marked.where(~F.col("skip")).select(
        *EVENT_COLUMNS,
        "outbox_version",
        version_of(context.entity).alias("entity_version"),
    )
    events = again.persist(StorageLevel.MEMORY_AND_DISK)
    # Aggregates with unresolved events that were not chosen stay held.
    blocked = {
        row["aggregate_id"]
        for row in state.join(chosen.select("aggregate_id"), on="aggregate_id", how="left_anti")
        .select("aggregate_id")
        .distinct()
        .collect()
    }
    outcomes = send(context, events, blocked, f"resolved-{context.run.run_id}")
    sequence = _next_sequence(context)
    rows = _dead_letter_rows(context, outcomes, sequence, include_delivered=True).unionByName(
        _state_rows(context, skipped, SKIPPED, "skipped by the operator", sequence)
    )
    append_once(
        rows,
        context.dead_letter_path,
        DEAD_LETTER_SCHEMA,
        f"glue-replay/publish/{context.entity.name}/resolve/{context.run.run_id}",
    )
    summary = _account(context, _tally(outcomes))
    context.say(
        f"dead letters ({args.dead_letters.value if args.dead_letters else ''}): "
        f"skipped {skipped.count()}, {summary}"
    )
    outcomes.unpersist()
    events.unpersist()
    chosen.unpersist()


def _dead_letter_rows(
    context: PublishContext, outcomes: DataFrame, sequence: int, include_delivered: bool = False
) -> DataFrame:
    """Dead and held outcomes (and, when resolving, delivered ones) as dead-letter rows."""
    wanted = [*UNRESOLVED, Delivery.DELIVERED.value] if include_delivered else list(UNRESOLVED)
    return outcomes.where(F.col("delivery").isin(*wanted)).select(
        *EVENT_COLUMNS,
        "outbox_version",
        F.col("delivery").alias("status"),
        "reason",
        F.col("attempts").cast("int").alias("attempts"),
        F.lit(str(context.sink)).alias("sink"),
        F.lit(context.run.run_id).alias("run_id"),
        F.lit(context.clock()).cast("timestamp").alias("recorded_at"),
        F.lit(sequence).cast("long").alias("sequence"),
    )


def _state_rows(
    context: PublishContext, rows: DataFrame, status: str, reason: str, sequence: int
) -> DataFrame:
    return rows.select(
        *EVENT_COLUMNS,
        "outbox_version",
        F.lit(status).alias("status"),
        F.lit(reason).alias("reason"),
        F.lit(0).alias("attempts"),
        F.lit(str(context.sink)).alias("sink"),
        F.lit(context.run.run_id).alias("run_id"),
        F.lit(context.clock()).cast("timestamp").alias("recorded_at"),
        F.lit(sequence).cast("long").alias("sequence"),
    )


def _next_sequence(context: PublishContext) -> int:
    """The dead-letter table's next version: it has one writer, so it orders its rows."""
    version = table_version(context.spark, context.dead_letter_path)
    return 0 if version is None else version + 1


@dataclass(frozen=True)
class Tally:
    """One request's events in a batch: how many were delivered, dead, held; their versions."""

    request_id: str
    replay_mode: str
    delivered: int
    dead: int
    held: int
    first: int
    last: int


def _tally(outcomes: DataFrame) -> list[Tally]:
    """Per request: outcomes (with ``delivery``) counted, in one aggregation of narrow columns."""
    rows = (
        outcomes.groupBy("request_id", "replay_mode")
        .agg(
            F.sum((F.col("delivery") == Delivery.DELIVERED.value).cast("long")),
            F.sum((F.col("delivery") == Delivery.DEAD.value).cast("long")),
            F.sum((F.col("delivery") == Delivery.HELD.value).cast("long")),
            F.min("outbox_version"),
            F.max("outbox_version"),
        )
        .collect()
    )
    return [Tally(*(row[i] for i in range(7))) for row in rows]


def _span(tally: list[Tally]) -> tuple[int, int]:
    return min(t.first for t in tally), max(t.last for t in tally)


def _account(context: PublishContext, tally: list[Tally]) -> str:
    """Add a batch's ``tally`` to the run's totals, per request; returns a summary line."""
    totals = context.totals
    for row in tally:
        request = totals.requests.setdefault(row.request_id, RequestTotals(row.replay_mode))
        request.add(row.delivered, row.dead + row.held, row.first, row.last)
        totals.first_version = _least(totals.first_version, row.first)
        totals.last_version = _greatest(totals.last_version, row.last)
    delivered = sum(t.delivered for t in tally)
    dead = sum(t.dead for t in tally)
    held = sum(t.held for t in tally)
    totals.delivered += delivered
    totals.dead += dead
    totals.held += held
    return f"delivered {delivered}, dead-lettered {dead}, held {held} to {context.sink}"


def _least(current: int | None, value: int | None) -> int | None:
    return value if current is None else current if value is None else min(current, value)


def _greatest(current: int | None, value: int | None) -> int | None:
    return value if current is None else current if value is None else max(current, value)


def _ledger_rows(context: PublishContext, status: RunStatus, error: str | None) -> list[RunRecord]:
    totals = context.totals
    finished = None if status is RunStatus.RUNNING else context.clock()
    run = replace(
        context.run,
        status=status,
        finished_at=finished,
        rows_read=totals.delivered + totals.dead + totals.held,
        rows_delivered=totals.delivered,
        rows_dead_lettered=totals.dead + totals.held,
        first_outbox_version=totals.first_version,
        last_outbox_version=totals.last_version,
        error=error,
        note=_note(totals),
    )
    rows = [run]
    for request_id, request in sorted(totals.requests.items()):
        rows.append(
            replace(
                run,
                request_id=request_id,
                replay_mode=request.replay_mode,
                rows_read=request.delivered + request.dead_lettered,
                rows_delivered=request.delivered,
                rows_dead_lettered=request.dead_lettered,
                first_outbox_version=request.first_version,
                last_outbox_version=request.last_version,
                note=f"events of request {request_id} delivered by publish run {run.run_id}",
            )
        )
    return rows


def _note(totals: PublishTotals) -> str:
    text = f"{totals.batches} batches"
    if totals.calls:
        text += f", {totals.calls} API calls"
    if totals.dead or totals.held:
        text += f"; {totals.dead} dead-lettered, {totals.held} held behind them"
    return text


def _report(context: PublishContext) -> None:
    totals = context.totals
    span = (
        f"outbox versions {totals.first_version}..{totals.last_version}"
        if totals.first_version is not None
        else "no new outbox commits"
    )
    context.say(
        f"done: {span}; delivered {totals.delivered}, dead-lettered {totals.dead}, "
        f"held {totals.held} ({len(totals.requests)} requests) to {context.sink}"
    )
    if totals.dead or totals.held:
        context.say(
            f"dead letters are in {context.dead_letter_path}; resolve them with "
            "--dead_letters retry|skip [--dead_letter_ids ...]"
        )


def _abandon_dead_runs(ledger: RunsLedger, run: RunRecord, now: datetime) -> None:
    """Publish runs still marked ``running`` are dead (this run holds the lease): their rows
    (the run's and its per-request ones) become ``abandoned``."""
    from delta.tables import DeltaTable

    for stale in ledger.running(run.stage, run.entity):
        if stale.run_id == run.run_id:
            continue
        DeltaTable.forPath(ledger.spark, ledger.path).update(
            (F.col("run_id") == stale.run_id)
            & (F.col("stage") == run.stage)
            & (F.col("entity") == run.entity)
            & (F.col("status") == RunStatus.RUNNING.value),
            {
                "status": F.lit(RunStatus.ABANDONED.value),
                "finished_at": F.lit(now).cast("timestamp"),
                "note": F.lit(
                    f"abandoned: publish run {run.run_id} took the lease at {now.isoformat()} "
                    "while this run was still marked running"
                ),
            },
        )


def _change_feed_from_start(spark: SparkSession, path: str) -> bool:
    """True when the outbox recorded its change feed from its first commit: its first commit
    file (still in the log: the feed can be read from version 0) turned it on."""
    first = _read_text(spark, f"{path}/_delta_log/{0:020d}.json")
    if first is None:
        return False
    for line in first.splitlines():
        action = json.loads(line) if line.strip() else {}
        if "metaData" in action:
            configuration = action["metaData"].get("configuration") or {}
            return bool(configuration.get(CHANGE_FEED) == "true")
    return False


def _path_exists(spark: SparkSession, location: str) -> bool:
    fs, path = hadoop_filesystem(spark, location)
    return bool(fs.exists(path))


def _checkpoint_id(spark: SparkSession, checkpoint: str) -> str:
    """The streaming query id Spark stored in the checkpoint (stable for its life): dead-letter
    appends are made idempotent per checkpoint and batch."""
    text = _read_text(spark, f"{checkpoint}/metadata")
    if text is None:
        raise GlueReplayError(f"the checkpoint {checkpoint} has no metadata file")
    return str(json.loads(text.splitlines()[0])["id"])


def _read_text(spark: SparkSession, location: str) -> str | None:
    """A small file's text through Hadoop's file system (S3 on Glue), or None if missing."""
    fs, path = hadoop_filesystem(spark, location)
    if not fs.exists(path):
        return None
    stream = fs.open(path)
    try:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def _arguments_text(args: PublishArguments, sink: SinkSpec) -> str:
    shown: dict[str, Any] = {"sink": str(sink), "entities": list(args.entities)}
    if args.dead_letters is not None:
        shown["dead_letters"] = args.dead_letters.value
        shown["dead_letter_ids"] = list(args.dead_letter_ids)
    if args.fail_on_dead_letter:
        shown["fail_on_dead_letter"] = True
    return json.dumps(shown, sort_keys=True)
