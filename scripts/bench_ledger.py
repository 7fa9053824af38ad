"""Benchmark: finishing a ledger row that carries many missing ids, three ways.

A targeted replay of a CSV of ids the source mostly lacks ends with a ledger row holding every
missing id. Three ways to write it, each timed here: a Delta UPDATE whose ``missing_ids`` value
is an array expression of one literal per id (what the ledger did until issue 8, which measured
59 s for 97,000 ids); an UPDATE whose ids are one JSON text literal (``RunsLedger.update``, how
``RunsLedger.finish`` writes a run with up to 1,000 missing ids); and a MERGE of a one-row
DataFrame, the ids travelling as data (``RunsLedger.record``, how ``finish`` writes more). In
one Spark session, on fresh ledger tables in a temporary folder: one row started, then finished
with N missing ids, for each N; the median of ``--repeats`` runs after a warm-up, and checks
that each stored exactly the N ids.

    python scripts/bench_ledger.py [--ids 0,1000,10000,97000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

os.environ["TZ"] = "UTC"
time.tzset()
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from delta.tables import DeltaTable  # noqa: E402
from pyspark.sql import Column, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from glue_replay.runtime import build_spark_session  # noqa: E402
from glue_replay.tables import RunRecord, RunsLedger, RunStatus  # noqa: E402
from glue_replay.tables.schemas import RUNS_SCHEMA  # noqa: E402

#: literals: the ledger's UPDATE before issue 8; json: ``RunsLedger.update``; merge: ``.record``.
WAYS = ("literals", "json", "merge")


def run_record(run_id: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        request_id=f"req-{run_id}",
        job_name="ingest_bench",
        stage="ingest",
        entity="bench",
        replay_mode="targeted",
        status=RunStatus.RUNNING,
        requested_by="bench",
        arguments="{}",
        request_fingerprint="f",
        id_count=0,
        window_start=None,
        window_end=None,
        started_at=datetime(2026, 11, 29, 12, tzinfo=UTC),
    )


def finish_with_literals(spark: SparkSession, path: str, run: RunRecord) -> None:
    """The former ``RunsLedger.finish``: an UPDATE whose values are literal expressions."""
    key = ("run_id", "stage", "entity")
    assignments: dict[str, str | Column] = {}
    for f in RUNS_SCHEMA.fields:
        if f.name in key:
            continue
        value = getattr(run, f.name)
        value = str(value) if isinstance(value, StrEnum) else value
        if isinstance(value, list):
            assignments[f.name] = F.array(*[F.lit(v) for v in value]).cast(f.dataType)
        else:
            assignments[f.name] = F.lit(value).cast(f.dataType)
    condition = F.lit(True)
    for name in key:
        condition = condition & (F.col(name) == getattr(run, name))
    DeltaTable.forPath(spark, path).update(condition, assignments)


def timed(spark: SparkSession, folder: Path, how: str, ids: int, attempt: int) -> float:
    path = str(folder / f"{how}-{ids}-{attempt}")
    ledger = RunsLedger(spark, path)
    run = run_record(f"{how}-{ids}-{attempt}")
    ledger.start(run)
    missing = [f"M{n:07d}" for n in range(ids)]
    finished = replace(run, status=RunStatus.SUCCEEDED, missing_ids=missing, id_count=ids)
    started = time.perf_counter()
    if how == "literals":
        finish_with_literals(spark, path, finished)
    elif how == "json":
        ledger.update(finished)
    else:
        ledger.record([finished])
    seconds = time.perf_counter() - started
    (stored,) = ledger.attempts(run.request_id, "ingest", "bench")
    if stored.missing_ids != missing or stored.status is not RunStatus.SUCCEEDED:
        raise SystemExit(f"{how} with {ids} ids did not store exactly the ids")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", default="0,1000,10000,97000")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    counts = [int(n) for n in options.ids.split(",")]

    spark = build_spark_session("glue-replay-bench-ledger")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        folder = Path(tmp)
        for how in WAYS:  # warm-up: JVM, Delta, the first table of each way
            timed(spark, folder, how, 10, -1)
        for ids in counts:
            medians = {}
            for how in WAYS:
                runs = [timed(spark, folder, how, ids, n) for n in range(options.repeats)]
                medians[how] = statistics.median(runs)
                print(f"{ids:>7,} ids  {how:<8}  {medians[how]:6.2f}s", flush=True)
            rows.append((ids, medians))
    spark.stop()

    print()
    print(f"Finishing one ledger row with N missing ids (median of {options.repeats}), seconds")
    print()
    print(
        "| missing ids | UPDATE, one literal per id | UPDATE, the ids one JSON literal "
        "| MERGE of a one-row DataFrame | JSON UPDATE / MERGE |"
    )
    print("|---:|---:|---:|---:|---:|")
    for ids, m in rows:
        print(
            f"| {ids:,} | {m['literals']:.2f} | {m['json']:.2f} | {m['merge']:.2f} "
            f"| {m['json'] / m['merge']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
