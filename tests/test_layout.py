"""What a normalize run reads and rewrites, from Spark's scan metrics and Delta's commit metrics.

The warehouse here is laid out so that the right answer is known exactly: ``raw/customers``
holds ``DAYS`` daily batches of ``PER_DAY`` new customers, one data file each (batch ``d`` is
ids ``100 + 10 d`` to ``109 + 10 d``, ingested at noon of day ``d``), and the first full
normalize writes ``normalized/customers`` sorted by id into files of ``PER_DAY`` rows, so file
``d`` of either table holds exactly the ids of day ``d``. A replay of a few ids, a since replay
of the newest day and a BAU run after a few changes must each read only the files that hold
what they touch, and the BAU MERGE must rewrite none of the rows it leaves alone: the layout
and the pruning predicates cannot regress without one of these tests failing.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_replay import run_ingest_job
from glue_replay.pipelines import normalize as normalize_module
from glue_replay.pipelines.normalize import run_normalize
from glue_replay.request import JobArguments
from glue_replay.runtime.scans import ScanRecorder, table_key
from glue_replay.tables import Warehouse, append_once
from glue_replay.tables.layout import MaintenanceError, maintain, maintain_stage
from glue_replay.tables.schemas import RAW_PARTITIONS, RAW_SCHEMA
from glue_replay.testing import job_arguments
from glue_replay_examples.customers import CUSTOMERS, PIPELINE

DAYS, PER_DAY = 8, 10
FIRST_DAY = datetime(2026, 3, 1, tzinfo=UTC)
#: A since replay from D reads raw ingested from D minus this on: less than a day, so the
#: newest day's batch alone.
ENTITY = replace(CUSTOMERS, source_clock_skew=timedelta(hours=1))


def _noon(day: int) -> datetime:
    return FIRST_DAY + timedelta(days=day, hours=12)


def _ids_of(day: int) -> list[str]:
    return [str(100 + 10 * day + i) for i in range(PER_DAY)]


def _payload(customer: str, updated: datetime, points: int) -> str:
    stamp = updated.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return json.dumps(
        {
            "id": customer,
            "email": f"c{customer}@example.com",
            "first_name": "Ann",
            "last_name": f"Lee {customer}",
            "phone": "+44 20 7946 0000",
            "status": "active",
            "loyalty_points": str(points),
            "address": {
                "line1": "1 Main St",
                "line2": None,
                "city": "Leeds",
                "postcode": "ls1 1aa",
                "country": "gb",
            },
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": stamp,
        }
    )


def _append_batch(
    spark: SparkSession,
    raw: str,
    day: int,
    customers: list[str],
    points: int,
    batch: str = "",
    malformed: frozenset[str] = frozenset(),
) -> None:
    """One ingest batch as one data file: the customers updated an hour before noon of ``day``
    (those in ``malformed`` with a payload that is not JSON)."""
    updated, ingested = _noon(day) - timedelta(hours=1), _noon(day)
    request = f"batch-{day}{batch}"
    rows = [
        (
            c,
            "{not json" if c in malformed else _payload(c, updated, points),
            updated,
            ingested,
            request,
            "bau",
            request,
            ingested.date(),
        )
        for c in customers
    ]
    append_once(
        spark.createDataFrame(rows, RAW_SCHEMA).coalesce(1),
        raw,
        RAW_SCHEMA,
        f"raw-{request}",
        RAW_PARTITIONS,
    )


def _arguments(warehouse: str, request_id: str, today: date, **fields: str) -> JobArguments:
    return job_arguments(warehouse, request_id, ENTITY, today, job_name="layout", **fields)


@dataclass(frozen=True)
class Laid:
    warehouse: str
    raw: str
    normalized: str
    outbox: str


@pytest.fixture(scope="module")
def template(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse after the batches and the first full normalize, built once."""
    root = tmp_path_factory.mktemp("layout") / "warehouse"
    tables = Warehouse(str(root))
    raw = tables.raw(ENTITY.name)
    for day in range(DAYS):
        _append_batch(spark, raw, day, _ids_of(day), points=day)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(normalize_module, "NORMALIZED_ROWS_PER_FILE", PER_DAY)
        full = _arguments(str(root), "full-1", _noon(DAYS).date(), replay_mode="full")
        assert run_normalize(spark, full, ENTITY, lambda: _noon(DAYS)).status == "succeeded"
    normalized = tables.normalized(ENTITY.name)
    assert (
        _file_ids(spark, raw)
        == _file_ids(spark, normalized)
        == [_ids_of(day) for day in range(DAYS)]
    )
    return root


