"""Dry runs against the sample API on loopback: normalize's field-level diff and what each stage
would read, while the ledger row stays the only write.

The API's data is anchored at ``NOW`` and the pipeline's clock is a :class:`SteppingClock`, as in
``test_pipelines``, so every value below is known in advance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from glue_replay import run_ingest_job, run_normalize_job
from glue_replay.arguments import parse_job_arguments
from glue_replay.pipelines.dry_run import DIFF_SCHEMA, describe_batches
from glue_replay.pipelines.normalize import NormalizePreview, preview_normalize
from glue_replay.sources.base import source_schema
from glue_replay.tables import RunStatus, Warehouse
from glue_replay.tables.delta import table_version
from glue_replay_devtools.sample_api import SampleApiServer
from glue_replay_examples.customers import CUSTOMERS, PIPELINE
from sample_data import NOW

#: ``HH:MM:SS [stage entity] `` before every line a stage prints.
PREFIX = re.compile(r"^\d\d:\d\d:\d\d \[(ingest|normalize) customers\] ")


class SteppingClock:
    """The pipeline's and the API's clock: stands still until the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Jobs:
    """The job entry points, run as ``glue_jobs/*.py`` would, in the suite's Spark session."""

    def __init__(
        self, spark: SparkSession, warehouse: str, api: SampleApiServer, clock: SteppingClock
    ) -> None:
        self.spark, self.clock = spark, clock
        self.common = ["--warehouse", warehouse, "--source_url", api.url]

    def ingest(self, *arguments: str) -> int:
        argv = ["glue_jobs/ingest_customers.py", *arguments, *self.common]
        return run_ingest_job(argv, PIPELINE, spark=self.spark, clock=self.clock)

    def normalize(self, *arguments: str) -> int:
        argv = ["glue_jobs/normalize_customers.py", *arguments, *self.common]
        return run_normalize_job(argv, PIPELINE, spark=self.spark, clock=self.clock)

    def preview(self, *arguments: str) -> NormalizePreview:
        argv = ["glue_jobs/normalize_customers.py", *arguments, *self.common]
        args = parse_job_arguments(argv, ids=CUSTOMERS.ids, today=self.clock().date())
        return preview_normalize(self.spark, args, CUSTOMERS, self.clock)

    def both(self, *arguments: str) -> None:
        assert self.ingest(*arguments) == 0
        self.clock.advance(minutes=1)
        assert self.normalize(*arguments) == 0


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(NOW)


@pytest.fixture
def api(clock: SteppingClock) -> Iterator[SampleApiServer]:
    with SampleApiServer(records=60, now=NOW, clock=clock) as server:
        yield server


@pytest.fixture
def jobs(spark: SparkSession, warehouse: str, api: SampleApiServer, clock: SteppingClock) -> Jobs:
    return Jobs(spark, warehouse, api, clock)


def printed(out: str) -> list[str]:
    """The stages' lines without their time and stage prefix."""
    return [PREFIX.sub("", line) for line in out.splitlines() if PREFIX.match(line)]


def block(lines: list[str], first: str, length: int) -> list[str]:
    """``length`` lines from the one starting with ``first``."""
    starts = [n for n, line in enumerate(lines) if line.startswith(first)]
    assert starts, f"no line starts with {first!r} in {lines}"
    return lines[starts[0] : starts[0] + length]


def table_files(table: str) -> list[str]:
    """The files of a Delta table's latest snapshot, as local paths (read with delta-rs)."""
    return [uri.removeprefix("file://") for uri in DeltaTable(table).file_uris()]


def _of(chosen: list[str], everything: list[str], table: str) -> str:
    """``n of m files, size of size``, the sizes from the files themselves."""

    def size(files: list[str]) -> str:
        return _human(sum(Path(f).stat().st_size for f in files))

    return f"{len(chosen)} of {len(everything)} files, {size(chosen)} of {size(everything)}"


def _human(count: int) -> str:
    return f"{count} B" if count < 1024 else f"{count / 1024:.1f} KiB"


def data_table_versions(spark: SparkSession, tables: Warehouse) -> dict[str, int | None]:
    paths = [
        tables.raw("customers"),
        tables.normalized("customers"),
        tables.outbox_of("customers"),
        tables.quarantine_of("ingest", "customers"),
        tables.quarantine_of("normalize", "customers"),
    ]
    return {path: table_version(spark, path) for path in paths}


