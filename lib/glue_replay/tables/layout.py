"""Table maintenance: give back the layout that runs wear down, and drop files nothing reads.

What wears down, and what puts it back:

- ``normalized/<entity>`` is written sorted by key (its first write), so a targeted replay and
  a MERGE read only the files holding their keys. Every later MERGE adds a file of the rows it
  changed, whose keys span the whole key range, and (with deletion vectors) leaves the replaced
  rows in their files, masked. Maintenance sorts the table again into files of
  :data:`ROWS_PER_FILE` rows, as the first write did, without the masked rows. It rewrites the
  whole table, as a rearrangement (``dataChange=false``).
- ``raw/<entity>`` gains a few files per ingest batch, each a time slice whose ids span the
  whole key range, partitioned by ``ingest_date``. Maintenance clusters each closed day (before
  ``today``) by id: ``OPTIMIZE ... ZORDER BY (id)`` on that day's partition, into files of
  about :data:`RAW_FILE_BYTES`, each holding a range of ids no other file of the day overlaps.
  A targeted replay then reads, of each day, the one file whose id range holds each of its ids
  (min/max statistics cannot tell that an id is absent, so that is every day, not only the days
  it changed); a file still spans one day of ingest, so since and BAU runs still skip by
  ``ingested_at``. A day already laid out (files that do not overlap, none more than twice the
  target, not too many) is left alone, so each day is rewritten once, not at every maintenance.
  (``OPTIMIZE`` is the one rewrite an append-only table allows.)
- A stage's quarantine and runs ledger gain a small file per run; the ledger is read several
  times by every run. Compaction joins them.
- ``VACUUM`` (only when asked, never with less than :data:`MIN_VACUUM_RETENTION`) deletes the
  files the tables no longer reference, older than the retention: time travel before it ends.

Not touched: the outbox. The publisher reads it by commit through the change feed, from the
files each commit added; compacting it and then vacuuming would delete files a publisher that
is behind still has to read.

**Who may run it.** Delta on S3 with the default log store is safe for one writer per table at a
time, and each of these tables has one writer by construction: the job of its stage. So a
stage's tables are maintained by that stage's job, between its runs (:func:`maintain_stage`:
the job started with ``--maintenance true``, on the schedule Terraform gives it), or by
anything else only while no job of the entity runs (:func:`maintain`, e.g. ``make bench`` or an
operator's script in a maintenance window).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from glue_replay.entity import Entity
from glue_replay.errors import GlueReplayError
from glue_replay.tables.delta import Warehouse, file_count, snapshot_files, table_exists

#: Rows per file of a table sorted by key (normalized): ~10 MB of a typical entity's rows.
ROWS_PER_FILE = 100_000
#: Files of raw a day is clustered into: about this size (a day of a few MB is one file; a
#: targeted replay reads, of each day that holds one of its ids, one file of this size).
RAW_FILE_BYTES = 8 * 1024 * 1024
#: Files compaction (``OPTIMIZE``) writes: about this size (Delta's default, 1 GiB, would join
#: a ledger's or a raw day's files with no end).
TARGET_FILE_BYTES = 32 * 1024 * 1024
#: The shortest retention VACUUM may use: Delta's own default check. A run pins the versions it
#: reads for its whole length, and an operator needs time travel to look back after a bad run.
MIN_VACUUM_RETENTION = timedelta(days=7)
STAGES = ("ingest", "normalize")
#: raw's key and partition columns (every entity's raw table has them: ``schemas.RAW_SCHEMA``).
RAW_KEY, RAW_DAY = "id", "ingest_date"
_MAX_FILE_SIZE = "spark.databricks.delta.optimize.maxFileSize"
_COALESCE = "spark.sql.adaptive.coalescePartitions.enabled"
_ZORDER_NOISE = "spark.databricks.io.skipping.mdc.addNoise"


class MaintenanceError(GlueReplayError):
    """A maintenance request the library refuses (e.g. too short a VACUUM retention)."""


@dataclass(frozen=True)
class Maintained:
    """What one maintenance step did to one table."""

    table: str
    #: ``"sorted by <key>"``, ``"clustered by id, N of M days"``, ``"compaction"`` or
    #: ``"vacuum"``.
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
    raw_file_bytes: int = RAW_FILE_BYTES,
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
            raw_file_bytes=raw_file_bytes,
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
    raw_file_bytes: int = RAW_FILE_BYTES,
    say: Callable[[str], None] = print,
) -> list[Maintained]:
    """Maintain the tables ``stage``'s job of ``entity`` writes, from that job, between runs.

    ingest: ``raw`` (each day before ``today`` clustered by id, default today in UTC, the
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
    for name, value in (
        ("target_file_bytes", target_file_bytes),
        ("rows_per_file", rows_per_file),
        ("raw_file_bytes", raw_file_bytes),
    ):
        if value < 1:
            raise MaintenanceError(f"{name} {value}: accepted: a positive number")
    raw, normalized = warehouse.raw(entity.name), warehouse.normalized(entity.name)
    before = today or datetime.now(UTC).date()
    steps = [
        raw if stage == "ingest" else normalized,
        warehouse.quarantine_of(stage, entity.name),
        warehouse.runs_of(stage, entity.name),
    ]
    done: list[Maintained] = []
    with _settings(spark, {_MAX_FILE_SIZE: str(target_file_bytes)}):
        for path in steps:
            if not table_exists(spark, path):
                continue
            if path == raw:
                done.append(_cluster_days(spark, path, before, raw_file_bytes))
            elif path == normalized:
                done.append(_sort_by_key(spark, path, entity.key, rows_per_file))
            else:
                done.append(_compact(spark, path))
            if vacuum_retention is not None:
                done.append(_vacuum(spark, path, vacuum_retention))
    for step in done:
        say(
            f"maintained {step.table}: {step.action}, {step.files_removed} files removed, "
            f"{step.files_added} added, {step.seconds:.1f}s"
        )
    return done


@contextmanager
def _settings(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """The session's ``settings`` for the block, then what they were before."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, before in previous.items():
            if before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)


def _compact(spark: SparkSession, path: str) -> Maintained:
    started = time.monotonic()
    row = (
        DeltaTable.forPath(spark, path)
        .optimize()
        .executeCompaction()
        .select("metrics.numFilesRemoved", "metrics.numFilesAdded")
    )
    first = row.first()
    removed, added = (int(first[0] or 0), int(first[1] or 0)) if first is not None else (0, 0)
    return Maintained(path, "compaction", removed, added, time.monotonic() - started)


def _cluster_days(spark: SparkSession, path: str, before: date, file_bytes: int) -> Maintained:
    """Cluster by id each day of raw before ``before`` that is not laid out yet (see
    :func:`days_to_cluster`): one ``OPTIMIZE ... ZORDER BY (id)`` over those days' partitions,
    each day into files of about ``file_bytes``. Raw is append-only: this rearranges files
    (``dataChange=false``) and changes no row."""
    started = time.monotonic()
    files = _raw_files(spark, path)
    if files is None:  # Delta's internal API out of reach: leave raw as it is
        return Maintained(path, "not clustered: its file list is unreadable", 0, 0, 0.0)
    days, total = days_to_cluster(files.where(F.col("day") < F.lit(before)), file_bytes)
    removed = added = 0
    if days:
        listed = ", ".join(f"'{day.isoformat()}'" for day in days)
        # ZORDER range-partitions a day into bytes / file_bytes parts. Adaptive execution would
        # coalesce those small parts back into one file a day; and the random byte Delta adds to
        # each row's z-value by default (against skew) would split an id's rows over two files,
        # so neighbouring files would overlap and the day look unclustered at every maintenance.
        settings = {_MAX_FILE_SIZE: str(file_bytes), _COALESCE: "false", _ZORDER_NOISE: "false"}
        with _settings(spark, settings):
            metrics = (
                DeltaTable.forPath(spark, path)
                .optimize()
                .where(f"{RAW_DAY} IN ({listed})")
                .executeZOrderBy(RAW_KEY)
                .select("metrics.numFilesRemoved", "metrics.numFilesAdded")
                .first()
            )
        if metrics is not None:
            removed, added = int(metrics[0] or 0), int(metrics[1] or 0)
    action = f"clustered by {RAW_KEY}, {len(days)} of {total} days"
    return Maintained(path, action, removed, added, time.monotonic() - started)


def _raw_files(spark: SparkSession, path: str) -> DataFrame | None:
    """One row per data file of raw, from the table's log (no data file is read): ``day`` (its
    ``ingest_date``), ``bytes``, and the ``low``/``high`` ids of its statistics."""
    files = snapshot_files(spark, path)
    if files is None:
        return None
    stats = F.from_json(
        "stats", f"minValues struct<{RAW_KEY}: string>, maxValues struct<{RAW_KEY}: string>"
    )
    return files.select(
        F.col("partitionValues")[RAW_DAY].cast("date").alias("day"),
        F.col("size").alias("bytes"),
        stats["minValues"][RAW_KEY].alias("low"),
        stats["maxValues"][RAW_KEY].alias("high"),
    )


def days_to_cluster(files: DataFrame, file_bytes: int) -> tuple[list[date], int]:
    """The days of ``files`` (as :func:`_raw_files` gives them) that are not laid out by id, and
    how many days there are. A day is not laid out when two of its files overlap in ids (an
    ingest batch spans the whole range), or a file is more than twice ``file_bytes``, or the day
    has more than twice the files its bytes need. A day clustered once passes all three, so the
    next maintenance leaves it alone.

        day 1: files ("1".."9"), ("2".."8") -> overlap: cluster it
        day 2: files ("1".."4"), ("5".."9"), both small -> laid out
    """
    previous_high = F.lag("high").over(Window.partitionBy("day").orderBy("low", "high"))
    # A file without statistics cannot be skipped by id anyway: it never asks for a rewrite.
    overlaps = (
        previous_high.isNotNull() & F.col("low").isNotNull() & (F.col("low") <= previous_high)
    )
    needed = F.greatest(F.lit(1), F.ceil(F.sum("bytes") / file_bytes))
    days = (
        files.withColumn("overlaps", overlaps)
        .groupBy("day")
        .agg(
            (
                F.max(F.col("overlaps").cast("int")).eqNullSafe(1)
                | (F.max("bytes") > 2 * file_bytes)
                | (F.count(F.lit(1)) > 2 * needed)
            ).alias("unclustered")
        )
        .collect()
    )
    return sorted(row["day"] for row in days if row["unclustered"]), len(days)


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
