"""``glue-replay runs`` and ``status`` over the runs ledger: one Delta table per job, read with
delta-rs (no JVM), locally and on S3 (a moto server), plus a deployment's legacy single table.

The ledger tables are written here with delta-rs's ``write_deltalake`` in the ledger's own
schema (``RUNS_SCHEMA``, and ``rows_unchanged`` for tables written since it exists); Glue is moto.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from arro3.core import Array, DataType, Field, Table, list_array
from deltalake import write_deltalake
from moto import mock_aws
from moto.glue.models import glue_backends
from moto.moto_api import state_manager
from pyspark.sql.types import ArrayType, IntegerType, LongType, StringType, TimestampType

from glue_replay.tables.schemas import RUNS_SCHEMA
from glue_replay.trigger.cli import main
from glue_replay.trigger.ledger import LedgerRow, RunsFilter, ledger_tables, read_runs
from moto_process import free_port, running_moto_server

pytest.register_assert_rewrite("moto_deployment")
from moto_deployment import (  # noqa: E402
    ACCOUNT,
    CUSTOMERS,
    ORDERS,
    REGION,
    aws_environment,
    create_deployment,
    pipelines_config,
)

INGEST, NORMALIZE = CUSTOMERS.ingest_job, CUSTOMERS.normalize_job

# -- writing ledger tables with delta-rs ---------------------------------------------------------

#: The ledger's columns with ``rows_unchanged`` (after ``rows_quarantined``), as the jobs write it
#: since issue 8; a table written before has RUNS_SCHEMA's columns only.
_UNCHANGED = ("rows_unchanged", LongType())


def ledger_columns(with_unchanged: bool) -> list[tuple[str, Any]]:
    columns = [(f.name, f.dataType) for f in RUNS_SCHEMA.fields if f.name != "rows_unchanged"]
    if with_unchanged:
        at = [name for name, _ in columns].index("rows_quarantined") + 1
        columns.insert(at, _UNCHANGED)
    return columns


def t(text: str) -> datetime:
    """``"01-05 10:00:00"`` -> 2026-01-05 10:00:00 UTC."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def run(
    run_id: str,
    request_id: str,
    stage: str,
    entity: str,
    status: str,
    started: str,
    finished: str | None = None,
    **values: Any,
) -> dict[str, Any]:
    """A ledger row: what is given, the rest as a job would leave it."""
    row: dict[str, Any] = {
        "run_id": run_id,
        "request_id": request_id,
        "job_name": f"glue-replay-{entity}-{stage}",
        "stage": stage,
        "entity": entity,
        "replay_mode": "targeted",
        "status": status,
        "requested_by": "arn:aws:iam::123456789012:user/jane",
        "arguments": "{}",
        "request_fingerprint": "f" * 64,
        "id_count": 0,
        "started_at": t(started),
        "finished_at": t(finished) if finished else None,
        "rows_read": 0,
        "rows_written": 0,
        "rows_unchanged": 0,
        "rows_outboxed": 0,
        "rows_quarantined": 0,
        "missing_ids": [],
    }
    row.update(values)
    return row


def _array(values: list[Any], data_type: Any) -> Any:
    if isinstance(data_type, StringType):
        return Array(values, DataType.string())
    if isinstance(data_type, IntegerType):
        return Array(values, DataType.int32())
    if isinstance(data_type, LongType):
        return Array(values, DataType.int64())
    if isinstance(data_type, TimestampType):
        micros = [None if v is None else int(v.timestamp() * 1_000_000) for v in values]
        return Array(micros, DataType.int64()).cast(DataType.timestamp("us", tz="UTC"))
    if isinstance(data_type, ArrayType):
        offsets = [0]
        for value in values:
            offsets.append(offsets[-1] + len(value or []))
        flat = [item for value in values for item in value or []]
        return list_array(
            Array(offsets, DataType.int32()),
            Array(flat, DataType.string()),
            type=DataType.list(Field("element", DataType.string(), nullable=True)),
        )
    raise AssertionError(f"no arrow type for {data_type}")