@pytest.fixture
def laid(template: Path, tmp_path: Path) -> Laid:
    """A copy of the template for one test (Delta's log names its files relative to the table)."""
    root = tmp_path / "warehouse"
    shutil.copytree(template, root)
    tables = Warehouse(str(root))
    return Laid(
        str(root),
        tables.raw(ENTITY.name),
        tables.normalized(ENTITY.name),
        tables.outbox_of(ENTITY.name),
    )


def _file_ids(spark: SparkSession, path: str) -> list[list[str]]:
    """The ids each data file holds, files in id order: the layout the tests rely on."""
    rows = (
        spark.read.format("delta")
        .load(path)
        .groupBy(F.input_file_name().alias("file"))
        .agg(F.sort_array(F.collect_list("id")).alias("ids"))
        .collect()
    )
    return sorted(list(row["ids"]) for row in rows)


def _events(spark: SparkSession, laid: Laid, request: str) -> DataFrame:
    return (
        spark.read.format("delta")
        .load(laid.outbox)
        .where(F.col("request_id") == request)
        .select("aggregate_id", "event_type")
    )


def _expected_events(spark: SparkSession, rows: list[tuple[str, str]]) -> DataFrame:
    return spark.createDataFrame(rows, "aggregate_id string, event_type string")


def test_a_targeted_replay_of_two_ids_reads_the_two_files_of_each_table_that_hold_them(
    spark: SparkSession, laid: Laid
) -> None:
    wanted = ["123", "167"]  # days 2 and 6
    request = _arguments(
        laid.warehouse, "t-1", _noon(DAYS).date(), replay_mode="targeted", ids=",".join(wanted)
    )
    with ScanRecorder(spark) as scans:
        run = run_normalize(spark, request, ENTITY, lambda: _noon(DAYS) + timedelta(hours=1))
    assert (run.status, run.rows_read, run.rows_outboxed) == ("succeeded", 2, 2)
    assert_df_equality(
        _events(spark, laid, "t-1"),
        _expected_events(spark, [("123", "customer.updated"), ("167", "customer.updated")]),
        ignore_row_order=True,
    )
    assert (scans.files_read(laid.raw), scans.files_read(laid.normalized)) == (2, 2)


def test_a_since_replay_of_the_newest_day_reads_its_batch_and_the_file_of_its_ids(
    spark: SparkSession, laid: Laid
) -> None:
    newest = DAYS - 1
    since = (FIRST_DAY + timedelta(days=newest)).date().isoformat()
    request = _arguments(laid.warehouse, "s-1", _noon(DAYS).date(), replay_mode="since", date=since)
    with ScanRecorder(spark) as scans:
        run = run_normalize(spark, request, ENTITY, lambda: _noon(DAYS) + timedelta(hours=1))
    assert (run.status, run.rows_read, run.rows_outboxed) == ("succeeded", PER_DAY, PER_DAY)
    assert_df_equality(
        _events(spark, laid, "s-1"),
        _expected_events(spark, [(c, "customer.updated") for c in _ids_of(newest)]),
        ignore_row_order=True,
    )
    assert (scans.files_read(laid.raw), scans.files_read(laid.normalized)) == (1, 1)


