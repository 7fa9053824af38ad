"""One ``StructType`` per table: the contract of DESIGN §5. Stages ``select`` these columns last.

The normalized table's schema is the entity's (see ``glue_replay.entities``) plus
:data:`NORMALIZED_METADATA`.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


def _fields(*pairs: tuple[str, object]) -> StructType:
    return StructType([StructField(name, kind, nullable=True) for name, kind in pairs])  # type: ignore[arg-type]


#: raw/<entity>: append-only; the record as the source gave it, plus run metadata.
RAW_SCHEMA = _fields(
    ("id", StringType()),
    ("payload", StringType()),
    ("source_updated_at", TimestampType()),
    ("ingested_at", TimestampType()),
    ("request_id", StringType()),
    ("replay_mode", StringType()),
    ("run_id", StringType()),
    ("ingest_date", DateType()),
)
RAW_PARTITIONS = ("ingest_date",)

#: Columns every normalized table carries after the entity's own. ``is_deleted`` is the
#: tombstone: true when the row's version is marked deleted at the source (the entity's
#: ``SoftDelete``), false otherwise; a deleted row stays, so ``WHERE NOT is_deleted`` is the
#: live set.
NORMALIZED_METADATA = _fields(
    ("content_hash", StringType()),
    ("raw_ingested_at", TimestampType()),
    ("request_id", StringType()),
    ("replay_mode", StringType()),
    ("normalized_at", TimestampType()),
    ("is_deleted", BooleanType()),
)

#: outbox: append-only change events, drained by the publisher; ``event_id`` is the dedupe key.
OUTBOX_SCHEMA = _fields(
    ("event_id", StringType()),
    ("aggregate_type", StringType()),
    ("aggregate_id", StringType()),
    ("event_type", StringType()),
    ("payload", StringType()),
    ("occurred_at", TimestampType()),
    ("request_id", StringType()),
    ("replay_mode", StringType()),
    ("event_date", DateType()),
)
OUTBOX_PARTITIONS = ("event_date",)

#: quarantine/<entity>: records that failed parsing or validation, with the reason.
QUARANTINE_SCHEMA = _fields(
    ("id", StringType()),
    ("payload", StringType()),
    ("reason", StringType()),
    ("source_updated_at", TimestampType()),
    ("raw_ingested_at", TimestampType()),
    ("stage", StringType()),
    ("request_id", StringType()),
    ("replay_mode", StringType()),
    ("run_id", StringType()),
    ("quarantined_at", TimestampType()),
)

#: runs: the audit ledger, one row per job run (a Glue retry is a new run of the same request).
RUNS_SCHEMA = _fields(
    ("run_id", StringType()),
    ("request_id", StringType()),
    ("job_name", StringType()),
    ("stage", StringType()),
    ("entity", StringType()),
    ("replay_mode", StringType()),
    ("status", StringType()),
    ("requested_by", StringType()),
    ("arguments", StringType()),
    ("request_fingerprint", StringType()),
    ("id_count", IntegerType()),
    ("window_start", TimestampType()),
    ("window_end", TimestampType()),
    ("started_at", TimestampType()),
    ("finished_at", TimestampType()),
    ("rows_read", LongType()),
    ("rows_written", LongType()),
    ("rows_outboxed", LongType()),
    ("rows_quarantined", LongType()),
    ("rows_unchanged", LongType()),
    ("missing_ids", ArrayType(StringType())),
    ("watermark", TimestampType()),
    ("note", StringType()),
    ("error", StringType()),
    # publish: one row per run (request_id = the run's id, totals) and one per replay request
    # whose events it delivered (that request's counts and outbox versions).
    ("rows_delivered", LongType()),
    ("rows_dead_lettered", LongType()),
    ("first_outbox_version", LongType()),
    ("last_outbox_version", LongType()),
    ("sink", StringType()),
)

#: dead_letter/<entity>: what the publisher could not deliver, as a log of states (the latest row
#: of an ``event_id`` is its state): ``dead`` (the sink kept refusing it), ``held`` (not sent: an
#: earlier event of its aggregate is dead), then ``delivered`` or ``skipped`` once the operator
#: retried or skipped it. An aggregate with a ``dead`` or ``held`` event gets no more events.
DEAD_LETTER_SCHEMA = _fields(
    ("event_id", StringType()),
    ("aggregate_type", StringType()),
    ("aggregate_id", StringType()),
    ("event_type", StringType()),
    ("payload", StringType()),
    ("occurred_at", TimestampType()),
    ("request_id", StringType()),
    ("replay_mode", StringType()),
    ("outbox_version", LongType()),
    ("status", StringType()),
    ("reason", StringType()),
    ("attempts", IntegerType()),
    ("sink", StringType()),
    ("run_id", StringType()),
    ("recorded_at", TimestampType()),
    # Orders the states of an event: the table version its row was written in.
    ("sequence", LongType()),
)