def write_ledger(
    location: str,
    rows: list[dict[str, Any]],
    *,
    with_unchanged: bool = True,
    storage_options: dict[str, str] | None = None,
) -> None:
    """Append ``rows`` to the ledger table at ``location`` (created with the ledger's columns)."""
    columns = ledger_columns(with_unchanged)
    arrays = [_array([row.get(name) for row in rows], data_type) for name, data_type in columns]
    table = Table.from_arrays(arrays, names=[name for name, _ in columns])
    write_deltalake(location, table, mode="append", storage_options=storage_options)


# -- a known ledger ------------------------------------------------------------------------------

LONG_ERROR = (
    "Py4JJavaError: An error occurred while calling o123.save.\n"
    ": java.io.IOException: No space left on device\n\tat org.apache.hadoop.fs..."
)


def known_ledger(runs: str, storage_options: dict[str, str] | None = None) -> None:
    """Four per-job tables and the legacy single table of a deployment from before the split.

    Request fix-1's first ingest attempt (jr_a1) was killed: its row still says running, and
    jr_a2 started after it. The orders ingest local-1 is really still running.
    """
    legacy = [
        run(
            "jr_old", "full-1", "ingest", "customers", "succeeded", "01-01 09:00:00",
            "01-01 09:02:05", replay_mode="full", rows_read=120, rows_written=120,
        ),
    ]  # fmt: skip
    write_ledger(runs, legacy, with_unchanged=False, storage_options=storage_options)
    write_ledger(
        f"{runs}/ingest/customers",
        [
            run("jr_a1", "fix-1", "ingest", "customers", "running", "01-05 10:00:00", id_count=3),
            run(
                "jr_a2", "fix-1", "ingest", "customers", "succeeded", "01-05 10:05:00",
                "01-05 10:05:21", id_count=3, rows_read=2, rows_written=2, missing_ids=["C9"],
            ),
        ],
        storage_options=storage_options,
    )  # fmt: skip
    write_ledger(
        f"{runs}/normalize/customers",
        [
            run(
                "jr_b1", "fix-1", "normalize", "customers", "succeeded", "01-05 10:06:00",
                "01-05 10:07:10", id_count=3, rows_read=3, rows_written=1, rows_unchanged=1,
                rows_outboxed=2, rows_quarantined=1, missing_ids=["C9"],
            ),
        ],
        storage_options=storage_options,
    )  # fmt: skip
    write_ledger(
        f"{runs}/ingest/orders",
        [
            run(
                "local-1", "since-2", "ingest", "orders", "running", "01-06 07:59:00",
                job_name="local", replay_mode="since",
            ),
        ],
        storage_options=storage_options,
    )  # fmt: skip
    write_ledger(
        f"{runs}/normalize/orders",
        [
            run(
                "jr_d1", "orders-dry", "normalize", "orders", "dry_run", "01-04 12:00:00",
                "01-04 12:00:03", replay_mode="full", rows_read=5000,
            ),
            run(
                "jr_c1", "since-2", "normalize", "orders", "failed", "01-06 08:00:00",
                "01-06 08:01:09", replay_mode="since", rows_read=7, error=LONG_ERROR,
            ),
        ],
        storage_options=storage_options,
    )  # fmt: skip


