"""The JSONL file sink: one file per micro-batch, written whole or not at all, named by its batch.

A batch's events are written by Spark (one partition, in delivery order) to a temporary folder,
then its one part file is renamed to ``<folder>/<entity>/<name>.jsonl``. The name is fixed by the
batch (its checkpoint batch id and outbox versions), so a batch redone after a kill overwrites
the same file with the same lines: exactly once per checkpoint. Each line is the event envelope
(:func:`glue_replay.sinks.base.envelope_json`), the payload embedded as JSON.

    write_jsonl(events, "/data/published/invoices", "batch-000003-v000012-000014", order)
    -> /data/published/invoices/batch-000003-v000012-000014.jsonl
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

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


def envelope_line(payload: str = "payload") -> Column:
    """The envelope JSON of an outbox row, ``payload`` embedded as JSON (not as a string)."""
    head = F.to_json(F.struct(*ENVELOPE_FIELDS), JSON_OPTIONS)
    without_brace = head.substr(F.lit(1), F.length(head) - 1)
    return F.concat(without_brace, F.lit(',"payload":'), F.col(payload), F.lit("}"))


def write_jsonl(events: DataFrame, folder: str, name: str, order: Sequence[str | Column]) -> str:
    """Write ``events`` as ``<folder>/<name>.jsonl`` in ``order``, replacing a file of that name;
    returns its path."""
    spark = events.sparkSession
    staging = f"{folder}/_staging-{name}"
    (
        events.repartition(1)
        .sortWithinPartitions(*order)
        .select(envelope_line().alias("value"))
        .write.mode("overwrite")
        .text(staging)
    )
    target = f"{folder}/{name}.jsonl"
    fs, jvm = _filesystem(spark, folder)
    parts = [
        status.getPath()
        for status in fs.listStatus(jvm.org.apache.hadoop.fs.Path(staging))
        if status.getPath().getName().startswith("part-")
    ]
    target_path = jvm.org.apache.hadoop.fs.Path(target)
    if fs.exists(target_path):
        fs.delete(target_path, False)
    if parts:
        fs.rename(parts[0], target_path)
    else:  # an empty batch: an empty file still says the batch was published
        fs.create(target_path, True).close()
    fs.delete(jvm.org.apache.hadoop.fs.Path(staging), True)
    return target


def _filesystem(spark: SparkSession, folder: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(folder)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), jvm
