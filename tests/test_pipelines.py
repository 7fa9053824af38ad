"""End to end: the job entry points against the sample API on loopback and a Delta warehouse.

The API's data is anchored at ``NOW`` (60 customers; ids 20, 40 and 60 are malformed) and the
pipeline's clock is a :class:`SteppingClock` the test moves by hand, so every timestamp below
is known in advance.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_replay import run_ingest_job, run_normalize_job
from glue_replay.pipelines import normalize as normalize_module
from glue_replay.request import ReplayMode, ReplayRequest
from glue_replay.tables import (
    PriorRuns,
    RunRecord,
    RunsLedger,
    RunStatus,
    Warehouse,
    read_outbox,
    read_quarantine,
    read_runs,
)
from glue_replay.tables.delta import table_exists, table_version
from glue_replay_devtools.sample_api import SampleApiServer
from glue_replay_examples.customers import PIPELINE
from glue_replay_examples.customers.transforms import CUSTOMER_SCHEMA
from sample_data import ALL_IDS, NOW

REPO = Path(__file__).resolve().parents[1]
MALFORMED = {"20", "40", "60"}
VALID_IDS = [i for i in ALL_IDS if i not in MALFORMED]


def T(hours: float = 0) -> datetime:  # noqa: N802 - reads as a time literal in expectations
    """``NOW + hours`` as the naive UTC datetime Spark hands back."""
    return (NOW + timedelta(hours=hours)).replace(tzinfo=None)


class SteppingClock:
    """The pipeline's and the API's clock: stands still until the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Jobs:
    """Runs the job entry points as ``glue_jobs/*.py`` would, in the suite's Spark session."""

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

    def both(self, *arguments: str) -> None:
        """Ingest then normalize one minute later, as the workflow cascade does."""
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


@pytest.fixture
def tables(warehouse: str) -> Warehouse:
    return Warehouse(warehouse)


def backfill(spark: SparkSession, root: Path, records: int, request_id: str) -> Path:
    """A warehouse at ``root`` after a full backfill of the sample API's first ``records``
    records (ingest at ``NOW``, normalize a minute later), made by the job entry points: a
    module's ``backfilled_template``, built once and copied for each test (``backfilled``)."""
    clock = SteppingClock(NOW)
    with SampleApiServer(records=records, now=NOW, clock=clock) as server:
        jobs = Jobs(spark, str(root), server, clock)
        jobs.both("--replay_mode", "full", "--request_id", request_id)
    return root


