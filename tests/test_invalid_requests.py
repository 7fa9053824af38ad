"""Invalid requests are refused at the boundary, exactly as a user meets them (DESIGN §4, §6.8).

Each case runs a real job script in a subprocess, with Glue's own arguments mixed in for some, and
must end with exit code 2, one line on stderr naming the argument, nothing on stdout, and not one
byte changed in a real Delta warehouse. The scripts run without Java, so a job that started
Spark before refusing would fail instead: every refusal comes before any JVM.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from glue_replay.tables.delta import ensure_table, table_version
from glue_replay.tables.schemas import (
    OUTBOX_PARTITIONS,
    OUTBOX_SCHEMA,
    RAW_PARTITIONS,
    RAW_SCHEMA,
    RUNS_SCHEMA,
)
from processes import without_java

REPO = Path(__file__).resolve().parents[1]
NORMALIZE = "glue_jobs/normalize_customers.py"
INGEST = "glue_jobs/ingest_customers.py"
GLUE_ARGS = (
    "--JOB_NAME",
    "x",
    "--JOB_RUN_ID",
    "jr_1",
    "--TempDir",
    "s3://tmp/",
    "--job-bookmark-option",
    "job-bookmark-disable",
    "--enable-metrics",
    "true",
)
SECRET = "hunter2-s3cr3t"
#: Stands for the folder of the ids files the cases read (see ``inputs``).
INPUTS = "{inputs}"


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    argument: str
    script: str = NORMALIZE
    glue: bool = False


CASES = [
    # Near misses of our arguments: refused, never a silent BAU run (more in test_arguments.py).
    Case("hyphenated-replay-mode", ("--replay-mode", "full"), "--replay_mode", glue=True),
    Case("abbreviated-replay-mode", ("--replay", "full"), "--replay_mode", INGEST, glue=True),
    Case("dryrun", ("--replay_mode", "full", "--dryrun", "true"), "--dry_run", glue=True),
    Case("unknown-mode", ("--replay_mode", "sometimes"), "--replay_mode", glue=True),
    Case("unknown-mode-ingest", ("--replay_mode", "fulll"), "--replay_mode", INGEST, glue=True),
    Case("glue-mode-full", ("--mode", "full"), "--replay_mode", glue=True),
    Case(
        "glue-mode-since-ingest",
        ("--mode", "since", "--date", "2026-01-01"),
        "--replay_mode",
        INGEST,
    ),
    Case(
        "glue-mode-blank-replay-mode", ("--mode", "targeted", "--replay_mode", ""), "--replay_mode"
    ),
    Case("since-without-date", ("--replay_mode", "since"), "--date", glue=True),
    Case("malformed-date", ("--replay_mode", "since", "--date", "2026/01/01"), "--date"),
    Case(
        "impossible-date", ("--replay_mode", "since", "--date", "2026-02-30"), "--date", glue=True
    ),
    Case("future-date", ("--replay_mode", "since", "--date", "2999-01-01"), "--date"),
    Case(
        "future-date-ingest", ("--replay_mode", "since", "--date", "2999-01-01"), "--date", INGEST
    ),
    Case("date-without-since", ("--date", "2026-01-01"), "--date"),
    Case("date-with-full", ("--replay_mode", "full", "--date", "2026-01-01"), "--date", glue=True),
    Case("until-without-since", ("--until", "2026-02-01"), "--until"),
    Case(
        "until-not-after-date",
        ("--replay_mode", "since", "--date", "2026-02-01", "--until", "2026-02-01"),
        "--until",
        glue=True,
    ),
    Case("targeted-without-ids", ("--replay_mode", "targeted"), "--ids", glue=True),
    Case("ids-only-separators", ("--replay_mode", "targeted", "--ids", " , "), "--ids"),
    Case(
        "id-with-semicolon",
        ("--replay_mode", "targeted", "--ids", "1;DROP TABLE customers"),
        "--ids",
        glue=True,
    ),
    Case(
        "id-with-semicolon-ingest",
        ("--replay_mode", "targeted", "--ids", "1,2;3"),
        "--ids",
        INGEST,
        glue=True,
    ),
    Case("id-with-quote", ("--replay_mode", "targeted", "--ids", "1,O'Brien"), "--ids"),
    Case("id-with-slash", ("--replay_mode", "targeted", "--ids", "1,../../etc"), "--ids"),
    Case("id-with-space", ("--replay_mode", "targeted", "--ids", "1,2 3"), "--ids", glue=True),
    Case(
        "ids-and-ids-file",
        ("--replay_mode", "targeted", "--ids", "1", "--ids_file", f"{INPUTS}/ids.csv"),
        "--ids_file",
    ),
    Case(
        "missing-ids-file",
        ("--replay_mode", "targeted", "--ids_file", f"{INPUTS}/no-such-file.csv"),
        "--ids_file",
        glue=True,
    ),
    Case(
        "ids-file-without-ids",
        ("--replay_mode", "targeted", "--ids_file", f"{INPUTS}/header-only.csv"),
        "--ids_file",
    ),
    Case(
        "ids-file-with-unsafe-id",
        ("--replay_mode", "targeted", "--ids_file", f"{INPUTS}/unsafe.csv"),
        "--ids_file",
        glue=True,
    ),
    Case(
        "ids-file-s3-bucket-only",
        ("--replay_mode", "targeted", "--ids_file", "s3://replay-requests"),
        "--ids_file",
    ),
    Case("bad-dry-run", ("--replay_mode", "full", "--dry_run", "yes"), "--dry_run", glue=True),
    Case("bad-dry-run-ingest", ("--dry_run", "1"), "--dry_run", INGEST),
    Case("ids-with-full", ("--replay_mode", "full", "--ids", "1,2"), "--ids"),
    Case("bad-warehouse-scheme", ("--warehouse", "hdfs://namenode/warehouse"), "--warehouse"),
    Case(
        "source-url-with-credentials",
        ("--source_url", f"http://admin:{SECRET}@127.0.0.1:8765"),
        "--source_url",
        INGEST,
        glue=True,
    ),
    Case(
        "source-url-other-scheme-with-credentials",
        ("--source_url", f"ftp://admin:{SECRET}@127.0.0.1"),
        "--source_url",
        INGEST,
    ),
    Case("bad-request-id", ("--replay_mode", "full", "--request_id", "req/../1"), "--request_id"),
]

Snapshot = frozenset[tuple[str, int, int]]


@pytest.fixture(scope="module")
def delta_warehouse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real warehouse: raw (version 1, one row), outbox and runs (version 0)."""
    root = tmp_path_factory.mktemp("invalid-requests") / "warehouse"
    raw, outbox = f"{root}/raw/customers", f"{root}/outbox/customers"
    runs = f"{root}/runs/ingest/customers"
    ensure_table(spark, raw, RAW_SCHEMA, RAW_PARTITIONS)
    ensure_table(spark, outbox, OUTBOX_SCHEMA, OUTBOX_PARTITIONS)
    ensure_table(spark, runs, RUNS_SCHEMA)
    row = (
        "1",
        '{"id": "1", "email": "ann@example.com"}',
        datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
        datetime(2026, 11, 2, 6, 0, tzinfo=UTC),
        "req-seed",
        "full",
        "run-seed",
        date(2026, 11, 2),
    )
    spark.createDataFrame([row], RAW_SCHEMA).write.format("delta").mode("append").save(raw)
    assert [table_version(spark, path) for path in (raw, outbox, runs)] == [1, 0, 0]
    return root


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ids files the cases name, outside the warehouse."""
    folder = tmp_path_factory.mktemp("ids-files")
    (folder / "ids.csv").write_text("id\n1\n2\n")
    (folder / "header-only.csv").write_text("id\n\n")
    (folder / "unsafe.csv").write_text("id\n1\n2\n3;rm -rf /\n")
    return folder


def snapshot(root: Path) -> Snapshot:
    """(relative path, size, mtime_ns) of every file under ``root``, folders as (path, -1, -1)."""
    entries = set()
    for path in root.rglob("*"):
        relative = str(path.relative_to(root))
        if path.is_dir():
            entries.add((relative, -1, -1))
        else:
            stat = path.stat()
            entries.add((relative, stat.st_size, stat.st_mtime_ns))
    return frozenset(entries)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_invalid_request_is_refused_before_anything_is_written(
    case: Case, delta_warehouse: Path, inputs: Path
) -> None:
    args = [arg.replace(INPUTS, str(inputs)) for arg in case.args]
    argv = [
        sys.executable,
        case.script,
        *(GLUE_ARGS if case.glue else ()),
        "--warehouse",
        str(delta_warehouse),
        *args,
    ]
    before = snapshot(delta_warehouse)

    # No Java for this process: a job that started Spark before refusing would fail (exit 1)
    # instead of answering exit 2, so the refusal provably comes before any JVM.
    result = subprocess.run(
        argv, cwd=REPO, env=without_java(), capture_output=True, text=True, timeout=120
    )

    job = Path(case.script).stem
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{job}: invalid request: {case.argument}: "), lines[0]
    assert result.stdout == ""
    assert SECRET not in result.stderr
    assert snapshot(delta_warehouse) == before
