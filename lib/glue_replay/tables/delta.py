"""Delta Lake plumbing for every table: where tables live, create, read, append once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import reduce
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

log = logging.getLogger(__name__)


class Warehouse:
    """The tables of one deployment under a base URI (``s3://bucket/prefix`` or a local folder).

    Every table has exactly one writer, by construction (DESIGN §6.9): Delta on S3 is safe for
    one driver at a time, and each Glue job runs once at a time. So the tables several jobs
    would share are one Delta table per writer, read as one by :func:`read_all`:

    - ``runs/<stage>/<entity>``: the ledger of one job (the ``runs`` table of DESIGN §5);
    - ``outbox/<entity>``: the events of one entity's normalize (the ``outbox`` of DESIGN §5);
    - ``quarantine/<entity>/<stage>``: what one job quarantined (``quarantine/<entity>``).

        Warehouse("s3://lake/replay").runs_of("ingest", "invoices")
        -> "s3://lake/replay/runs/ingest/invoices"
    """

    def __init__(self, root: str) -> None:
        if "://" not in root:
            root = str(Path(root).resolve())
        self.root = root.rstrip("/")

    def __repr__(self) -> str:
        return f"Warehouse({self.root!r})"

    def raw(self, entity: str) -> str:
        return f"{self.root}/raw/{entity}"

    def normalized(self, entity: str) -> str:
        return f"{self.root}/normalized/{entity}"

    def quarantine(self, entity: str) -> str:
        """The folder of ``entity``'s quarantine: a table per stage (read with
        :func:`read_quarantine`)."""
        return f"{self.root}/quarantine/{entity}"

    def quarantine_of(self, stage: str, entity: str) -> str:
        """What ``stage`` of ``entity`` quarantined: written by that job only."""
        return f"{self.root}/quarantine/{entity}/{stage}"

    def outbox_of(self, entity: str) -> str:
        """The outbox table of ``entity``: written by its normalize job only."""
        return f"{self.root}/outbox/{entity}"

    def dead_letter(self, entity: str) -> str:
        """What the publisher could not deliver of ``entity``: written by the publisher only."""
        return f"{self.root}/dead_letter/{entity}"

    def publish_state(self, entity: str) -> str:
        """The publisher's own files for ``entity``: its lease and a checkpoint per sink."""
        return f"{self.root}/_publish/{entity}"

    def runs_of(self, stage: str, entity: str) -> str:
        """The ledger table of one job (``stage`` of ``entity``): written by that job only."""
        return f"{self.root}/runs/{stage}/{entity}"

    @property
    def outbox(self) -> str:
        """The folder of every entity's outbox table (read them with :func:`read_all`)."""
        return f"{self.root}/outbox"

    @property
    def runs(self) -> str:
        """The folder of every job's ledger table (read them with :func:`read_all`)."""
        return f"{self.root}/runs"