def known_rows() -> list[LedgerRow]:
    """:func:`known_ledger`'s rows as the reader returns them, oldest first."""
    who = "arn:aws:iam::123456789012:user/jane"

    def row(**values: Any) -> LedgerRow:
        stage, entity = values["stage"], values["entity"]
        defaults: dict[str, Any] = {
            "job_name": f"glue-replay-{entity}-{stage}",
            "replay_mode": "targeted",
            "requested_by": who,
            "id_count": 0,
            "finished_at": None,
            "rows_read": 0,
            "rows_written": 0,
            "rows_unchanged": 0,
            "rows_outboxed": 0,
            "rows_quarantined": 0,
        }
        return LedgerRow(**{**defaults, **values})

    return [
        row(
            run_id="jr_old", request_id="full-1", stage="ingest", entity="customers",
            status="succeeded", replay_mode="full", started_at=t("01-01 09:00:00"),
            finished_at=t("01-01 09:02:05"), rows_read=120, rows_written=120,
            rows_unchanged=None,
        ),
        row(
            run_id="jr_d1", request_id="orders-dry", stage="normalize", entity="orders",
            status="dry_run", replay_mode="full", started_at=t("01-04 12:00:00"),
            finished_at=t("01-04 12:00:03"), rows_read=5000,
        ),
        row(
            run_id="jr_a1", request_id="fix-1", stage="ingest", entity="customers",
            status="running", started_at=t("01-05 10:00:00"), id_count=3,
        ),
        row(
            run_id="jr_a2", request_id="fix-1", stage="ingest", entity="customers",
            status="succeeded", started_at=t("01-05 10:05:00"), finished_at=t("01-05 10:05:21"),
            id_count=3, rows_read=2, rows_written=2, missing_id_count=1,
        ),
        row(
            run_id="jr_b1", request_id="fix-1", stage="normalize", entity="customers",
            status="succeeded", started_at=t("01-05 10:06:00"), finished_at=t("01-05 10:07:10"),
            id_count=3, rows_read=3, rows_written=1, rows_unchanged=1, rows_outboxed=2,
            rows_quarantined=1, missing_id_count=1,
        ),
        row(
            run_id="local-1", request_id="since-2", stage="ingest", entity="orders",
            status="running", job_name="local", replay_mode="since",
            started_at=t("01-06 07:59:00"),
        ),
        row(
            run_id="jr_c1", request_id="since-2", stage="normalize", entity="orders",
            status="failed", replay_mode="since", started_at=t("01-06 08:00:00"),
            finished_at=t("01-06 08:01:09"), rows_read=7, error=LONG_ERROR,
        ),
    ]  # fmt: skip


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local warehouse holding :func:`known_ledger`; no deployment configured."""
    aws_environment(monkeypatch)
    root = tmp_path / "warehouse"
    known_ledger(str(root / "runs"))
    (root / "runs" / "normalize" / "scratch").mkdir()  # a folder that is not a table
    return str(root)


# -- finding and reading the tables --------------------------------------------------------------


def test_the_reader_finds_every_per_job_table_and_the_legacy_one_locally(warehouse: str) -> None:
    runs = f"{warehouse}/runs"

    assert ledger_tables(warehouse) == [
        runs,
        f"{runs}/ingest/customers",
        f"{runs}/ingest/orders",
        f"{runs}/normalize/customers",
        f"{runs}/normalize/orders",
    ]
    assert read_runs(warehouse) == (known_rows(), 5)


def test_a_warehouse_without_a_ledger_has_no_tables(tmp_path: Path) -> None:
    (tmp_path / "runs" / "ingest").mkdir(parents=True)

    assert ledger_tables(str(tmp_path)) == []
    assert read_runs(str(tmp_path)) is None


@dataclass
class S3Server:
    """A moto server on loopback that boto3 and delta-rs both reach via ``AWS_ENDPOINT_URL``."""

    endpoint: str
    s3: Any

    def write_options(self) -> dict[str, str]:
        # delta-rs refuses S3 writes without a locking provider unless told a single writer is
        # safe: this test is the only writer.
        return {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}


@pytest.fixture
def s3_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3Server]:
    """``moto_server`` in its own process: delta-rs holds the GIL while it reads, so a server
    thread in this process could not answer it."""
    aws_environment(monkeypatch)
    with running_moto_server(tmp_path) as endpoint:
        # botocore and delta-rs both take the endpoint from the environment.
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": REGION})
        yield S3Server(endpoint, s3)


def test_the_reader_finds_every_per_job_table_and_the_legacy_one_on_s3(
    s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    known_ledger("s3://lake/wh/runs", storage_options=s3_server.write_options())
    s3_server.s3.put_object(Bucket="lake", Key="wh/runs/normalize/scratch/notes.txt", Body=b"x")

    assert ledger_tables("s3://lake/wh", s3=s3_server.s3) == [
        "s3://lake/wh/runs",
        "s3://lake/wh/runs/ingest/customers",
        "s3://lake/wh/runs/ingest/orders",
        "s3://lake/wh/runs/normalize/customers",
        "s3://lake/wh/runs/normalize/orders",
    ]
    assert read_runs("s3://lake/wh", region=REGION, s3=s3_server.s3) == (known_rows(), 5)

    # The CLI lists and reads the same tables with its own clients.
    assert main(["runs", "--warehouse", "s3://lake/wh/", "--entity", "orders", "--last", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "ledger s3://lake/wh/runs (5 tables) matching entity orders: "
        "the 1 newest rows (--last N for more)"
    )


def test_the_newest_rows_are_read_from_each_table_and_merged(warehouse: str) -> None:
    rows = known_rows()

    assert read_runs(warehouse, RunsFilter(last=3)) == (rows[-3:], 5)
    assert read_runs(warehouse, RunsFilter(request_id="fix-1", stage="ingest")) == (
        rows[2:4],
        5,
    )
    assert read_runs(warehouse, RunsFilter(entity="orders", last=1)) == ([rows[-1]], 5)


# -- glue-replay runs ----------------------------------------------------------------------------


HEADING = (
    "started               stage      entity     request     mode      status     read  written  "
    "unchanged  outboxed  quarantined  missing    took  error"
)


def test_runs_prints_the_ledger_newest_first_with_abandoned_attempts(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--warehouse", warehouse]) == 0

    captured = capsys.readouterr()
    assert captured.out == "\n".join(
        [
            f"ledger {warehouse}/runs (5 tables): 7 rows, newest first",
            HEADING,
            "2026-01-06 08:00:00Z  normalize  orders     since-2     since     failed        7  "
            "      0          0         0            0        0  1m 09s  Py4JJavaError: An error "
            "occurred while calling o123.save....",
            "2026-01-06 07:59:00Z  ingest     orders     since-2     since     running       0  "
            "      0          0         0            0        0",
            "2026-01-05 10:06:00Z  normalize  customers  fix-1       targeted  succeeded     3  "
            "      1          1         2            1        1  1m 10s",
            "2026-01-05 10:05:00Z  ingest     customers  fix-1       targeted  succeeded     2  "
            "      2          0         0            0        1     21s",
            "2026-01-05 10:00:00Z  ingest     customers  fix-1       targeted  abandoned     0  "
            "      0          0         0            0        0",
            "2026-01-04 12:00:00Z  normalize  orders     orders-dry  full      dry_run    5000  "
            "      0          0         0            0        0      3s",
            # The legacy table has no rows_unchanged column: that count is left empty.
            "2026-01-01 09:00:00Z  ingest     customers  full-1      full      succeeded   120  "
            "    120                    0            0        0  2m 05s",
            "abandoned: run jr_a1 (ingest customers, request fix-1): attempt jr_a2 of the same "
            "request started later",
            "",
        ]
    )
    assert captured.err == ""


def test_runs_filters_by_request_entity_and_stage_and_keeps_the_last_n(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def runs(*argv: str) -> list[str]:
        assert main(["runs", "--warehouse", warehouse, *argv]) == 0
        return capsys.readouterr().out.splitlines()

    assert runs("--request-id", "fix-1", "--stage", "ingest") == [
        f"ledger {warehouse}/runs (5 tables) matching request fix-1, stage ingest: "
        "2 rows, newest first",
        "started               stage   entity     request  mode      status     read  written  "
        "unchanged  outboxed  quarantined  missing  took  error",
        "2026-01-05 10:05:00Z  ingest  customers  fix-1    targeted  succeeded     2        2  "
        "        0         0            0        1   21s",
        "2026-01-05 10:00:00Z  ingest  customers  fix-1    targeted  abandoned     0        0  "
        "        0         0            0        0",
        "abandoned: run jr_a1 (ingest customers, request fix-1): attempt jr_a2 of the same "
        "request started later",
    ]
    assert runs("--entity", "orders", "--last", "2") == [
        f"ledger {warehouse}/runs (5 tables) matching entity orders: "
        "the 2 newest rows (--last N for more)",
        "started               stage      entity  request  mode   status   read  written  "
        "unchanged  outboxed  quarantined  missing    took  error",
        "2026-01-06 08:00:00Z  normalize  orders  since-2  since  failed      7        0  "
        "        0         0            0        0  1m 09s  Py4JJavaError: An error occurred "
        "while calling o123.save....",
        "2026-01-06 07:59:00Z  ingest     orders  since-2  since  running     0        0  "
        "        0         0            0        0",
    ]
    # --last keeps the newest rows of all tables, not of each.
    assert [line[:52].rstrip() for line in runs("--last", "3")[2:]] == [
        "2026-01-06 08:00:00Z  normalize  orders     since-2",
        "2026-01-06 07:59:00Z  ingest     orders     since-2",
        "2026-01-05 10:06:00Z  normalize  customers  fix-1",
    ]


def test_an_empty_ledger_is_one_line_and_exit_0(
    tmp_path: Path, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = str(tmp_path / "empty")

    assert main(["runs", "--warehouse", empty]) == 0
    assert main(["runs", "--warehouse", warehouse, "--entity", "orders", "--stage", "publish"]) == 0

    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"ledger: no runs table at {empty}/runs; nothing has run yet",
        f"ledger: no row matching entity orders, stage publish in {warehouse}/runs",
    ]
    assert captured.err == ""


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--last", "0"], "argument --last: '0' is not a positive integer (1, 2, 3, ...)"),
        (["--last", "ten"], "argument --last: 'ten' is not a positive integer (1, 2, 3, ...)"),
        (
            ["--request-id", "fix 1"],
            "--request-id: 'fix 1' is not a valid request id; accepted: 1-128 letters, digits "
            "or _ . : -, starting with a letter or digit",
        ),
        (
            ["--stage", "all"],
            "argument --stage: invalid choice: 'all' (choose from 'ingest', 'normalize', "
            "'publish')",
        ),
        (
            ["--entity", "invoices"],
            "--entity: 'invoices' is not a pipeline of this installation (entry points "
            "glue_replay.pipelines); accepted: customers, orders",
        ),
        (["--since", "2026-01-01"], "unrecognized arguments: --since 2026-01-01"),
    ],
)
def test_a_bad_flag_exits_2_with_one_line_naming_it(
    warehouse: str, capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    assert main(["runs", "--warehouse", warehouse, *argv]) == 2

    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"glue-replay: invalid request: {error}\n")


def test_an_entity_is_checked_against_the_deployments_pipelines(
    tmp_path: Path, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "cli_config.json"
    config.write_text(json.dumps({"region": REGION, "pipelines": pipelines_config(ORDERS)}))

    assert main(["runs", "--warehouse", warehouse, "--config", str(config), "--entity", "x"]) == 2
    assert capsys.readouterr().err == (
        f"glue-replay: invalid request: --entity: 'x' is not a pipeline of the deployment "
        f"({config}); accepted: orders\n"
    )


# -- abandoned attempts in status ----------------------------------------------------------------


def test_status_shows_a_running_attempt_with_a_later_one_as_abandoned(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "fix-1", "--warehouse", warehouse]) == 0

    assert capsys.readouterr().out.splitlines() == [
        "request fix-1",
        f"ledger {warehouse}/runs:",
        "  ingest     customers  abandoned  read 0, written 0, unchanged 0, outboxed 0, "
        "quarantined 0, missing ids 0  run jr_a1 (started 2026-01-05 10:00:00Z)  "
        "abandoned: attempt jr_a2 of the same request started later",
        "  ingest     customers  succeeded  read 2, written 2, unchanged 0, outboxed 0, "
        "quarantined 0, missing ids 1  run jr_a2 (started 2026-01-05 10:05:00Z, took 21s)",
        "  normalize  customers  succeeded  read 3, written 1, unchanged 1, outboxed 2, "
        "quarantined 1, missing ids 1  run jr_b1 (started 2026-01-05 10:06:00Z, took 1m 10s)",
        "delivered: customers not published yet (the next publish run delivers its 2 events)",
    ]


# -- abandoned attempts whose Glue job run ended -------------------------------------------------


@pytest.fixture
def glue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The customers deployment in moto; job runs stay in the state a test gives them."""
    aws_environment(monkeypatch)
    with mock_aws():
        state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 10**9})
        try:
            yield create_deployment(CUSTOMERS)[0]
        finally:
            state_manager.unset_transition("glue::job_run")