@pytest.fixture(scope="module")
def backfilled_template(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """After the backfill ``full-1`` of the 60 records: six tests start from it."""
    return backfill(spark, tmp_path_factory.mktemp("full-1") / "warehouse", 60, "full-1")


@pytest.fixture
def backfilled(backfilled_template: Path, warehouse: str, clock: SteppingClock) -> None:
    """The test's warehouse as its module's backfill left it (a copy: Delta's log names its
    files relative to the table), its clock a minute after ``NOW``, where the backfill's
    normalize ran. The test's own API serves the same records: the backfill only read them.
    Only the ledger's ``arguments`` tell the difference: they name the backfill's API address."""
    shutil.copytree(backfilled_template, warehouse)
    clock.advance(minutes=1)


def read(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)


def events(spark: SparkSession, tables: Warehouse, request_id: str) -> DataFrame:
    return (
        read_outbox(spark, tables)
        .where(F.col("request_id") == request_id)
        .select("aggregate_id", "event_type", "replay_mode")
    )


def event_rows(ids: list[str], event_type: str, mode: str) -> list[tuple[str, str, str]]:
    return [(i, f"customer.{event_type}", mode) for i in ids]


EVENT_COLUMNS = "aggregate_id string, event_type string, replay_mode string"
LEDGER_COLUMNS = (
    "stage string, replay_mode string, status string, rows_read long, rows_written long, "
    "rows_outboxed long, rows_quarantined long, missing_ids array<string>, "
    "window_start timestamp, window_end timestamp, watermark timestamp, rows_unchanged long"
)


def ledger(spark: SparkSession, tables: Warehouse, request_id: str) -> DataFrame:
    return (
        read_runs(spark, tables)
        .where(F.col("request_id") == request_id)
        .orderBy("started_at", "stage")
        .select(*[c.split()[0] for c in LEDGER_COLUMNS.split(", ")])
    )


def assert_events(
    spark: SparkSession, tables: Warehouse, request_id: str, expected: list[tuple[str, str, str]]
) -> None:
    assert_df_equality(
        events(spark, tables, request_id),
        spark.createDataFrame(expected, EVENT_COLUMNS),
        ignore_row_order=True,
        ignore_nullable=True,
    )


@pytest.mark.usefixtures("backfilled")
def test_full_replay_normalizes_every_record_and_emits_one_event_each(
    spark: SparkSession, tables: Warehouse
) -> None:
    """What the backfill ``full-1`` (``backfilled_template``) wrote to every table."""
    raw = read(spark, tables.raw("customers")).select(
        "id", "request_id", "replay_mode", "ingested_at"
    )
    assert_df_equality(
        raw,
        spark.createDataFrame(
            [(i, "full-1", "full", T()) for i in ALL_IDS],
            "id string, request_id string, replay_mode string, ingested_at timestamp",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )

    normalized = read(spark, tables.normalized("customers")).where(F.col("id").isin("1", "2", "3"))
    expected = spark.createDataFrame(
        [
            ("1", "amira.smith1@example.org", "Amira", "Smith", "+31 20 555 0001", "suspended",
             4249, "153 Damrak", "c/o Reception", "Utrecht", "3511 AA", "NL",
             datetime(2024, 5, 3, 19, 5, 42), datetime(2025, 3, 3, 0, 7, 13)),
            ("2", "aoife.obrien2@example.net", "Aoife", "O'Brien", "+353 1 555 0002", "suspended",
             1441, None, None, None, None, None,
             datetime(2024, 8, 4, 7, 57, 25, 568000), datetime(2025, 2, 21, 8, 42, 52, 90000)),
            ("3", "liam.muller3@mail.example.com", "Liam", "Müller", "+44 20 7946 0003", "active",
             4000, "160 High Street", None, "London", "SW1A 1AA", "GB",
             datetime(2023, 2, 28, 18, 48, 47), datetime(2023, 7, 21, 17, 53, 35)),
        ],
        CUSTOMER_SCHEMA,
    )  # fmt: skip
    assert_df_equality(
        normalized.drop("content_hash", "raw_ingested_at", "request_id", "replay_mode")
        .drop("normalized_at", "is_deleted")
        .orderBy("id"),
        expected.orderBy("id"),
        ignore_nullable=True,
        ignore_column_order=False,
    )
    metadata = read(spark, tables.normalized("customers")).select(
        "raw_ingested_at", "request_id", "replay_mode", "normalized_at", "is_deleted"
    )
    assert metadata.distinct().collect() == [(T(), "full-1", "full", T(1 / 60), False)]

    assert_events(spark, tables, "full-1", event_rows(VALID_IDS, "created", "full"))
    quarantine = read_quarantine(spark, tables, "customers").select("id", "reason", "stage")
    assert_df_equality(
        quarantine,
        spark.createDataFrame(
            [
                ("20", "email is not an address", "normalize"),
                ("40", "updated_at is missing or not a timestamp", "normalize"),
                ("60", "loyalty_points is not an integer", "normalize"),
            ],
            "id string, reason string, stage string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert_df_equality(
        ledger(spark, tables, "full-1"),
        spark.createDataFrame(
            [
                ("ingest", "full", "succeeded", 60, 60, 0, 0, [], None, None, None, 0),
                # 60 raw rows = 57 written + 0 unchanged + 3 quarantined.
                ("normalize", "full", "succeeded", 60, 57, 57, 3, [], None, None, None, 0),
            ],
            LEDGER_COLUMNS,
        ),
        ignore_nullable=True,
    )


@pytest.mark.usefixtures("backfilled")
def test_bau_picks_up_exactly_the_changes_and_only_bau_moves_the_watermark(
    spark: SparkSession,
    jobs: Jobs,
    tables: Warehouse,
    api: SampleApiServer,
    clock: SteppingClock,
) -> None:
    quarantine = tables.quarantine_of("normalize", "customers")
    quarantine_version = table_version(spark, quarantine)
    clock.advance(hours=1)
    assert api.mutate(ids=["6", "7"]) == ["6", "7"]  # at NOW + 1h01
    clock.advance(hours=1)  # NOW + 2h01
    jobs.both("--request_id", "bau-1")
    # BAU found only raw rows the full run quarantined already: no (empty) quarantine commit.
    assert table_version(spark, quarantine) == quarantine_version

    first_window_start, first_end = T(2 + 1 / 60 - 24), T(2 + 1 / 60)
    assert_df_equality(
        ledger(spark, tables, "bau-1"),
        spark.createDataFrame(
            [
                # The very first BAU run looks back 24 hours; its window end is the watermark.
                ("ingest", "bau", "succeeded", 2, 2, 0, 0, [],
                 first_window_start, first_end, first_end, 0),
                # normalize's window is on ingest time: the full backfill's rows are in it too,
                # but only the two changed records differ from what is normalized: 62 raw rows
                # = 2 written + 57 unchanged + 3 quarantined.
                ("normalize", "bau", "succeeded", 62, 2, 2, 3, [],
                 T(2 + 2 / 60 - 24), T(2 + 2 / 60), T(2 + 2 / 60), 57),
            ],
            LEDGER_COLUMNS,
        ),
        ignore_nullable=True,
    )  # fmt: skip
    assert_events(spark, tables, "bau-1", event_rows(["6", "7"], "updated", "bau"))
    changed = (
        read(spark, tables.normalized("customers"))
        .where(F.col("id").isin("6", "7"))
        .select("id", "status", "loyalty_points", "updated_at", "request_id")
    )
    assert_df_equality(
        changed,
        spark.createDataFrame(
            [("6", "active", 2435, T(1 + 1 / 60), "bau-1"),
             ("7", "inactive", 304, T(1 + 1 / 60), "bau-1")],
            "id string, status string, loyalty_points int, updated_at timestamp, "
            "request_id string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )  # fmt: skip
    # The quarantine already holds the three malformed raw rows: BAU does not add them again.
    assert read_quarantine(spark, tables, "customers").count() == 3

    # A replay in between does not move the watermark ...
    clock.advance(minutes=10)
    jobs.both("--replay_mode", "since", "--date", "2026-01-01", "--request_id", "since-1")
    runs = RunsLedger(spark, tables.runs_of("ingest", "customers"))
    assert runs.last_watermark("ingest", "customers") == NOW + timedelta(hours=2, minutes=1)

    # ... so the next BAU run starts at the last BAU watermark minus the 10 minute overlap.
    clock.advance(minutes=20)
    api.mutate(ids=["8"])  # NOW + 2h33
    clock.advance(minutes=30)  # NOW + 3h03
    jobs.both("--request_id", "bau-2")
    ingest_row = ledger(spark, tables, "bau-2").where(F.col("stage") == "ingest")
    assert ingest_row.select("rows_read", "window_start", "window_end", "watermark").collect() == [
        (1, T(2 + 1 / 60 - 1 / 6), T(3 + 3 / 60), T(3 + 3 / 60))
    ]
    assert_events(spark, tables, "bau-2", event_rows(["8"], "updated", "bau"))


def test_since_replays_the_window_and_re_emits_unchanged_records(
    spark: SparkSession, jobs: Jobs, tables: Warehouse, clock: SteppingClock
) -> None:
    window = ("--replay_mode", "since", "--date", "2026-01-01", "--until", "2026-03-15")
    jobs.both(*window, "--request_id", "since-1")
    in_window = ["21", "23", "27", "32", "42"]
    assert_events(spark, tables, "since-1", event_rows(in_window, "created", "since"))
    assert (
        ledger(spark, tables, "since-1").select("window_start", "window_end").collect()
        == [(datetime(2026, 1, 1), datetime(2026, 3, 15))] * 2
    )

    # Replaying unchanged records re-publishes them: that is what a replay is for.
    clock.advance(hours=1)
    jobs.both(*window, "--request_id", "since-2")
    assert_events(spark, tables, "since-2", event_rows(in_window, "updated", "since"))
    assert (
        RunsLedger(spark, tables.runs_of("ingest", "customers")).last_watermark(
            "ingest", "customers"
        )
        is None
    )


@pytest.mark.usefixtures("backfilled")
def test_targeted_replay_from_a_csv_reports_missing_ids(
    spark: SparkSession, jobs: Jobs, tables: Warehouse, tmp_path: Path, clock: SteppingClock
) -> None:
    ids_file = tmp_path / "ids.csv"
    # A one-column export whose header is not "id": named with --id_column, never guessed.
    ids_file.write_text("customer_id\r\n2\r\n999\r\n1\r\n2\r\n")
    clock.advance(hours=1)
    targeted = ["--replay_mode", "targeted", "--ids_file", str(ids_file)]
    jobs.both(*targeted, "--id_column", "customer_id", "--request_id", "t-1")

    assert_events(spark, tables, "t-1", event_rows(["1", "2"], "updated", "targeted"))
    assert ledger(spark, tables, "t-1").select(
        "stage", "rows_read", "rows_outboxed", "missing_ids"
    ).collect() == [("ingest", 2, 0, ["999"]), ("normalize", 4, 2, ["999"])]
    raw = read(spark, tables.raw("customers")).where(F.col("request_id") == "t-1")
    assert sorted(r["id"] for r in raw.collect()) == ["1", "2"]


def test_the_same_request_twice_writes_nothing_twice(
    spark: SparkSession, jobs: Jobs, tables: Warehouse, clock: SteppingClock
) -> None:
    targeted = ("--replay_mode", "targeted", "--ids", "3,4", "--request_id", "t-1")
    jobs.both(*targeted, "--JOB_RUN_ID", "jr_1")
    versions = {path: _version(spark, path) for path in _data_tables(tables)}
    clock.advance(minutes=5)
    jobs.both(*targeted, "--JOB_RUN_ID", "jr_2")

    assert {path: _version(spark, path) for path in _data_tables(tables)} == versions
    assert_events(spark, tables, "t-1", event_rows(["3", "4"], "created", "targeted"))
    runs = read_runs(spark, tables).where(F.col("request_id") == "t-1")
    assert runs.orderBy("started_at", "stage").select("stage", "run_id", "note").collect() == [
        ("ingest", "jr_1", None),
        ("normalize", "jr_1", None),
        ("ingest", "jr_2", "request already succeeded in run jr_1; nothing written"),
        ("normalize", "jr_2", "request already succeeded in run jr_1; nothing written"),
    ]


def test_a_run_killed_between_outbox_and_merge_is_finished_by_its_retry(
    spark: SparkSession,
    jobs: Jobs,
    tables: Warehouse,
    clock: SteppingClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = ("--replay_mode", "targeted", "--ids", "5,6", "--request_id", "t-1")
    assert jobs.ingest(*request) == 0

    def killed(*_: object) -> None:
        raise RuntimeError("killed before the MERGE")

    monkeypatch.setattr(normalize_module, "_merge_latest", killed)
    assert jobs.normalize(*request, "--JOB_RUN_ID", "jr_1") == 1
    failed = read_runs(spark, tables).where(F.col("run_id") == "jr_1")
    assert failed.select("status", "error").collect() == [
        ("failed", "RuntimeError: killed before the MERGE")
    ]
    assert_events(spark, tables, "t-1", event_rows(["5", "6"], "created", "targeted"))
    assert not table_exists(spark, tables.normalized("customers"))

    monkeypatch.undo()
    clock.advance(minutes=5)
    assert jobs.normalize(*request, "--JOB_RUN_ID", "jr_1_attempt_1") == 0
    assert_events(spark, tables, "t-1", event_rows(["5", "6"], "created", "targeted"))
    normalized = read(spark, tables.normalized("customers")).select("id", "request_id")
    assert sorted(normalized.collect()) == [("5", "t-1"), ("6", "t-1")]


@pytest.mark.usefixtures("backfilled")
def test_a_bau_after_one_killed_between_outbox_and_merge_publishes_each_change_once(
    spark: SparkSession,
    jobs: Jobs,
    tables: Warehouse,
    api: SampleApiServer,
    clock: SteppingClock,
) -> None:
    clock.advance(hours=1)
    assert api.mutate(ids=["6", "7", "8"]) == ["6", "7", "8"]  # at NOW + 1h01
    clock.advance(hours=1)
    assert jobs.ingest("--request_id", "bau-1") == 0
    clock.advance(minutes=1)  # NOW + 2h02

    # BAU normalize bau-1 in its own process, SIGKILLed after its outbox commit, before its MERGE.
    killed = subprocess.run(
        [sys.executable, "tests/normalize_killed_before_merge.py", clock.now.isoformat(),
         "glue_jobs/normalize_customers.py", "--request_id", "bau-1", "--JOB_RUN_ID", "jr_killed",
         *jobs.common],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert_events(spark, tables, "bau-1", event_rows(["6", "7", "8"], "updated", "bau"))
    unmerged = read(spark, tables.normalized("customers")).where(F.col("id").isin("6", "7", "8"))
    assert sorted(unmerged.select("id", "request_id").collect()) == [
        ("6", "full-1"),
        ("7", "full-1"),
        ("8", "full-1"),
    ]

    # The next scheduled BAU, a new request, runs before any retry of bau-1. Its normalize has
    # no BAU watermark yet, so its first window (24 hours of ingest time) holds bau-1's rows and
    # it decides the same three changes: same ids as bau-1's events, so nothing is appended.
    clock.advance(hours=1)
    jobs.both("--request_id", "bau-2")
    bau_events = (
        read_outbox(spark, tables)
        .where(F.col("replay_mode") == "bau")
        .select("event_id", "aggregate_id", "event_type", "request_id")
    )
    assert_df_equality(
        bau_events,
        spark.createDataFrame(
            [
                ("1f1d8aea-d4bb-6544-cd7f-9475fda3f856", "6", "customer.updated", "bau-1"),
                ("d6bae2da-091b-2edf-71d9-80f6bf5a330e", "7", "customer.updated", "bau-1"),
                ("576fb722-f4a2-8ed8-749f-1db9be01e818", "8", "customer.updated", "bau-1"),
            ],
            "event_id string, aggregate_id string, event_type string, request_id string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    merged = (
        read(spark, tables.normalized("customers"))
        .where(F.col("id").isin("6", "7", "8"))
        .select("id", "updated_at", "request_id")
    )
    assert_df_equality(
        merged,
        spark.createDataFrame(
            [(i, T(1 + 1 / 60), "bau-2") for i in ("6", "7", "8")],
            "id string, updated_at timestamp, request_id string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    normalize_run = ledger(spark, tables, "bau-2").where(F.col("stage") == "normalize")
    assert normalize_run.select("rows_written", "rows_outboxed").collect() == [(3, 0)]


@pytest.mark.usefixtures("backfilled")
def test_a_since_request_quarantines_what_it_ingested_whose_time_does_not_parse(
    spark: SparkSession, jobs: Jobs, tables: Warehouse, clock: SteppingClock
) -> None:
    clock.advance(hours=1)
    # Record 40 says it was updated "last tuesday". The API filters on its own clock, so it
    # returns 40 for August 2024 (with 9, 47 and 59), but raw's source_updated_at is null.
    window = ("--replay_mode", "since", "--date", "2024-08-01", "--until", "2024-09-01")
    jobs.both(*window, "--request_id", "since-aug")

    quarantined = (
        read_quarantine(spark, tables, "customers")
        .where(F.col("request_id") == "since-aug")
        .select("id", "reason", "source_updated_at", "stage", "replay_mode")
    )
    assert_df_equality(
        quarantined,
        spark.createDataFrame(
            [("40", "updated_at is missing or not a timestamp", None, "normalize", "since")],
            "id string, reason string, source_updated_at timestamp, stage string, "
            "replay_mode string",
        ),
        ignore_nullable=True,
    )
    assert_events(spark, tables, "since-aug", event_rows(["47", "59", "9"], "updated", "since"))
    start, end = datetime(2024, 8, 1), datetime(2024, 9, 1)
    assert_df_equality(
        ledger(spark, tables, "since-aug"),
        spark.createDataFrame(
            [
                # 4 records read = 4 written to raw + 0 quarantined.
                ("ingest", "since", "succeeded", 4, 4, 0, 0, [], start, end, None, 0),
                # 7 raw rows: 9, 47 and 59 from the backfill and again from this request (same
                # version and content: 6 unchanged) and this request's 40 (quarantined).
                ("normalize", "since", "succeeded", 7, 0, 3, 1, [], start, end, None, 6),
            ],
            LEDGER_COLUMNS,
        ),
        ignore_nullable=True,
    )  # fmt: skip


def _started(run_id: str, request_id: str, stage: str = "normalize", **fields: Any) -> RunRecord:
    """A customers ledger row as a targeted run starts it; ``fields`` override any column."""
    values: dict[str, Any] = {
        "run_id": run_id,
        "request_id": request_id,
        "job_name": f"{stage}_customers",
        "stage": stage,
        "entity": "customers",
        "replay_mode": "targeted",
        "status": RunStatus.RUNNING,
        "requested_by": "glue",
        "arguments": "{}",
        "request_fingerprint": "f",
        "id_count": 0,
        "window_start": None,
        "window_end": None,
        "started_at": NOW,
    }
    return RunRecord(**values | fields)


def test_an_attempt_that_died_is_marked_abandoned_by_the_next_attempt(
    spark: SparkSession, jobs: Jobs, tables: Warehouse, clock: SteppingClock
) -> None:
    """A kill leaves the attempt's row ``running`` (its start, no finish): the finding was that
    it said so forever. The next attempt of the same request marks it ``abandoned``."""
    request = ("--replay_mode", "targeted", "--ids", "5", "--request_id", "t-9")
    ledger_path = tables.runs_of("ingest", "customers")
    killed = _started(
        "jr_1",
        "t-9",
        "ingest",
        request_fingerprint=ReplayRequest(
            mode=ReplayMode.TARGETED, request_id="t-9", ids=("5",)
        ).fingerprint(),
        id_count=1,
    )
    RunsLedger(spark, ledger_path).start(killed)  # what a kill right after the start leaves

    clock.advance(minutes=30)
    assert jobs.ingest(*request, "--JOB_RUN_ID", "jr_1_attempt_1") == 0
    rows = read(spark, ledger_path).orderBy("started_at")
    assert_df_equality(
        rows.select("run_id", "status", "finished_at", "note"),
        spark.createDataFrame(
            [
                (
                    "jr_1",
                    "abandoned",
                    datetime(2026, 6, 1, 12, 30),
                    "abandoned: run jr_1_attempt_1 of the same request started at "
                    "2026-06-01T12:30:00+00:00 while this attempt was still marked running",
                ),
                ("jr_1_attempt_1", "succeeded", datetime(2026, 6, 1, 12, 30), None),
            ],
            "run_id string, status string, finished_at timestamp, note string",
        ),
        ignore_nullable=True,
    )


def test_the_ledger_keeps_every_missing_id_in_one_write(
    spark: SparkSession, tables: Warehouse
) -> None:
    """100,000 missing ids (the finding: one literal per id, 59 s for 97,000): the row is
    written as data, and holds every id, in order."""
    missing = [f"M{n:06d}" for n in range(100_000)]
    ledger_ = RunsLedger(spark, tables.runs_of("ingest", "customers"))
    run = _started("jr_big", "t-big", "ingest", id_count=100_000)
    ledger_.start(run)
    ledger_.finish(replace(run, status=RunStatus.SUCCEEDED, missing_ids=missing))
    (stored,) = ledger_.attempts("t-big", "ingest", "customers")
    assert (stored.status, stored.missing_ids == missing) == (RunStatus.SUCCEEDED, True)


def test_finishing_a_run_overwrites_its_own_row_with_every_field_and_no_other_row(
    spark: SparkSession, tables: Warehouse
) -> None:
    """The UPDATE that finishes a run (up to 1,000 missing ids) writes each column's type as
    the start's append did, and leaves alone a row that shares the run id (another stage)."""
    ledger_ = RunsLedger(spark, tables.runs_of("normalize", "customers"))
    started = _started(
        "jr_1",
        "t-1",
        "normalize",
        arguments='{"ids": "7,8,9"}',
        id_count=3,
        window_start=NOW - timedelta(days=1),
        window_end=NOW,
    )
    same_run_other_stage = replace(started, stage="ingest", job_name="ingest_customers")
    ledger_.start(started)
    ledger_.start(same_run_other_stage)
    finished = replace(
        started,
        status=RunStatus.SUCCEEDED,
        finished_at=NOW + timedelta(minutes=3),
        rows_read=5,
        rows_written=4,
        rows_outboxed=3,
        rows_quarantined=1,
        rows_unchanged=0,
        missing_ids=["9", "7"],
        watermark=NOW + timedelta(minutes=2),
        note="done; it's fine",
    )
    ledger_.finish(finished)
    assert ledger_.attempts("t-1", "normalize", "customers") == [finished]
    assert ledger_.attempts("t-1", "ingest", "customers") == [same_run_other_stage]
    ledger_.finish(replace(finished, status=RunStatus.FAILED, missing_ids=[], error="boom"))
    (failed,) = ledger_.attempts("t-1", "normalize", "customers")
    assert (failed.status, failed.missing_ids, failed.error) == (RunStatus.FAILED, [], "boom")


def test_one_ledger_read_gives_the_request_s_attempts_and_the_bau_watermark(
    spark: SparkSession, tables: Warehouse
) -> None:
    ledger_ = RunsLedger(spark, tables.runs_of("normalize", "customers"))
    assert ledger_.before_run("r-x", "normalize", "customers") == PriorRuns([], None)

    def row(request_id: str, hours: int, **fields: Any) -> RunRecord:
        values: dict[str, Any] = {
            "replay_mode": "bau",
            "status": RunStatus.SUCCEEDED,
            "started_at": NOW + timedelta(hours=hours),
        }
        return _started(f"jr_{request_id}_{hours}", request_id, **values | fields)

    mark = NOW + timedelta(hours=1)
    attempts = [  # of request "r-x", the later one first: the read orders them
        row("r-x", 6, status=RunStatus.RUNNING),
        row("r-x", 5, status=RunStatus.ABANDONED, finished_at=NOW + timedelta(hours=6)),
    ]
    ledger_.record(
        [
            row("bau-1", 0, watermark=NOW),
            row("bau-2", 1, watermark=mark),  # the latest watermark
            row("bau-3", 2, watermark=mark - timedelta(minutes=5)),  # a late retry's
            row("bau-4", 3, status=RunStatus.FAILED),
            row("since-1", 4, replay_mode="since"),
            *attempts,
            row("bau-9", 7, stage="ingest", watermark=NOW + timedelta(days=1)),
            row("bau-8", 7, entity="orders", watermark=NOW + timedelta(days=1)),
        ]
    )
    assert ledger_.before_run("r-x", "normalize", "customers") == PriorRuns(attempts[::-1], mark)
    assert ledger_.before_run("r-y", "normalize", "customers") == PriorRuns([], mark)
    # The same answers as the two reads it replaces.
    assert ledger_.attempts("r-x", "normalize", "customers") == attempts[::-1]
    assert ledger_.last_watermark("normalize", "customers") == mark


@pytest.mark.usefixtures("backfilled")
def test_an_older_replayed_version_never_overwrites_a_newer_one(
    spark: SparkSession,
    jobs: Jobs,
    tables: Warehouse,
    api: SampleApiServer,
    clock: SteppingClock,
) -> None:
    clock.advance(hours=1)
    api.mutate(ids=["6"])
    clock.advance(hours=1)
    jobs.both("--request_id", "bau-1")

    # Raw still holds id 6 as of 2024-05-11 (from the backfill); replaying May 2024 selects it.
    clock.advance(hours=1)
    assert jobs.normalize(
        "--replay_mode", "since", "--date", "2024-05-01", "--until", "2024-06-01",
        "--request_id", "since-old",
    ) == 0  # fmt: skip
    current = read(spark, tables.normalized("customers")).where(F.col("id") == "6")
    assert current.select("status", "updated_at", "request_id").collect() == [
        ("active", T(1 + 1 / 60), "bau-1")
    ]
    replayed = read_outbox(spark, tables).where(F.col("request_id") == "since-old")
    assert sorted(
        (r["aggregate_id"], r["status"], r["updated_at"])
        for r in replayed.select(
            "aggregate_id",
            F.get_json_object("payload", "$.status").alias("status"),
            F.get_json_object("payload", "$.updated_at").alias("updated_at"),
        ).collect()
    ) == [
        ("45", "active", "2024-05-08T09:53:49.000Z"),
        ("51", "inactive", "2024-05-23T12:04:18.000Z"),
        # the event carries the newer version the table holds, not the stale one replayed
        ("6", "active", "2026-06-01T13:01:00.000Z"),
    ]


def test_dry_run_writes_no_data_table(
    spark: SparkSession, jobs: Jobs, tables: Warehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    assert jobs.ingest("--replay_mode", "full", "--dry_run", "true", "--request_id", "d-1") == 0
    assert jobs.normalize("--replay_mode", "full", "--dry_run", "true", "--request_id", "d-1") == 0
    assert [table_exists(spark, p) for p in _data_tables(tables)] == [False] * 5
    assert not Path(tables.root, "requests").exists()  # a dry run claims no request id
    assert ledger(spark, tables, "d-1").select("stage", "status", "rows_read").collect() == [
        ("ingest", "dry_run", 60),
        ("normalize", "dry_run", 0),
    ]
    assert "dry run: would append 60 rows" in capsys.readouterr().out


def test_a_request_id_reused_for_another_request_is_refused(
    spark: SparkSession, jobs: Jobs, tables: Warehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    """Also across stages: the finding was a ``normalize --replay_mode full`` accepted under the
    request id of a targeted ingest (it emitted every record, and the request's own targeted
    normalize was refused afterwards, so the request could never finish)."""
    targeted = ("--replay_mode", "targeted", "--ids", "1,2", "--request_id", "r-1")
    assert jobs.ingest(*targeted) == 0
    capsys.readouterr()
    ledgers = [tables.runs_of(stage, "customers") for stage in ("ingest", "normalize")]
    before = [_version(spark, path) for path in ledgers]
    assert jobs.ingest("--replay_mode", "targeted", "--ids", "2", "--request_id", "r-1") == 2
    assert jobs.normalize("--replay_mode", "full", "--request_id", "r-1") == 2
    assert [_version(spark, path) for path in ledgers] == before
    assert not table_exists(spark, tables.outbox_of("customers"))
    refusal = (
        "invalid request: --request_id r-1 names another request: targeted (2 ids) of customers "
        "(claimed by ingest run {run}), not {other}; use a new request_id"
    )
    (run,) = [r["run_id"] for r in read_runs(spark, tables).select("run_id").collect()]
    assert capsys.readouterr().err.splitlines() == [
        "ingest_customers: " + refusal.format(run=run, other="targeted (1 id) of customers"),
        "normalize_customers: " + refusal.format(run=run, other="full of customers"),
    ]

    # The request's own normalize still runs, and emits exactly its two records.
    assert jobs.normalize(*targeted) == 0
    events = read_outbox(spark, tables).select("aggregate_id", "request_id")
    assert sorted(tuple(r) for r in events.collect()) == [("1", "r-1"), ("2", "r-1")]


def test_a_source_failure_fails_the_run_and_the_ledger_says_why(
    spark: SparkSession, jobs: Jobs, tables: Warehouse, api: SampleApiServer
) -> None:
    api.inject_faults(fail_next=50, status=500)
    assert jobs.ingest("--replay_mode", "full", "--request_id", "f-1") == 1
    row = ledger(spark, tables, "f-1").select("status").collect()
    assert row == [("failed",)]
    error = read_runs(spark, tables).select("error").first()["error"]  # type: ignore[index]
    assert error.startswith("SourceError: GET ")
    assert "HTTP 500" in error
    assert not table_exists(spark, tables.raw("customers"))


def test_jobs_run_with_the_argv_glue_produces(warehouse: str, api: SampleApiServer) -> None:
    glue = [
        "--JOB_NAME", "glue-replay-normalize", "--JOB_ID", "j_0123", "--JOB_RUN_ID", "jr_0123",
        "--TempDir", "s3://aws-glue-temporary/admin", "--job-bookmark-option",
        "job-bookmark-disable", "--enable-metrics", "true",
    ]  # fmt: skip
    ours = ["--replay_mode", "targeted", "--ids", "1,2,3", "--warehouse", warehouse]
    ingest = subprocess.run(
        ["scripts/spark-submit", "glue_jobs/ingest_customers.py", *glue, *ours,
         "--source_url", api.url],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    normalize = subprocess.run(
        [sys.executable, "glue_jobs/normalize_customers.py", *glue, *ours],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert normalize.returncode == 0, normalize.stderr[-2000:]
    assert "[normalize customers] succeeded: read 3, written 3, outboxed 3" in normalize.stdout


def _data_tables(tables: Warehouse) -> list[str]:
    return [
        tables.raw("customers"),
        tables.normalized("customers"),
        tables.outbox_of("customers"),
        tables.quarantine_of("ingest", "customers"),
        tables.quarantine_of("normalize", "customers"),
    ]


def _version(spark: SparkSession, path: str) -> int | None:
    return table_version(spark, path)