def hadoop_filesystem(spark: SparkSession, location: str) -> tuple[Any, Any]:
    """Hadoop's file system of ``location`` (S3 on Glue, local files here) and its ``Path``."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(location)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def tables_under(spark: SparkSession, folder: str, depth: int) -> list[str]:
    """The Delta tables ``depth`` folder levels below ``folder``, sorted (none if it is absent).

    tables_under(spark, warehouse.runs, 2) -> [".../runs/ingest/invoices", ...]
    """
    fs, hadoop_path = hadoop_filesystem(spark, folder)
    level = [hadoop_path] if fs.exists(hadoop_path) else []
    for _ in range(depth):
        level = [
            status.getPath()
            for parent in level
            for status in fs.listStatus(parent)
            if status.isDirectory() and not status.getPath().getName().startswith(("_", "."))
        ]
    return sorted(f"{folder.rstrip('/')}/{_relative(p, depth)}" for p in level)


def _relative(path: object, depth: int) -> str:
    parts: list[str] = []
    current = path
    for _ in range(depth):
        parts.append(current.getName())  # type: ignore[attr-defined]
        current = current.getParent()  # type: ignore[attr-defined]
    return "/".join(reversed(parts))


def read_all(spark: SparkSession, folder: str, schema: StructType, depth: int) -> DataFrame:
    """Every per-writer table under ``folder`` as one DataFrame in ``schema`` (columns a table
    lacks are null), e.g. the whole ledger: ``read_all(spark, warehouse.runs, RUNS_SCHEMA, 2)``."""
    frames = []
    for path in tables_under(spark, folder, depth):
        if not table_exists(spark, path):
            continue
        table = spark.read.format("delta").load(path)
        frames.append(
            table.select(
                *[
                    (table[f.name] if f.name in table.columns else F.lit(None))
                    .cast(f.dataType)
                    .alias(f.name)
                    for f in schema.fields
                ]
            )
        )
    if not frames:
        return spark.createDataFrame([], schema)
    return reduce(DataFrame.unionByName, frames)


def table_exists(spark: SparkSession, path: str) -> bool:
    return bool(DeltaTable.isDeltaTable(spark, path))


def ensure_table(
    spark: SparkSession,
    path: str,
    schema: StructType,
    partition_by: Sequence[str] = (),
    properties: dict[str, str] | None = None,
) -> None:
    """Create the Delta table at ``path`` with ``schema`` unless it already exists."""
    if table_exists(spark, path):
        return
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    for key, value in (properties or {}).items():
        builder = builder.property(key, value)
    builder.execute()
    log.info("created Delta table %s", path)


CHANGE_FEED = "delta.enableChangeDataFeed"
#: The table property that turns deletion vectors on (see ``Entity.deletion_vectors``).
DELETION_VECTORS = "delta.enableDeletionVectors"


def file_count(spark: SparkSession, path: str) -> int:
    """How many data files the table at ``path`` holds now (0 when there is no table)."""
    if not table_exists(spark, path):
        return 0
    row = DeltaTable.forPath(spark, path).detail().select("numFiles").first()
    return int(row[0]) if row is not None else 0


def change_feed_on(spark: SparkSession, path: str) -> bool:
    """True when the table at ``path`` records its change data feed now."""
    snapshot = _latest_snapshot(spark, path)
    if snapshot is not None:
        value = snapshot.metadata().configuration().get(CHANGE_FEED)
        return bool(value.isDefined()) and str(value.get()) == "true"
    detail = DeltaTable.forPath(spark, path).detail().select("properties").first()
    return detail is not None and (detail["properties"] or {}).get(CHANGE_FEED) == "true"


def ensure_change_feed(spark: SparkSession, path: str) -> bool:
    """Turn on the change data feed of the table at ``path`` unless it is on; True if it was
    turned on now. Only the table's writer calls this (it is a commit)."""
    if change_feed_on(spark, path):
        return False
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('{CHANGE_FEED}' = 'true')")
    log.info("turned on the change data feed of %s", path)
    return True


def add_missing_columns(spark: SparkSession, path: str, schema: StructType) -> list[str]:
    """Add to the table at ``path`` the columns of ``schema`` it lacks (a table written by an
    older version of the library); returns their names. Only the table's writer calls this."""
    present = set(spark.read.format("delta").load(path).columns)
    missing = [f for f in schema.fields if f.name not in present]
    if missing:
        columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
        spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({columns})")
        log.info("added %s to %s", ", ".join(f.name for f in missing), path)
    return [f.name for f in missing]


def table_version(spark: SparkSession, path: str) -> int | None:
    """The table's latest version, or ``None`` when there is no table."""
    if not table_exists(spark, path):
        return None
    snapshot = _latest_snapshot(spark, path)
    if snapshot is not None:
        return int(snapshot.version())
    row = DeltaTable.forPath(spark, path).history(1).select("version").first()
    return int(row["version"]) if row else None