def glue_job_run(glue: Any, job: str, request_id: str, state: str) -> str:
    """A run of ``job`` for ``request_id``, now in ``state``; its id."""
    run_id = str(
        glue.start_job_run(JobName=job, Arguments={"--request_id": request_id})["JobRunId"]
    )
    runs = glue_backends[ACCOUNT][REGION].jobs[job].job_runs
    next(r for r in runs if r.job_run_id == run_id).status = state
    return run_id


def test_a_running_row_whose_glue_run_ended_is_shown_abandoned(
    glue: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # fix-3's normalize was killed: Glue says its run failed, the ledger still says running.
    # fix-4's ingest is really running.
    killed = glue_job_run(glue, NORMALIZE, "fix-3", "FAILED")
    alive = glue_job_run(glue, INGEST, "fix-4", "RUNNING")
    warehouse = tmp_path / "warehouse"
    write_ledger(
        f"{warehouse}/runs/normalize/customers",
        [run(killed, "fix-3", "normalize", "customers", "running", "01-07 09:00:00")],
    )
    write_ledger(
        f"{warehouse}/runs/ingest/customers",
        [run(alive, "fix-4", "ingest", "customers", "running", "01-07 09:30:00")],
    )
    config = tmp_path / "cli_config.json"
    config.write_text(
        json.dumps(
            {
                "region": REGION,
                "warehouse": str(warehouse),
                "pipelines": pipelines_config(CUSTOMERS),
            }
        )
    )

    assert main(["runs", "--config", str(config)]) == 0
    assert main(["status", "fix-3", "--config", str(config)]) == 0

    captured = capsys.readouterr()
    lines = [
        re.sub(r" started \S+ \S+, \d+s$", " started", line) for line in captured.out.splitlines()
    ]
    assert lines == [
        f"ledger {warehouse}/runs (2 tables): 2 rows, newest first",
        "started               stage      entity     request  mode      status     read  "
        "written  unchanged  outboxed  quarantined  missing  took  error",
        "2026-01-07 09:30:00Z  ingest     customers  fix-4    targeted  running       0  "
        "      0          0         0            0        0",
        "2026-01-07 09:00:00Z  normalize  customers  fix-3    targeted  abandoned     0  "
        "      0          0         0            0        0",
        f"abandoned: run {killed} (normalize customers, request fix-3): its Glue job run "
        "ended FAILED",
        "request fix-3",
        f"ledger {warehouse}/runs:",
        "  normalize  customers  abandoned  read 0, written 0, unchanged 0, outboxed 0, "
        f"quarantined 0, missing ids 0  run {killed} (started 2026-01-07 09:00:00Z)  "
        "abandoned: its Glue job run ended FAILED",
        "glue:",
        f"  job {NORMALIZE} run {killed} FAILED started",
    ]
    assert captured.err == ""


def test_runs_lists_the_ledger_when_glue_cannot_be_asked(
    warehouse: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Nothing listens there: every Glue call fails to connect, at once and only once.
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    write_ledger(
        f"{warehouse}/runs/normalize/customers",
        [run("jr_b2", "fix-5", "normalize", "customers", "running", "01-08 09:00:00")],
    )
    config = tmp_path / "cli_config.json"
    config.write_text(json.dumps({"region": REGION, "pipelines": pipelines_config(CUSTOMERS)}))

    assert main(["runs", "--warehouse", warehouse, "--config", str(config), "--last", "1"]) == 0

    captured = capsys.readouterr()
    assert captured.out.splitlines()[2] == (
        "2026-01-08 09:00:00Z  normalize  customers  fix-5    targeted  running     0        0  "
        "        0         0            0        0"
    )
    assert captured.err == (
        "glue-replay: note: could not ask Glue whether running runs ended (AWS "
        f'EndpointConnectionError: Could not connect to the endpoint URL: "{endpoint}/"); they '
        "are shown as the ledger says, unless a later attempt started\n"
    )