def test_a_bau_dry_run_shows_each_changed_field_before_and_after(
    spark: SparkSession,
    jobs: Jobs,
    api: SampleApiServer,
    clock: SteppingClock,
    warehouse: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tables = Warehouse(warehouse)
    jobs.both("--replay_mode", "full", "--request_id", "full-1")
    full_files = set(table_files(tables.raw("customers")))
    clock.advance(hours=1)
    assert api.mutate(ids=["5", "12"]) == ["5", "12"]
    clock.advance(minutes=1)
    assert jobs.ingest("--request_id", "bau-1") == 0
    clock.advance(minutes=1)
    versions = data_table_versions(spark, tables)
    capsys.readouterr()

    assert jobs.normalize("--request_id", "dry-1", "--dry_run", "true") == 0
    lines = printed(capsys.readouterr().out)
    preview = jobs.preview("--request_id", "dry-2")

    # The mutation flips the status, adds 10 loyalty points and swaps the email's case (which
    # the normalized, lower-case email does not show); the version moves to the mutation time.
    expected = spark.createDataFrame(
        [
            ("12", "updated", "status", "inactive", "active"),
            ("12", "updated", "loyalty_points", "2628", "2638"),
            ("12", "updated", "updated_at", "2023-08-14 23:25:59.037", "2026-06-01 13:01:00"),
            ("5", "updated", "status", "active", "inactive"),
            ("5", "updated", "loyalty_points", "2066", "2076"),
            ("5", "updated", "updated_at", "2024-07-18 03:35:17", "2026-06-01 13:01:00"),
        ],
        DIFF_SCHEMA,
    )
    assert_df_equality(preview.diff, expected, ignore_row_order=True, ignore_nullable=True)
    assert block(lines, "dry run: records:", 11) == [
        "dry run: records: 0 created, 2 updated, 55 unchanged",
        "dry run: changed fields of 2 updated records: loyalty_points: 2, status: 2, updated_at: 2",
        "dry run: sample of 2 of 2 changed records:",
        "  id 12: updated",
        "    status: inactive -> active",
        "    loyalty_points: 2628 -> 2638",
        "    updated_at: 2023-08-14 23:25:59.037 -> 2026-06-01 13:01:00",
        "  id 5: updated",
        "    status: active -> inactive",
        "    loyalty_points: 2066 -> 2076",
        "    updated_at: 2024-07-18 03:35:17 -> 2026-06-01 13:01:00",
    ]
    assert preview.run.status is RunStatus.DRY_RUN
    # Its ledger row is its only write: no data table moved, no request id claimed.
    assert data_table_versions(spark, tables) == versions
    assert sorted(p.name for p in Path(warehouse, "requests").iterdir()) == [
        "bau-1.json",
        "full-1.json",
    ]

    # After a real BAU, the next one's window starts at its watermark minus the overlap: Delta
    # skips, by their ingested_at statistics, the raw files of the full ingest.
    assert jobs.normalize("--request_id", "bau-1") == 0
    clock.advance(hours=2)
    assert api.mutate(ids=["7"]) == ["7"]
    clock.advance(minutes=1)
    raw_path = tables.raw("customers")
    assert jobs.ingest("--request_id", "bau-2") == 0
    clock.advance(minutes=1)
    capsys.readouterr()
    assert jobs.normalize("--request_id", "dry-3", "--dry_run", "true") == 0
    everything = table_files(raw_path)
    # The files the second BAU ingest added, and those of the first (ingested at 13:02, after
    # the window's start, 13:03 - 10 minutes); not the full ingest's (12:00).
    bau_files = [f for f in everything if f not in full_files]
    assert len(bau_files) == 2
    lines = printed(capsys.readouterr().out)
    assert f"dry run: would read {raw_path}: " + _of(bau_files, everything, raw_path) in lines


def test_a_targeted_dry_run_shows_created_records_and_ingest_shows_its_source_read(
    spark: SparkSession,
    jobs: Jobs,
    api: SampleApiServer,
    clock: SteppingClock,
    warehouse: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tables = Warehouse(warehouse)
    # A full ingest's dry run: the read's time slices, cut as the real read would cut them.
    assert jobs.ingest("--replay_mode", "full", "--dry_run", "true", "--request_id", "d-0") == 0
    endpoint = f"{api.url}/customers"
    assert block(printed(capsys.readouterr().out), "dry run: would read", 3) == [
        f"dry run: would read {endpoint} in 1 batch",
        f"  GET {endpoint} by updated_since/updated_before: 7 slices in 1 batch of up to "
        "16 slices, each paged 200 records a page",
        "  batch 1/1: slices 0-6, updated in [the beginning, 2026-06-01T12:00:00+00:00)",
    ]
    assert jobs.ingest("--replay_mode", "full", "--request_id", "ing-1") == 0
    clock.advance(minutes=1)
    assert jobs.normalize("--replay_mode", "targeted", "--ids", "1,2", "--request_id", "t-1") == 0
    clock.advance(hours=1)
    assert api.mutate(ids=["2"]) == ["2"]
    clock.advance(minutes=1)
    targeted = ("--replay_mode", "targeted", "--ids", "2,3")
    capsys.readouterr()
    assert jobs.ingest(*targeted, "--dry_run", "true", "--request_id", "d-1") == 0
    assert block(printed(capsys.readouterr().out), "dry run: would read", 3) == [
        f"dry run: would read {endpoint} in 1 batch",
        f"  GET {endpoint} by ids (up to 100): 1 slice in 1 batch of up to 16 slices, "
        "each paged 200 records a page",
        "  batch 1/1: slice 0, 2 ids",
    ]
    assert jobs.ingest(*targeted, "--request_id", "t-2") == 0
    clock.advance(minutes=1)
    versions = data_table_versions(spark, tables)
    capsys.readouterr()

    preview = jobs.preview(*targeted, "--request_id", "t-2")

    expected = spark.createDataFrame(
        [
            ("2", "updated", "status", "suspended", "active"),
            ("2", "updated", "loyalty_points", "1441", "1451"),
            ("2", "updated", "updated_at", "2025-02-21 08:42:52.09", "2026-06-01 13:01:00"),
            ("3", "created", "email", None, "liam.muller3@mail.example.com"),
            ("3", "created", "first_name", None, "Liam"),
            ("3", "created", "last_name", None, "Müller"),
            ("3", "created", "phone", None, "+44 20 7946 0003"),
            ("3", "created", "status", None, "active"),
            ("3", "created", "loyalty_points", None, "4000"),
            ("3", "created", "address_line1", None, "160 High Street"),
            ("3", "created", "address_city", None, "London"),
            ("3", "created", "address_postcode", None, "SW1A 1AA"),
            ("3", "created", "address_country", None, "GB"),
            ("3", "created", "created_at", None, "2023-02-28 18:48:47"),
            ("3", "created", "updated_at", None, "2023-07-21 17:53:35"),
        ],
        DIFF_SCHEMA,
    )
    assert_df_equality(preview.diff, expected, ignore_row_order=True, ignore_nullable=True)
    lines = printed(capsys.readouterr().out)
    raw_path = tables.raw("customers")
    raw_files = table_files(raw_path)
    assert block(lines, "dry run: records:", 21) == [
        "dry run: records: 1 created, 1 updated, 0 unchanged",
        "dry run: changed fields of 1 updated records: loyalty_points: 1, status: 1, updated_at: 1",
        "dry run: sample of 2 of 2 changed records:",
        "  id 2: updated",
        "    status: suspended -> active",
        "    loyalty_points: 1441 -> 1451",
        "    updated_at: 2025-02-21 08:42:52.09 -> 2026-06-01 13:01:00",
        "  id 3: created",
        "    email: liam.muller3@mail.example.com",
        "    first_name: Liam",
        "    last_name: Müller",
        "    phone: +44 20 7946 0003",
        "    status: active",
        "    loyalty_points: 4000",
        "    address_line1: 160 High Street",
        "    address_city: London",
        "    address_postcode: SW1A 1AA",
        "    address_country: GB",
        "    created_at: 2023-02-28 18:48:47",
        "    updated_at: 2023-07-21 17:53:35",
        # A targeted selection is a join on the ids: no file can be skipped.
        f"dry run: would read {raw_path}: " + _of(raw_files, raw_files, raw_path),
    ]
    assert data_table_versions(spark, tables) == versions


def test_a_source_that_does_not_describe_its_read_is_shown_by_its_batches_plans(
    spark: SparkSession,
) -> None:
    batches = [
        spark.createDataFrame([("1", "2026-01-01", "{}")], source_schema()),
        spark.createDataFrame([("2", "2026-01-02", "{}")], source_schema()).where("id = '2'"),
    ]
    lines = describe_batches(batches)
    assert [re.sub(r"#\d+", "#n", line) for line in lines] == [
        "batch 1/2: Scan ExistingRDD[id#n,updated_at#n,payload#n]",
        "batch 2/2: Scan ExistingRDD[id#n,updated_at#n,payload#n]",
    ]