def snapshot_files(spark: SparkSession, path: str) -> DataFrame | None:
    """The table's data files now, one row each (Delta's ``AddFile``: ``path``,
    ``partitionValues``, ``size``, ``stats`` as JSON, ...), read from its log, not its data; or
    ``None`` when Delta's internal API cannot be reached."""
    snapshot = _latest_snapshot(spark, path)
    return None if snapshot is None else DataFrame(snapshot.allFiles().toDF(), spark)


def _latest_snapshot(spark: SparkSession, path: str) -> Any | None:
    """The table's latest snapshot (a JVM ``Snapshot``), brought up to date, or ``None`` when
    Delta's internal API cannot be reached (the callers then ask the public API instead).

    Its version and metadata cost a listing of ``_delta_log``; ``history(1)`` and ``detail()``
    each cost a Spark job (~10x more on a small table). The same
    cached snapshot is what a read of the table at its latest version uses.
    """
    try:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
        empty = jvm.scala.Option.empty()
        return delta_log.update(False, empty, empty)
    except Exception:  # an internal API: degrade to the public one, never fail the run
        log.warning("could not read the Delta snapshot of %s", path, exc_info=True)
        return None


def read_table(
    spark: SparkSession, path: str, schema: StructType, version: int | None = None
) -> DataFrame:
    """The table as of ``version`` (pinned, so a stage sees one snapshot), or empty if missing."""
    if version is None and not table_exists(spark, path):
        return spark.createDataFrame([], schema)
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path).select(*schema.fieldNames())


def append_once(
    frame: DataFrame,
    path: str,
    schema: StructType,
    app_id: str,
    partition_by: Sequence[str] = (),
    properties: dict[str, str] | None = None,
    version: int = 0,
) -> None:
    """Append ``frame`` to ``path`` at most once per ``(app_id, version)``.

    Delta records ``(txnAppId, txnVersion)`` in the same commit as the data and skips a later
    append whose version is not above the last one committed for the ``app_id`` (a Glue retry
    of the same request, a re-run after a crash), so idempotence survives a kill at any point.
    A write in several commits uses versions 0, 1, 2, ... in order.
    """
    ensure_table(frame.sparkSession, path, schema, partition_by, properties)
    (
        frame.select(*schema.fieldNames())
        .write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", version)
        .save(path)
    )


def committed_txn_version(spark: SparkSession, path: str, app_id: str) -> int | None:
    """The last ``txnVersion`` committed to ``path`` for ``app_id``, or ``None``.

    Read from the table's snapshot through the JVM (Delta's Python API does not expose it).
    ``None`` also when it cannot be read: the caller then redoes its appends, which Delta skips
    by itself, so an unreadable answer costs time, never a duplicate.
    """
    if not table_exists(spark, path):
        return None
    snapshot = _latest_snapshot(spark, path)
    if snapshot is None:
        return None
    try:
        found = snapshot.transactions().get(app_id)
        return int(found.get()) if found.isDefined() else None
    except Exception:  # an internal API: degrade to "unknown", never fail the run
        log.warning("could not read the txn version of %s for %s", path, app_id, exc_info=True)
        return None


def read_runs(spark: SparkSession, warehouse: Warehouse) -> DataFrame:
    """The whole runs ledger: every job's ledger table as one DataFrame."""
    from glue_replay.tables.schemas import RUNS_SCHEMA

    return read_all(spark, warehouse.runs, RUNS_SCHEMA, depth=2)


def read_outbox(spark: SparkSession, warehouse: Warehouse) -> DataFrame:
    """The whole outbox: every entity's outbox table as one DataFrame."""
    from glue_replay.tables.schemas import OUTBOX_SCHEMA

    return read_all(spark, warehouse.outbox, OUTBOX_SCHEMA, depth=1)


def read_quarantine(spark: SparkSession, warehouse: Warehouse, entity: str) -> DataFrame:
    """``entity``'s whole quarantine: what its ingest and its normalize quarantined."""
    from glue_replay.tables.schemas import QUARANTINE_SCHEMA

    return read_all(spark, warehouse.quarantine(entity), QUARANTINE_SCHEMA, depth=1)
