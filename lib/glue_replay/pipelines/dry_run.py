"""What a dry run shows: the field-level diff a normalize would make, and what a stage would read.

Nothing here writes. The diff is a DataFrame (:func:`changed_fields`) that the printed report
(:func:`diff_report`) is built from, so a caller can also inspect or save it. What a stage
would read comes from the plan, never from reading the data:

* a Delta input: the files of the pinned snapshot that the optimized plan's Delta scans still
  read after Delta's partition pruning and data skipping (min/max statistics), and their sizes
  from the Delta log, as the plan's file indexes hold them (see :func:`scan_estimate`);
* a source: the read's batches, and what the source says each batch asks for
  (:meth:`~glue_replay.sources.base.Source.describe_read`), else each batch's scan node in the
  physical plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StringType, StructField, StructType

from glue_replay.entity import Entity

#: One row per (record, field) a normalize would change: ``change`` is ``created`` (``before``
#: null) or ``updated``; values are text (nested values as JSON), null for a null value.
DIFF_SCHEMA = StructType(
    [
        StructField("id", StringType(), nullable=False),
        StructField("change", StringType(), nullable=False),
        StructField("field", StringType(), nullable=False),
        StructField("before", StringType()),
        StructField("after", StringType()),
    ]
)
CREATED, UPDATED = "created", "updated"
#: How many changed records a dry run prints.
DIFF_SAMPLE = 10


def changed_fields(decided: DataFrame, existing: DataFrame, entity: Entity) -> DataFrame:
    """The records a normalize would write, field by field, before -> after (:data:`DIFF_SCHEMA`).

    ``decided`` is normalize's decision (the winning business columns, ``is_new``, ``write``);
    ``existing`` the normalized table it was decided against. A created record lists its
    non-null fields; an updated one only the fields whose value differs (the version included).

        decided (7, v2, "gold", write), existing (7, v1, "silver")
        -> ("7", "updated", "tier", "silver", "gold"), ("7", "updated", "version", "v1", "v2")
    """
    key = entity.key
    fields = [f for f in entity.schema.fields if f.name != key]
    writes = decided.where(F.col("write")).select(
        key, "is_new", *[F.col(f.name).alias(f"_after_{f.name}") for f in fields]
    )
    before = existing.select(key, *[F.col(f.name).alias(f"_before_{f.name}") for f in fields])
    pairs = F.array(
        *[
            F.struct(
                F.lit(f.name).alias("field"),
                _as_text(F.col(f"_before_{f.name}"), f.dataType).alias("before"),
                _as_text(F.col(f"_after_{f.name}"), f.dataType).alias("after"),
            )
            for f in fields
        ]
    )
    change = F.when(F.col("is_new"), F.lit(CREATED)).otherwise(F.lit(UPDATED))
    return (
        writes.join(before, on=key, how="left")
        .select(
            F.col(key).cast("string").alias("id"),
            change.alias("change"),
            F.explode(pairs).alias("pair"),
        )
        .where(~F.col("pair.before").eqNullSafe(F.col("pair.after")))
        .select("id", "change", "pair.field", "pair.before", "pair.after")
    )


@dataclass(frozen=True)
class RecordChanges:
    """Records (ids, not raw rows) a normalize would create, update or leave as they are."""

    created: int
    updated: int
    unchanged: int


def record_changes(decided: DataFrame) -> RecordChanges:
    """Count ``decided``'s ids by what the MERGE would do to them (one small aggregation)."""
    write, new = F.col("write"), F.col("is_new")
    row = decided.agg(
        F.count(F.when(write & new, True)).alias("created"),
        F.count(F.when(write & ~new, True)).alias("updated"),
        F.count(F.when(~write, True)).alias("unchanged"),
    ).first()
    assert row is not None  # an aggregate without grouping has one row
    return RecordChanges(int(row["created"]), int(row["updated"]), int(row["unchanged"]))


def diff_report(diff: DataFrame, entity: Entity, sample: int = DIFF_SAMPLE) -> list[str]:
    """The printed diff: per-field counts over every updated record, then a sample of records.

    The sample is the first ``sample`` changed ids in id order, each with its changed fields in
    schema order, ``field: before -> after`` (a created record: ``field: value``).

        ["dry run: changed fields of 2 updated records: status: 2, updated_at: 2",
         "dry run: sample of 2 of 2 changed records:", "  id 7: updated",
         "    status: active -> inactive", ...]
    """
    updated = diff.where(F.col("change") == UPDATED)
    counts = [
        (row["field"], int(row["count"])) for row in updated.groupBy("field").count().collect()
    ]
    changed_ids = diff.select("id").distinct()
    total = changed_ids.count()
    updated_records = updated.select("id").distinct().count()
    lines = [
        f"dry run: changed fields of {updated_records} updated records: "
        + (", ".join(f"{f}: {n}" for f, n in sorted(counts, key=lambda c: (-c[1], c[0]))) or "none")
    ]
    if total == 0:
        return lines
    shown = changed_ids.orderBy("id").limit(sample)
    rows = diff.join(shown, on="id", how="left_semi").collect()
    order = {name: at for at, name in enumerate(entity.business_columns)}
    lines.append(f"dry run: sample of {min(total, sample)} of {total} changed records:")
    for record_id in sorted({row["id"] for row in rows}):
        mine = sorted((r for r in rows if r["id"] == record_id), key=lambda r: order[r["field"]])
        change = mine[0]["change"]
        lines.append(f"  id {record_id}: {change}")
        for row in mine:
            if change == CREATED:
                lines.append(f"    {row['field']}: {_shown(row['after'])}")
            else:
                lines.append(
                    f"    {row['field']}: {_shown(row['before'])} -> {_shown(row['after'])}"
                )
    return lines


