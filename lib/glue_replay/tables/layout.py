"""Table maintenance: give back the layout that runs wear down, and drop files nothing reads.

What wears down, and what puts it back:

- ``normalized/<entity>`` is written sorted by key (its first write), so a targeted replay and
  a MERGE read only the files holding their keys. Every later MERGE adds a file of the rows it
  changed, whose keys span the whole key range, and (with deletion vectors) leaves the replaced
  rows in their files, masked. Maintenance sorts the table again into files of
  :data:`ROWS_PER_FILE` rows, as the first write did, without the masked rows. It rewrites the
  whole table, as a rearrangement (``dataChange=false``).
- ``raw/<entity>`` gains a few files per ingest batch, each a time slice, partitioned by
  ``ingest_date``. Compaction (``OPTIMIZE``) of the days before ``today`` joins each day's files;
  a file then spans one day of ingest, so since and BAU runs still skip by ``ingested_at``.
- A stage's quarantine and runs ledger gain a small file per run; the ledger is read several
  times by every run. Compaction joins them.
- ``VACUUM`` (only when asked, never with less than :data:`MIN_VACUUM_RETENTION`) deletes the
  files the tables no longer reference, older than the retention: time travel before it ends.

Not touched: the outbox. The publisher reads it by commit through the change feed, from the
files each commit added; compacting it and then vacuuming would delete files a publisher that
is behind still has to read.

**Who may run it.** Delta on S3 with the default log store is safe for one writer per table at a
time, and each of these tables has one writer by construction: the job of its stage. So a
stage's tables are maintained by that stage's job, between its runs (:func:`maintain_stage`),
or by anything else only while no job of the entity runs (:func:`maintain`, e.g. ``make bench``
or an operator's script in a maintenance window).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from glue_replay.entity import Entity
from glue_replay.errors import GlueReplayError
from glue_replay.tables.delta import Warehouse, file_count, table_exists

#: Rows per file of a table sorted by key (normalized): ~10 MB of a typical entity's rows.
ROWS_PER_FILE = 100_000
#: Files compaction (``OPTIMIZE``) writes: about this size (Delta's default, 1 GiB, would join
#: a ledger's or a raw day's files with no end).
TARGET_FILE_BYTES = 32 * 1024 * 1024
#: The shortest retention VACUUM may use: Delta's own default check. A run pins the versions it
#: reads for its whole length, and an operator needs time travel to look back after a bad run.
MIN_VACUUM_RETENTION = timedelta(days=7)
STAGES = ("ingest", "normalize")
_MAX_FILE_SIZE = "spark.databricks.delta.optimize.maxFileSize"


class MaintenanceError(GlueReplayError):
    """A maintenance request the library refuses (e.g. too short a VACUUM retention)."""


@dataclass(frozen=True)
class Maintained:
    """What one maintenance step did to one table."""

    table: str
    #: ``"sorted by <key>"``, ``"compaction"`` or ``"vacuum"``.
    action: str
    files_removed: int
    files_added: int
    seconds: float


def maintain(
    spark: SparkSession,
    warehouse: Warehouse,
    entity: Entity,
    *,
    today: date | None = None,
    vacuum_retention: timedelta | None = None,
    target_file_bytes: int = TARGET_FILE_BYTES,
    rows_per_file: int = ROWS_PER_FILE,
    say: Callable[[str], None] = print,
) -> list[Maintained]:
    """Maintain every table of ``entity`` the ingest and normalize jobs write (not the outbox).

    Only while none of the entity's jobs runs: see the module's notes on writers.
    """
    done: list[Maintained] = []
    for stage in STAGES:
        done += maintain_stage(
            spark,
            warehouse,
            entity,
            stage,
            today=today,
            vacuum_retention=vacuum_retention,
            target_file_bytes=target_file_bytes,
            rows_per_file=rows_per_file,
            say=say,
        )
    return done


def maintain_stage(
    spark: SparkSession,
    warehouse: Warehouse,
    entity: Entity,
    stage: str,
    *,
    today: date | None = None,
    vacuum_retention: timedelta | None = None,
    target_file_bytes: int = TARGET_FILE_BYTES,
    rows_per_file: int = ROWS_PER_FILE,
    say: Callable[[str], None] = print,
) -> list[Maintained]:
    """Maintain the tables ``stage``'s job of ``entity`` writes, from that job, between runs.

    ingest: ``raw`` (compaction of the days before ``today``, default today in UTC, the
    ``ingest_date`` partitions' own clock), its quarantine and runs ledger; normalize:
    ``normalized`` (sorted by the entity's key), its quarantine and runs ledger. Tables that do
    not exist yet are skipped. With ``vacuum_retention`` (at least
    :data:`MIN_VACUUM_RETENTION`) each table is vacuumed after.
    """
    if stage not in STAGES:
        raise MaintenanceError(f"stage {stage!r}: accepted: {', '.join(STAGES)}")
    if vacuum_retention is not None and vacuum_retention < MIN_VACUUM_RETENTION:
        raise MaintenanceError(
            f"vacuum_retention {vacuum_retention}: accepted: at least {MIN_VACUUM_RETENTION}"
        )
    for name, value in (("target_file_bytes", target_file_bytes), ("rows_per_file", rows_per_file)):
        if value < 1:
            raise MaintenanceError(f"{name} {value}: accepted: a positive number")
    steps: list[tuple[str, str | None, str | None]] = []  # (path, sort key, where)
    if stage == "ingest":
        before = (today or datetime.now(UTC).date()).isoformat()
        steps.append((warehouse.raw(entity.name), None, f"ingest_date < '{before}'"))
    else:
        steps.append((warehouse.normalized(entity.name), entity.key, None))
    steps.append((warehouse.quarantine_of(stage, entity.name), None, None))
    steps.append((warehouse.runs_of(stage, entity.name), None, None))
    done: list[Maintained] = []
    previous = spark.conf.get(_MAX_FILE_SIZE, None)
    spark.conf.set(_MAX_FILE_SIZE, str(target_file_bytes))
    try:
        for path, key, where in steps:
            if not table_exists(spark, path):
                continue
            if key is None:
                done.append(_compact(spark, path, where))
            else:
                done.append(_sort_by_key(spark, path, key, rows_per_file))
            if vacuum_retention is not None:
                done.append(_vacuum(spark, path, vacuum_retention))
    finally:
        if previous is None:
            spark.conf.unset(_MAX_FILE_SIZE)
        else:
            spark.conf.set(_MAX_FILE_SIZE, previous)
    for step in done:
        say(
            f"maintained {step.table}: {step.action}, {step.files_removed} files removed, "
            f"{step.files_added} added, {step.seconds:.1f}s"
        )
    return done


def _compact(spark: SparkSession, path: str, where: str | None) -> Maintained:
    started = time.monotonic()
    builder = DeltaTable.forPath(spark, path).optimize()
    if where is not None:
        builder = builder.where(where)
    row = builder.executeCompaction().select("metrics.numFilesRemoved", "metrics.numFilesAdded")
    first = row.first()
    removed, added = (int(first[0] or 0), int(first[1] or 0)) if first is not None else (0, 0)
    return Maintained(path, "compaction", removed, added, time.monotonic() - started)


def _sort_by_key(spark: SparkSession, path: str, key: str, rows_per_file: int) -> Maintained:
    """Rewrite the table sorted by ``key`` into files of ``rows_per_file`` rows, as its first
    write laid it out: a rearrangement (``dataChange=false``), the rows unchanged.

    Not ``ZORDER BY``: for one column it sorts too, but sizes files by bytes over the whole
    table, and open-source Delta made two files of a 170 MB table asked for 32 MB ones.
    """
    started = time.monotonic()
    before = file_count(spark, path)
    table = spark.read.format("delta").load(path)
    files = max(1, -(-table.count() // rows_per_file))
    (
        table.repartitionByRange(files, key)
        .sortWithinPartitions(key)
        .write.format("delta")
        .mode("overwrite")
        .option("dataChange", "false")
        .save(path)
    )
    added = file_count(spark, path)
    return Maintained(path, f"sorted by {key}", before, added, time.monotonic() - started)


def _vacuum(spark: SparkSession, path: str, retention: timedelta) -> Maintained:
    started = time.monotonic()
    hours = f"{retention.total_seconds() / 3600:g}"
    removed = spark.sql(f"VACUUM delta.`{path}` RETAIN {hours} HOURS DRY RUN").count()
    DeltaTable.forPath(spark, path).vacuum(float(hours))
    return Maintained(path, "vacuum", removed, 0, time.monotonic() - started)
