"""The JSONL file sink: one file per micro-batch, written whole or not at all, named by its batch.

A batch's events are written by Spark in parallel: hashed by aggregate into as many partitions as
the cluster has cores, each partition sorted in delivery order and written as one part file in a
temporary folder. The parts are then joined, one after the other, into
``<folder>/<entity>/<name>.jsonl``. Every event of an aggregate is in one part, so the file holds
each aggregate's events in delivery order (the file as a whole is not in commit order: events of
different aggregates interleave by part). The name is fixed by the batch (its checkpoint batch id
and outbox versions), so a batch redone after a kill replaces the same file with the same lines:
exactly once per checkpoint. Each line is the event envelope
(:func:`glue_replay.sinks.base.envelope_json`), the payload embedded as JSON.

    write_jsonl(events, "/data/published/invoices", "batch-000003-v000012-000014", order)
    -> /data/published/invoices/batch-000003-v000012-000014.jsonl
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_replay.tables.delta import hadoop_filesystem
from glue_replay.transforms.common import JSON_OPTIONS

ENVELOPE_FIELDS = (
    "event_id",
    "aggregate_type",
    "aggregate_id",
    "event_type",
    "occurred_at",
    "request_id",
    "replay_mode",
)
#: How many bytes the driver copies at a time when it joins the part files.
COPY_BUFFER = 4 * 1024 * 1024


def envelope_line(payload: str = "payload") -> Column:
    """The envelope JSON of an outbox row, ``payload`` embedded as JSON (not as a string).

    The envelope's own fields are serialized once and their closing brace replaced by the
    payload."""
    head = F.to_json(F.struct(*ENVELOPE_FIELDS), JSON_OPTIONS)
    return F.concat(
        F.regexp_replace(head, "[}]$", ""), F.lit(',"payload":'), F.col(payload), F.lit("}")
    )


def write_jsonl(
    events: DataFrame,
    folder: str,
    name: str,
    order: Sequence[str | Column],
    group: str = "aggregate_id",
) -> str:
    """Write ``events`` as ``<folder>/<name>.jsonl``, each ``group``'s events in ``order``,
    replacing a file of that name; returns its path."""
    spark = events.sparkSession
    staging = f"{folder}/_staging-{name}"
    keys = [F.col(c) if isinstance(c, str) else c for c in order]
    parts = max(1, spark.sparkContext.defaultParallelism)
    # The envelope is built before the shuffle (on every core); the sort carries only the line
    # and its keys.
    lines = events.select(
        envelope_line().alias("value"),
        F.col(group).alias("_group"),
        *[key.alias(f"_key{i}") for i, key in enumerate(keys)],
    )
    (
        lines.repartition(parts, "_group")
        .sortWithinPartitions(*[f"_key{i}" for i in range(len(keys))])
        .select("value")
        .write.mode("overwrite")
        .text(staging)
    )
    target = f"{folder}/{name}.jsonl"
    fs, _ = hadoop_filesystem(spark, folder)
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_path = jvm.org.apache.hadoop.fs.Path
    found = sorted(
        (status.getPath() for status in fs.listStatus(hadoop_path(staging))),
        key=lambda path: path.getName(),
    )
    written = [path for path in found if path.getName().startswith("part-")]
    joined = hadoop_path(f"{staging}/_joined")
    if len(written) == 1:
        fs.rename(written[0], joined)
    else:  # several parts (or none: an empty batch still leaves its empty file)
        _concatenate(spark, fs, written, joined)
    target_path = hadoop_path(target)
    if fs.exists(target_path):
        fs.delete(target_path, False)
    fs.rename(joined, target_path)
    fs.delete(hadoop_path(staging), True)
    return target


def _concatenate(spark: SparkSession, fs: Any, parts: list[Any], target: Any) -> None:
    """Copy ``parts`` one after the other into ``target`` (in the JVM: no bytes cross to
    Python)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    copy = jvm.org.apache.hadoop.io.IOUtils.copyBytes
    out = fs.create(target, True)
    try:
        for part in parts:
            source = fs.open(part)
            try:
                copy(source, out, COPY_BUFFER, False)
            finally:
                source.close()
    finally:
        out.close()