@dataclass(frozen=True)
class ScanEstimate:
    """What a read of one Delta table would scan, of what its snapshot holds."""

    table: str
    files: int
    bytes: int
    total_files: int
    total_bytes: int

    def describe(self) -> str:
        if self.total_files == 0:
            return f"{self.table}: no files (absent or empty)"
        return (
            f"{self.table}: {self.files} of {self.total_files} files, "
            f"{_size(self.bytes)} of {_size(self.total_bytes)}"
        )


def scan_estimate(table: str, selection: DataFrame, whole: DataFrame) -> ScanEstimate:
    """The files of ``table`` that ``selection`` would read, and their bytes, of those of
    ``whole`` (the pinned snapshot, unfiltered).

    Both come from the optimized plan, nothing is read or listed: each scan of ``table`` in it
    is a Delta file index that Delta's ``PrepareDeltaScan`` rule has already cut down by
    partition pruning and data skipping (min/max statistics), holding those files and their
    sizes from the Delta log. A join (a targeted read's ids) skips nothing: it reads every file.
    Several scans of the table in one plan count each file once (their bytes: the largest scan's
    when it holds every file read, else their sum, an upper bound).
    """
    chosen, chosen_bytes = _delta_scans(selection, table)
    everything, total_bytes = _delta_scans(whole, table)
    return ScanEstimate(
        table=table,
        files=len(chosen),
        bytes=chosen_bytes,
        total_files=len(everything),
        total_bytes=total_bytes,
    )


def describe_scans(reads: Mapping[str, tuple[DataFrame, DataFrame]]) -> list[str]:
    """One line per Delta input: ``{table path: (what the run selects, the whole snapshot)}``."""
    return [
        "would read " + scan_estimate(table, selection, whole).describe()
        for table, (selection, whole) in reads.items()
    ]


def describe_batches(batches: Sequence[DataFrame]) -> list[str]:
    """What each batch of a source read scans, from its physical plan's leaf nodes (a JDBC
    relation with its partitions and pushed filters, an RDD, a local relation)."""
    lines = []
    for number, batch in enumerate(batches, start=1):
        plan = batch._jdf.queryExecution().executedPlan()
        leaves = plan.collectLeaves()
        scans = [str(leaves.apply(i).simpleString(_PLAN_TEXT)) for i in range(leaves.length())]
        lines.append(f"batch {number}/{len(batches)}: " + "; ".join(scans))
    return lines


#: How much of a plan node's text a line shows.
_PLAN_TEXT = 400


def _as_text(column: Column, kind: DataType) -> Column:
    if isinstance(kind, StructType | ArrayType | MapType):
        return F.to_json(column)
    return column.cast("string")


def _shown(value: str | None) -> str:
    return "null" if value is None else value


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _delta_scans(frame: DataFrame, table: str) -> tuple[set[str], int]:
    """The files (as paths) the optimized plan of ``frame`` scans in ``table``, and their bytes."""
    wanted = _path_of(table).rstrip("/")
    scans: list[tuple[set[str], int]] = []
    leaves = frame._jdf.queryExecution().optimizedPlan().collectLeaves()
    for at in range(leaves.length()):
        leaf = leaves.apply(at)
        if leaf.getClass().getSimpleName() != "LogicalRelation":
            continue  # a local relation: an absent table read as an empty frame
        relation = leaf.relation()
        if relation.getClass().getSimpleName() != "HadoopFsRelation":
            continue
        index = relation.location()
        roots = index.rootPaths()
        if not any(
            _path_of(str(roots.apply(i).toString())).rstrip("/") == wanted
            for i in range(roots.length())
        ):
            continue
        files = {_path_of(str(uri)) for uri in index.inputFiles()}
        scans.append((files, int(index.sizeInBytes())))
    if not scans:
        return set(), 0
    files = set().union(*(f for f, _ in scans))
    covering = [size for f, size in scans if f == files]
    return files, max(covering) if covering else sum(size for _, size in scans)


def _path_of(location: str) -> str:
    """A location's path alone, without scheme or bucket: ``s3://b/x/y`` -> ``/x/y``."""
    return unquote(urlsplit(location).path)