def test_a_bau_merge_of_a_few_changed_ids_rewrites_no_row_it_leaves_alone(
    spark: SparkSession, laid: Laid
) -> None:
    changed, new = ["115", "142", "163"], "999"  # days 1, 4 and 6; and a customer new today
    _append_batch(spark, laid.raw, DAYS, [*changed, new], points=500)
    before = DeltaTable.forPath(spark, laid.normalized).history(1).first()
    assert before is not None
    # The first BAU looks back a day from its clock: today's batch only.
    request = _arguments(laid.warehouse, "bau-1", _noon(DAYS).date())
    with ScanRecorder(spark) as scans:
        run = run_normalize(spark, request, ENTITY, lambda: _noon(DAYS) + timedelta(hours=1))
    assert (run.status, run.rows_read, run.rows_written, run.rows_outboxed) == (
        "succeeded",
        4,
        4,
        4,
    )
    merge = DeltaTable.forPath(spark, laid.normalized).history(1).first()
    assert merge is not None and merge["version"] == before["version"] + 1
    assert merge["operation"] == "MERGE"
    metrics = {k: int(v) for k, v in merge["operationMetrics"].items() if k.startswith("numTarget")}
    assert {k: metrics[k] for k in ("numTargetRowsCopied", "numTargetFilesRemoved")} == {
        "numTargetRowsCopied": 0,
        "numTargetFilesRemoved": 0,
    }
    assert (metrics["numTargetRowsUpdated"], metrics["numTargetRowsInserted"]) == (3, 1)
    # Every query of the run is named in the Spark UI after the run's phase it belongs to.
    phase = re.compile(r"(Delta: )?normalize customers bau-1: \S")
    assert [d for d in scans.descriptions if not phase.match(d)] == []
    # Read: today's raw batch, and of normalized, in every scan that read a file, the three
    # files holding the changed ids ("999" sorts after every file's ids). The queries that reuse
    # the cached changes show the scan that filled the cache as reading 0 files.
    assert scans.files_read(laid.raw) == 1
    normalized = table_key(laid.normalized)
    assert {s.files for s in scans.scans if s.table == normalized} - {0} == {3}
    points = (
        spark.read.format("delta")
        .load(laid.normalized)
        .where(F.col("loyalty_points") == 500)
        .select("id", "loyalty_points")
    )
    assert_df_equality(
        points,
        spark.createDataFrame([(c, 500) for c in [*changed, new]], "id string, loyalty_points int"),
        ignore_row_order=True,
    )


def test_maintenance_sorts_normalized_again_and_joins_the_small_files_keeping_every_row(
    spark: SparkSession, laid: Laid
) -> None:
    # A BAU run adds a file of the changed rows, whose ids span the key range ("115".."999"),
    # and masks the rows they replace: a targeted replay of "123" would read that file too.
    _append_batch(spark, laid.raw, DAYS, ["115", "142", "163", "999"], points=500)
    bau = _arguments(laid.warehouse, "bau-1", _noon(DAYS).date())
    assert run_normalize(spark, bau, ENTITY, lambda: _noon(DAYS) + timedelta(hours=1)).status == (
        "succeeded"
    )
    tables = Warehouse(laid.warehouse)
    contents = {
        path: spark.read.format("delta").load(path).collect()
        for path in (laid.raw, laid.normalized, tables.runs_of("normalize", ENTITY.name))
    }
    with pytest.raises(MaintenanceError, match="vacuum_retention 1 day, 0:00:00: accepted"):
        maintain(spark, tables, ENTITY, vacuum_retention=timedelta(days=1))

    done = maintain(
        spark,
        tables,
        ENTITY,
        today=(FIRST_DAY + timedelta(days=DAYS)).date(),
        rows_per_file=PER_DAY,
        say=lambda _: None,
    )

    # Every table holds the same rows as before.
    for path, rows in contents.items():
        after = spark.read.format("delta").load(path)
        assert_df_equality(after, spark.createDataFrame(rows, after.schema), ignore_row_order=True)
    steps = {(Path(m.table).relative_to(laid.warehouse).as_posix(), m.action) for m in done}
    assert steps == {
        ("raw/customers", f"clustered by id, 0 of {DAYS} days"),  # each day's ids: its own
        ("normalized/customers", "sorted by id"),
        ("runs/normalize/customers", "compaction"),
    }  # no ingest ran here (raw was written directly) and nothing was quarantined: no tables
    # Normalized is sorted again: each file holds a range of ids no other file overlaps, and a
    # targeted replay of one id reads one file of it.
    files = _file_ids(spark, laid.normalized)
    assert len(files) == 9  # 81 rows, 10 a file
    ranges = sorted((ids[0], ids[-1]) for ids in files)
    assert all(end < start for (_, end), (start, _) in itertools.pairwise(ranges))
    request = _arguments(
        laid.warehouse, "t-9", _noon(DAYS).date(), replay_mode="targeted", ids="123"
    )
    with ScanRecorder(spark) as scans:
        run = run_normalize(spark, request, ENTITY, lambda: _noon(DAYS) + timedelta(hours=2))
    assert (run.status, run.rows_read) == ("succeeded", 1)
    assert scans.files_read(laid.normalized) == 1


