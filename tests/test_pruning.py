"""Key predicates Delta's data skipping understands: which keys they keep, which files they read.

The table here is ``FILES`` files of consecutive zero-padded ids (file ``i`` holds ids
``i * PER_FILE`` to ``(i + 1) * PER_FILE - 1``), so which files a predicate lets Delta skip by
their min/max statistics is known exactly, and Spark's scan metrics say what was read.
"""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_replay.runtime.scans import ScanRecorder
from glue_replay.tables import pruning
from glue_replay.tables.pruning import KeyScope, exact_key_predicate, key_predicate, key_ranges

FILES = 10
PER_FILE = 20


def _ids(*numbers: int) -> list[str]:
    return [f"{n:04d}" for n in numbers]


@pytest.fixture(scope="module")
def table(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("pruning") / "keyed")
    rows = spark.range(0, FILES * PER_FILE, 1, numPartitions=FILES).select(
        F.lpad(F.col("id").cast("string"), 4, "0").alias("id"), F.col("id").alias("n")
    )
    rows.write.format("delta").save(path)
    return path


def test_key_ranges_cut_the_sorted_keys_into_runs_of_neighbours() -> None:
    assert key_ranges(["9", "7", "42", "7", None]) == [("42", "42"), ("7", "7"), ("9", "9")]
    assert key_ranges(list(range(10, 0, -1)), max_ranges=3) == [(1, 4), (5, 8), (9, 10)]
    assert key_ranges([]) == []
    with pytest.raises(ValueError, match="max_ranges"):
        key_ranges(["1"], max_ranges=0)


def _read(spark: SparkSession, table: str, condition: object) -> tuple[DataFrame, int]:
    with ScanRecorder(spark) as scans:
        rows = spark.read.format("delta").load(table).where(condition).select("id")
        kept = spark.createDataFrame(rows.collect(), "id string")
    return kept, scans.files_read(table)


def test_an_or_of_keys_reads_only_the_files_that_hold_them(spark: SparkSession, table: str) -> None:
    wanted = _ids(3, 95, 187)  # in files 0, 4 and 9
    kept, files = _read(spark, table, key_predicate(F.col("id"), wanted))
    assert_df_equality(kept, spark.createDataFrame([(i,) for i in wanted], "id string"),
                       ignore_row_order=True)  # fmt: skip
    assert files == 3
    # What a hand-written IN list gets from Delta 3.3: one range, min..max of the list.
    kept, files = _read(spark, table, F.col("id").isin(*wanted))
    assert files == FILES


def test_many_keys_become_ranges_that_still_skip_the_files_between(
    spark: SparkSession, table: str
) -> None:
    wanted = _ids(*range(20, 40), *range(160, 180))  # files 1 and 8, whole
    kept, files = _read(spark, table, key_predicate(F.col("id"), wanted, max_ranges=2))
    assert_df_equality(kept, spark.createDataFrame([(i,) for i in wanted], "id string"),
                       ignore_row_order=True)  # fmt: skip
    assert files == 2
    # Two ranges over keys that are not neighbours: a superset (the caller joins on the keys).
    kept, files = _read(spark, table, key_predicate(F.col("id"), _ids(5, 45, 150, 190), 2))
    assert_df_equality(
        kept,
        spark.createDataFrame([(i,) for i in _ids(*range(5, 46), *range(150, 191))], "id string"),
        ignore_row_order=True,
    )
    assert files == 6  # 0005..0045 spans files 0-2, 0150..0190 files 7-9


def test_an_exact_predicate_is_one_equality_per_key_and_none_beyond_max_ranges(
    spark: SparkSession, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pruning, "MAX_RANGES", 2)
    exact = exact_key_predicate(F.col("id"), _ids(3, 187, 3))  # two distinct keys
    assert exact is not None
    kept, files = _read(spark, table, exact)
    assert_df_equality(kept, spark.createDataFrame([(i,) for i in _ids(3, 187)], "id string"),
                       ignore_row_order=True)  # fmt: skip
    assert files == 2
    # Three keys in two runs would be a superset: no exact predicate.
    assert exact_key_predicate(F.col("id"), _ids(3, 95, 187)) is None


def test_a_key_scope_names_few_keys_and_only_joins_with_many(
    spark: SparkSession, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import glue_replay.tables.pruning as pruning

    rows = spark.createDataFrame([(i,) for i in _ids(3, 95, 95, 187)] + [(None,)], "id string")
    scope = KeyScope.of(rows, "id")
    assert (scope.count, sorted(scope.values or ())) == (3, _ids(3, 95, 187))
    with ScanRecorder(spark) as scans:
        kept = scope.restrict(spark.read.format("delta").load(table), "id").select("id")
        assert_df_equality(kept, spark.createDataFrame([(i,) for i in _ids(3, 95, 187)],
                           "id string"), ignore_row_order=True, ignore_nullable=True)  # fmt: skip
    assert scans.files_read(table) == 3

    monkeypatch.setattr(pruning, "PRUNING_KEYS", 2)
    many = KeyScope.of(rows, "id")
    assert (many.count, many.values, many.target_predicate(F.col("id"))) == (3, None, None)
    with ScanRecorder(spark) as scans:
        kept = many.restrict(spark.read.format("delta").load(table), "id").select("id")
        assert_df_equality(kept, spark.createDataFrame([(i,) for i in _ids(3, 95, 187)],
                           "id string"), ignore_row_order=True, ignore_nullable=True)  # fmt: skip
    assert scans.files_read(table) == FILES

    monkeypatch.setattr(pruning, "BROADCAST_KEYS", 2)
    assert KeyScope.of(rows, "id").frame is None


def test_a_counted_key_scope_collects_the_keys_only_when_it_may_name_them(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    import glue_replay.tables.pruning as pruning

    rows = spark.createDataFrame([("7",), ("42",), ("42",), (None,)], "id string")
    few = KeyScope.counted(rows, "id", 2)
    assert (few.count, sorted(few.values or ())) == (2, ["42", "7"])

    monkeypatch.setattr(pruning, "PRUNING_KEYS", 1)
    many = KeyScope.counted(rows, "id", 2)
    assert (many.count, many.values, many.frame is not None) == (2, None, True)
    monkeypatch.setattr(pruning, "BROADCAST_KEYS", 1)
    assert KeyScope.counted(rows, "id", 2).frame is None
