"""ScanRecorder: the data files and bytes Spark read per table, against the tables' own files.

Every table here is written as ``PARTS`` files of consecutive ids (``spark.range`` with
``numPartitions``: file ``i`` holds ids ``[i * size, (i + 1) * size)``), so which files a filter
lets Delta skip by their min/max stats is known exactly; the expected sizes are the files' own,
from the table's Delta log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from glue_replay.runtime import scans as scans_module
from glue_replay.runtime.phases import JOB_DESCRIPTION, labelled
from glue_replay.runtime.scans import (
    LOCATION_LENGTH_SETTING,
    ScanMetricsError,
    ScanRecorder,
    TableScans,
    parse_location,
    rendered_number,
    table_key,
)

PARTS = 4
IDS_PER_FILE = 250


def _write_table(spark: SparkSession, path: Path, ids_per_file: int = IDS_PER_FILE) -> str:
    """A Delta table of ``PARTS`` files, file ``i`` holding ids ``i * ids_per_file`` onwards,
    each with a 64-character payload (so a file is a few KiB)."""
    rows = spark.range(0, PARTS * ids_per_file, 1, numPartitions=PARTS).select(
        "id", F.sha2(F.col("id").cast("string"), 256).alias("payload")
    )
    rows.write.format("delta").save(str(path))
    return str(path)


def _file_sizes(path: str) -> dict[int, int]:
    """The table's data files from its Delta log: the smallest id of each file -> its size."""
    sizes: dict[int, int] = {}
    for commit in sorted((Path(path) / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            add = json.loads(line).get("add")
            if add is not None:
                sizes[json.loads(add["stats"])["minValues"]["id"]] = add["size"]
    assert len(sizes) == PARTS
    return sizes


def _rendered(size: int) -> tuple[float, float]:
    """The bytes Spark's one-decimal rendering of ``size`` may read back as: exact below
    2 KiB, else within 0.05 of the unit shown (the largest unit ``size`` is twice of)."""
    unit = 1
    while size >= 2 * unit * 1024:
        unit *= 1024
    slack = 0.0 if unit == 1 else 0.05 * unit
    return size - slack, size + slack


def _assert_bytes(read: int, *scanned: int) -> None:
    """``read`` is what Spark rendered for scans of ``scanned`` bytes each, added up."""
    bounds = [_rendered(size) for size in scanned]
    low, high = sum(b[0] for b in bounds), sum(b[1] for b in bounds)
    assert low <= read <= high, f"read {read} bytes, the scans' files hold {sum(scanned)}"


def test_a_filtered_read_counts_the_files_delta_did_not_skip(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = _write_table(spark, tmp_path / "events")
    sizes = _file_sizes(path)
    table = spark.read.format("delta").load(path)

    with ScanRecorder(spark) as first_file:
        assert table.where(F.col("id") < 100).count() == 100
    with ScanRecorder(spark) as two_files:
        assert table.where(F.col("id").between(200, 300)).count() == 101
    with ScanRecorder(spark) as every_file:
        assert table.agg(F.max("payload")).first() is not None
    with ScanRecorder(spark) as counted:
        assert table.count() == PARTS * IDS_PER_FILE

    assert first_file.files_read(path) == 1
    _assert_bytes(first_file.bytes_read(path), sizes[0])
    assert two_files.files_read(path) == 2
    # One scan: its bytes are rendered once, for the two files together.
    _assert_bytes(two_files.bytes_read(path), sizes[0] + sizes[IDS_PER_FILE])
    assert every_file.files_read(path) == PARTS
    total = DeltaTable.forPath(spark, path).detail().first()["sizeInBytes"]  # type: ignore[index]
    assert total == sum(sizes.values())
    _assert_bytes(every_file.bytes_read(path), total)
    # Delta answers a plain count from the row counts in its log: no data file is read.
    assert counted.by_table() == {}
    # One scan each, of the table only: Delta's reads of its _delta_log are not counted.
    assert [set(r.by_table()) for r in (first_file, two_files, every_file)] == [{path}] * 3
    assert first_file.by_table()[path].scans == 1
    assert first_file.scans[0].file_index == "PreparedDeltaFileIndex"


def test_bytes_are_exact_under_2_kib(spark: SparkSession, tmp_path: Path) -> None:
    """Spark renders a scan's bytes to a decimal of a unit from 2 KiB on: below, to the byte."""
    path = _write_table(spark, tmp_path / "small", ids_per_file=5)
    sizes = _file_sizes(path)
    assert sizes[15] < 2048

    with ScanRecorder(spark) as scans:
        spark.read.format("delta").load(path).where(F.col("id") >= 15).collect()

    assert scans.by_table() == {path: TableScans(files=1, bytes=sizes[15], scans=1)}


def test_every_spelling_of_a_local_path_is_one_table(spark: SparkSession, tmp_path: Path) -> None:
    path = _write_table(spark, tmp_path / "spelled")
    with ScanRecorder(spark) as scans:
        spark.read.format("delta").load(f"file://{path}/").where(F.col("id") < 10).count()

    assert [scans.files_read(p) for p in (path, f"file:{path}", f"file://{path}/")] == [1, 1, 1]
    assert scans.files_read(str(tmp_path / "other")) == 0


def test_a_join_counts_each_table_with_adaptive_execution(
    spark: SparkSession, tmp_path: Path
) -> None:
    left = _write_table(spark, tmp_path / "left")
    right = _write_table(spark, tmp_path / "right")
    adaptive = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "true")
    try:
        with ScanRecorder(spark) as scans:
            few = spark.read.format("delta").load(left).where(F.col("id") < 300)
            every = spark.read.format("delta").load(right).withColumnRenamed("payload", "other")
            assert few.join(every.hint("shuffle_hash"), on="id", how="inner").count() == 300
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", adaptive)

    # Spark infers id < 300 for the other side of the join too: two files of each.
    assert {table: (t.files, t.scans) for table, t in scans.by_table().items()} == {
        left: (2, 1),
        right: (2, 1),
    }


def test_a_merge_counts_delta_s_own_scans_of_its_target(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A MERGE reads its target twice: every file its condition cannot rule out, to find the
    files with matches, then those files again, to rewrite them."""
    changes = spark.createDataFrame([(7, "changed"), (8, "changed")], "id long, payload string")

    def merge(path: str, condition: str) -> ScanRecorder:
        with ScanRecorder(spark) as scans:
            (
                DeltaTable.forPath(spark, path)
                .alias("t")
                .merge(changes.alias("s"), condition)
                .whenMatchedUpdateAll()
                .execute()
            )
        return scans

    unpruned_path = _write_table(spark, tmp_path / "unpruned")
    pruned_path = _write_table(spark, tmp_path / "pruned")
    unpruned_sizes, pruned_sizes = _file_sizes(unpruned_path), _file_sizes(pruned_path)
    unpruned = merge(unpruned_path, "t.id = s.id")
    pruned = merge(pruned_path, f"t.id = s.id AND t.id < {IDS_PER_FILE}")

    # Every file to find the matches, then the one holding ids 7 and 8 to rewrite it.
    assert unpruned.by_table() == {
        unpruned_path: TableScans(PARTS + 1, unpruned.bytes_read(unpruned_path), 2)
    }
    _assert_bytes(
        unpruned.bytes_read(unpruned_path), sum(unpruned_sizes.values()), unpruned_sizes[0]
    )
    assert {s.file_index for s in unpruned.scans} == {"TahoeBatchFileIndex"}
    # A predicate on the target alone lets Delta skip the other files before the join.
    assert pruned.by_table() == {pruned_path: TableScans(2, pruned.bytes_read(pruned_path), 2)}
    _assert_bytes(pruned.bytes_read(pruned_path), pruned_sizes[0], pruned_sizes[0])


def test_a_long_path_is_whole_and_the_setting_restored(spark: SparkSession, tmp_path: Path) -> None:
    deep = tmp_path / ("a_folder_name_of_forty_characters_long__" * 4) / "table"
    path = _write_table(spark, deep)
    assert len(path) > 160
    before = spark.conf.get(LOCATION_LENGTH_SETTING)

    with ScanRecorder(spark) as scans:
        spark.read.format("delta").load(path).where(F.col("id") >= 3 * IDS_PER_FILE).count()

    assert scans.by_table() == {path: TableScans(1, scans.bytes_read(path), 1)}
    assert spark.conf.get(LOCATION_LENGTH_SETTING) == before


def test_it_counts_the_sql_executions_the_block_started(spark: SparkSession) -> None:
    with ScanRecorder(spark) as nothing:
        pass
    with ScanRecorder(spark) as two:
        assert spark.range(10).where(F.col("id") > 3).count() == 6
        assert len(spark.range(3).collect()) == 3

    assert (nothing.executions, two.executions) == (0, 2)


def test_each_execution_is_described_by_the_phase_it_ran_in(spark: SparkSession) -> None:
    before = spark.sparkContext.getLocalProperty(JOB_DESCRIPTION)
    with ScanRecorder(spark) as recorded:
        with labelled(spark, "load"):
            assert spark.range(4).count() == 4
            with labelled(spark, "load: the second pass"):
                assert spark.range(5).count() == 5
            assert spark.range(6).count() == 6
        assert len(spark.range(7).collect()) == 7

    described = recorded.descriptions
    assert described[:3] == ("load", "load: the second pass", "load")
    assert "test_scans.py" in described[3]  # unlabelled: named after its call site
    assert spark.sparkContext.getLocalProperty(JOB_DESCRIPTION) == before


def test_results_are_there_after_the_block_also_when_it_raised(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = _write_table(spark, tmp_path / "raised")
    recorder = ScanRecorder(spark)

    def fail_inside() -> None:
        with recorder:
            spark.read.format("delta").load(path).where(F.col("id") < 10).count()
            with pytest.raises(ScanMetricsError, match="once the `with ScanRecorder"):
                recorder.by_table()
            with pytest.raises(ScanMetricsError, match="once the `with ScanRecorder"):
                assert recorder.executions
            with pytest.raises(ScanMetricsError, match="once the `with ScanRecorder"):
                assert recorder.descriptions
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_inside()
    assert recorder.files_read(path) == 1
    with pytest.raises(ScanMetricsError, match="records one block"), recorder:
        pass


class _TrimmingStore:
    """Spark's SQL status store as ``_last_execution_id`` sees it, trimming its oldest
    executions on its own thread right after the first count, as the real one does once it
    holds more than ``spark.sql.ui.retainedExecutions``."""

    class _Seq(list[Any]):
        def size(self) -> int:
            return len(self)

        def apply(self, index: int) -> Any:
            return self[index]

    @dataclass(frozen=True)
    class _Execution:
        id: int

        def executionId(self) -> int:  # noqa: N802 - Spark's name
            return self.id

    def __init__(self, ids: range, trimmed: int) -> None:
        self.ids, self.trimmed, self.counts = list(ids), trimmed, 0

    def executionsCount(self) -> int:  # noqa: N802 - Spark's name
        count = len(self.ids)
        self.counts += 1
        if self.counts == 1:
            del self.ids[: self.trimmed]
        return count

    def executionsList(self, offset: int, length: int) -> _Seq:  # noqa: N802 - Spark's name
        return self._Seq(self._Execution(i) for i in self.ids[offset : offset + length])


def test_the_newest_execution_is_read_again_when_the_store_trims_itself_between_the_reads() -> None:
    store = _TrimmingStore(range(40, 1041), trimmed=100)

    assert (scans_module._last_execution_id(store), store.counts) == (1040, 2)
    assert scans_module._last_execution_id(_TrimmingStore(range(0), trimmed=0)) == -1


def test_parse_location_of_delta_file_indexes() -> None:
    one = (
        "FileScan parquet [id#1L] Batched: true, DataFilters: [], Format: Parquet, "
        "Location: PreparedDeltaFileIndex(1 paths)[s3a://lake/prefix/raw/invoices], "
        "PartitionFilters: [], PushedFilters: [], ReadSchema: struct<id:bigint>"
    )
    several = (
        "FileScan json [a#2] Location: InMemoryFileIndex(2 paths)[file:/w/a, file:/w/b], "
        "PartitionFilters: []"
    )
    assert parse_location(one) == ("PreparedDeltaFileIndex", ("s3a://lake/prefix/raw/invoices",))
    assert parse_location(several) == ("InMemoryFileIndex", ("file:/w/a", "file:/w/b"))
    with pytest.raises(ScanMetricsError, match="shortened or redacted"):
        parse_location(
            "FileScan parquet [id#1L] Batched: true, DataFilters: [(id#1L < 150)], Format: "
            "Parquet, Location: PreparedDeltaFileIndex(1 paths)[file:/tmp/a_long_folder_name..., "
            "PartitionFilters: [], PushedFilters: [LessThan(id,150)], ReadSchema: struct<id:bigint>"
        )
    with pytest.raises(ScanMetricsError, match="is not 'Index"):
        parse_location("FileScan text [value#3] Location: somewhere else, PartitionFilters: []")
    with pytest.raises(ScanMetricsError, match="no Location"):
        parse_location("Scan ExistingRDD Delta Table State #0")


def test_table_key_spells_each_table_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert {
        path: table_key(path)
        for path in (
            "file:/w/raw/invoices",
            "file:///w/raw/invoices/",
            "file://localhost/w/raw/invoices",
            "/w/raw//invoices/",
            "s3a://lake/raw/invoices/",
            "S3N://lake/raw/invoices",
            "s3://lake/raw/invoices",
            "warehouse/raw/invoices",
        )
    } == {
        "file:/w/raw/invoices": "/w/raw/invoices",
        "file:///w/raw/invoices/": "/w/raw/invoices",
        "file://localhost/w/raw/invoices": "/w/raw/invoices",
        "/w/raw//invoices/": "/w/raw/invoices",
        "s3a://lake/raw/invoices/": "s3://lake/raw/invoices",
        "S3N://lake/raw/invoices": "s3://lake/raw/invoices",
        "s3://lake/raw/invoices": "s3://lake/raw/invoices",
        "warehouse/raw/invoices": f"{tmp_path}/warehouse/raw/invoices",
    }


def test_rendered_number_reads_spark_s_metric_text() -> None:
    assert {
        text: rendered_number(text)
        for text in (
            "0",
            "1,234,567",
            "2002.0 B",
            "2.5 KiB",
            "7.8 MiB",
            "1.0 GiB",
            "total (min, med, max (stageId: taskId))\n3.0 MiB (1.0 MiB, 1.0 MiB, 1.0 MiB (...))",
        )
    } == {
        "0": 0,
        "1,234,567": 1_234_567,
        "2002.0 B": 2002,
        "2.5 KiB": 2560,
        "7.8 MiB": 7.8 * 1024**2,
        "1.0 GiB": 1024**3,
        "total (min, med, max (stageId: taskId))\n3.0 MiB (1.0 MiB, 1.0 MiB, 1.0 MiB (...))": (
            3 * 1024**2
        ),
    }
    with pytest.raises(ScanMetricsError, match="unknown size unit"):
        rendered_number("3.0 Parsecs")