def test_maintenance_clusters_closed_days_of_raw_by_id_so_a_replay_reads_a_file_a_day(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in real life, every day's batches hold versions of ids from the whole range: a
    # targeted replay of one id would read every raw file.
    tables = Warehouse(str(tmp_path / "warehouse"))
    raw, customers = tables.raw(ENTITY.name), [str(c) for c in range(100, 160)]
    closed, today = 3, (FIRST_DAY + timedelta(days=3)).date()
    for day in range(closed + 1):
        # Two versions of every id a day: rows of one id that clustering split over two
        # files would make the day's files overlap.
        for batch, points in (("a", day), ("b", 10 + day)):
            _append_batch(spark, raw, day, customers, points=points, batch=batch)
    before = spark.read.format("delta").load(raw).collect()
    files_of_a_day = len(_file_ids(spark, raw)) // (closed + 1)
    assert files_of_a_day == 2
    # Files of a little less than a third of a day: ZORDER cuts each day into three.
    day_bytes = DeltaTable.forPath(spark, raw).detail().first()["sizeInBytes"] / (closed + 1)

    def cluster() -> str:
        (done,) = [
            m
            for m in maintain_stage(
                spark, tables, ENTITY, "ingest", today=today, raw_file_bytes=int(day_bytes / 3.5),
                say=lambda _: None,
            )
            if m.table == raw
        ]  # fmt: skip
        return done.action

    # Few z-order ranges, so that several ids share one: split over two files (as Delta's
    # default noise against skew does), they would make the day look unclustered again.
    ranges_setting = "spark.databricks.io.skipping.mdc.rangeId.max"
    spark.conf.set(ranges_setting, "4")
    try:
        assert cluster() == f"clustered by id, {closed} of {closed} days"
    finally:
        spark.conf.unset(ranges_setting)

    after = spark.read.format("delta").load(raw)
    assert_df_equality(after, spark.createDataFrame(before, after.schema), ignore_row_order=True)
    by_day = (
        after.groupBy("ingest_date", F.input_file_name().alias("file"))
        .agg(F.min("id").alias("low"), F.max("id").alias("high"))
        .collect()
    )
    for day in range(closed + 1):
        ranges = sorted(
            (r["low"], r["high"])
            for r in by_day
            if r["ingest_date"] == (FIRST_DAY + timedelta(days=day)).date()
        )
        if day < closed:  # three files of ids no other file of the day overlaps
            assert len(ranges) == 3
            assert all(end < start for (_, end), (start, _) in itertools.pairwise(ranges))
        else:  # today's batches are left as they are
            assert ranges == [("100", "159"), ("100", "159")]
    # Laid out once: the next maintenance rewrites nothing.
    assert cluster() == f"clustered by id, 0 of {closed} days"
    # As the ingest job runs it, on the schedule Terraform gives it (--maintenance true): its own
    # tables, a line each. Its files are the default 8 MB, which joins each of these tiny days
    # into one file again (a day smaller than the target is one file, sorted by id).
    argv = ["glue_jobs/ingest_customers.py", "--maintenance", "true", "--warehouse", tables.root]
    capsys.readouterr()
    assert run_ingest_job(argv, PIPELINE, spark=spark, clock=lambda: _noon(closed)) == 0
    printed = capsys.readouterr().out.splitlines()
    # (No ingest ran here, so there is no ingest ledger or quarantine to compact.)
    assert [line.split(", ")[:3] for line in printed] == [
        ["ingest_customers: maintenance of customers ingest tables"],
        [
            f"ingest_customers: maintained {raw}: clustered by id",
            f"{closed} of {closed} days",
            f"{3 * closed} files removed",
        ],
    ]
    assert len(_file_ids(spark, raw)) == closed + 2

    request = _arguments(str(tables.root), "t-1", today, replay_mode="targeted", ids="123")
    with ScanRecorder(spark) as scans:
        run = run_normalize(spark, request, ENTITY, lambda: _noon(closed) + timedelta(hours=1))
    assert (run.status, run.rows_read, run.rows_outboxed) == ("succeeded", 2 * (closed + 1), 1)
    # One file of each closed day, and both of today's batches (each spans "100".."159").
    assert scans.files_read(raw) == closed + 2


def test_a_bau_run_looks_only_at_the_quarantine_files_of_its_window(
    spark: SparkSession, laid: Laid
) -> None:
    """Each BAU run quarantines a bad row of its own day's batch; the second run does not read
    the file the first one added, while a row it sees again is still quarantined only once."""
    quarantine = Warehouse(laid.warehouse).quarantine_of("normalize", ENTITY.name)
    for day, bad in ((DAYS, "901"), (DAYS + 1, "902")):
        _append_batch(spark, laid.raw, day, ["115", bad], points=day, malformed=frozenset({bad}))
        request = _arguments(laid.warehouse, f"bau-{day}", _noon(day).date())
        now = _noon(day) + timedelta(hours=1)
        with ScanRecorder(spark) as scans:
            run = run_normalize(spark, request, ENTITY, lambda: now)  # noqa: B023 - called here
        assert (run.status, run.rows_read, run.rows_quarantined) == ("succeeded", 2, 1)
    # The second run's window (from the first one's watermark) holds day DAYS + 1 only: the
    # quarantine's one file then (day DAYS's bad row) is skipped by its ingest times.
    assert scans.files_read(quarantine) == 0
    # A since replay from day DAYS sees both bad rows again: neither is added twice.
    since = _noon(DAYS).date().isoformat()
    request = _arguments(
        laid.warehouse, "s-1", _noon(DAYS + 1).date(), replay_mode="since", date=since
    )
    with ScanRecorder(spark) as scans:
        run = run_normalize(spark, request, ENTITY, lambda: _noon(DAYS + 1) + timedelta(hours=2))
    assert (run.status, run.rows_read, run.rows_quarantined) == ("succeeded", 4, 2)
    assert scans.files_read(quarantine) == 2
    assert_df_equality(
        spark.read.format("delta").load(quarantine).select("id", "raw_ingested_at", "request_id"),
        spark.createDataFrame(
            [("901", _noon(DAYS).replace(tzinfo=None), f"bau-{DAYS}"),
             ("902", _noon(DAYS + 1).replace(tzinfo=None), f"bau-{DAYS + 1}")],
            "id string, raw_ingested_at timestamp, request_id string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )  # fmt: skip
