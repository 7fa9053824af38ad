"""Delta Lake plumbing for every table: where tables live, create, read, append once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

log = logging.getLogger(__name__)


class Warehouse:
    """The tables of one deployment under a base URI (``s3://bucket/prefix`` or a local folder)."""

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
        return f"{self.root}/quarantine/{entity}"

    @property
    def outbox(self) -> str:
        return f"{self.root}/outbox"

    @property
    def runs(self) -> str:
        return f"{self.root}/runs"


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


def table_version(spark: SparkSession, path: str) -> int | None:
    """The table's latest version, or ``None`` when there is no table."""
    if not table_exists(spark, path):
        return None
    row = DeltaTable.forPath(spark, path).history(1).select("version").first()
    return int(row["version"]) if row else None


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
    try:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
        empty = jvm.scala.Option.empty()
        found = delta_log.update(False, empty, empty).transactions().get(app_id)
        return int(found.get()) if found.isDefined() else None
    except Exception:  # an internal API: degrade to "unknown", never fail the run
        log.warning("could not read the txn version of %s for %s", path, app_id, exc_info=True)
        return None
