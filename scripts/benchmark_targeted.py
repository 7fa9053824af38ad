"""`make benchmark`: how a targeted replay should select raw rows by id.

What it measures. A targeted replay must pick the raw rows of a list of ids (a few, or a CSV of
tens of thousands). Hand-written Glue scripts usually do it with a literal IN list,

    raw.where(F.col("id").isin(*ids))                                  # baseline: "isin"

while normalize uses :func:`glue_replay.pipelines.normalize.select_for_replay`, a broadcast
left-semi join against a one-column ids frame built the way ``normalize`` builds it:

    select_for_replay(raw, request, TimeWindow(), ids_frame)           # ours: "broadcast"

Why. A literal IN list is a plan with one literal per id: every one is a py4j call from Python,
then the analyzer and optimizer walk them all on the driver. This script puts numbers on that,
and checks that the join costs nothing extra at the small end.

How. It writes a synthetic ``raw`` Delta table with the real ``RAW_SCHEMA`` (ids "1".."N", one
row each, small JSON payloads, partitioned by ``ingest_date`` over 8 days) under a temporary
directory, through the same ``append_once`` plumbing as ingest, and reads it back with
``read_table`` as normalize does. For each (raw rows, requested ids) pair -- ids sampled with a
fixed seed -- each approach gets 1 warm-up and ``--repeats`` measured runs, interleaved. A run is
the wall time from the Python list of ids to the selection's ``.count()``: building the
DataFrame (the ids frame, or the IN list) plus the action that forces the whole selection. The
table reports medians. Both approaches must select the same number of rows, equal to the number
of ids requested; the script aborts (exit 1, table kept) if not. It also records the physical
plan's selection node (``Filter`` with ``In``/``InSet``, or ``BroadcastHashJoin``), and times the
driver-side work alone for the largest id count, without running anything: handing the ids to the
JVM (one py4j ``lit()`` per id for the IN list; ``createDataFrame`` for the ids frame), building
and analyzing the selection, then optimizing and planning it.

Settings: a local session from ``build_spark_session`` with all cores, as many shuffle partitions,
AQE left at Spark's default (on, as on Glue). Output: progress on stderr, the table on stdout.

    TZ=UTC .venv/bin/python scripts/benchmark_targeted.py [--rows 200000,1000000]
        [--ids 10,1000,10000,50000] [--repeats 3] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

os.environ["TZ"] = "UTC"
time.tzset()

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from glue_replay.pipelines.normalize import IDS_SCHEMA, select_for_replay  # noqa: E402
from glue_replay.pipelines.stage import TimeWindow  # noqa: E402
from glue_replay.request import ReplayMode, ReplayRequest  # noqa: E402
from glue_replay.runtime import build_spark_session  # noqa: E402
from glue_replay.tables import append_once, read_table  # noqa: E402
from glue_replay.tables.delta import table_version  # noqa: E402
from glue_replay.tables.schemas import RAW_PARTITIONS, RAW_SCHEMA  # noqa: E402

DEFAULT_ROWS = (200_000, 1_000_000)
DEFAULT_IDS = (10, 1_000, 10_000, 50_000)
DEFAULT_REPEATS = 3
SEED = 20_260_101
INGEST_DAYS = 8
STARTED = time.monotonic()


class SelectionMismatchError(Exception):
    """The approaches selected different row counts: the timings would mean nothing."""


@dataclass(frozen=True)
class PairResult:
    """The measurements of one (raw rows, requested ids) pair."""

    rows: int
    ids: int
    isin_seconds: float
    broadcast_seconds: float
    isin_plan: str
    broadcast_plan: str


@dataclass(frozen=True)
class BuildResult:
    """Driver-side cost of one approach for the largest id count, medians in seconds."""

    approach: str
    ids: int
    handing_seconds: float
    analysis_seconds: float
    plan_seconds: float
    plan_kind: str


def say(message: str) -> None:
    """A progress line on stderr, stamped with the time since start."""
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def positive_ints(text: str) -> tuple[int, ...]:
    """``"200_000,1000000"`` -> ``(200000, 1000000)``, for ``argparse``."""
    try:
        values = tuple(int(part.strip().replace("_", "")) for part in text.split(",") if part)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from error
    if not values or any(value <= 0 for value in values):
        raise argparse.ArgumentTypeError(f"need positive integers: {text!r}")
    return values


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--rows",
        type=positive_ints,
        default=DEFAULT_ROWS,
        help="raw table sizes, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--ids",
        type=positive_ints,
        default=DEFAULT_IDS,
        help="requested id counts, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help="measured runs per approach after 1 warm-up (default: %(default)s)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary raw tables and print where"
    )
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1:
        parser.error("--repeats must be at least 1")
    too_many = [n for n in arguments.ids if n > min(arguments.rows)]
    if too_many:
        parser.error(f"--ids {too_many} exceed the smallest --rows {min(arguments.rows)}")
    return arguments


def start_spark() -> SparkSession:
    cores = os.cpu_count() or 2
    return build_spark_session(
        "glue-replay-benchmark",
        extra_settings={
            "spark.master": f"local[{cores}]",
            "spark.sql.shuffle.partitions": str(cores),
            "spark.default.parallelism": str(cores),
            "spark.databricks.delta.snapshotPartitions": "1",
            "spark.databricks.delta.autoCompact.enabled": "false",
            "spark.driver.memory": "4g",
        },
    )


def write_raw_table(spark: SparkSession, path: str, rows: int) -> DataFrame:
    """A raw table of ``rows`` ids "1".."rows" in ``RAW_SCHEMA``; returns it read back pinned."""
    day = F.floor((F.col("n") - 1) * INGEST_DAYS / rows).cast("int")
    ingested_at = F.timestamp_seconds(F.lit(1_767_225_600) + day * 86_400 + 3_600)  # 2026-01-01
    updated_at = F.timestamp_seconds(F.lit(1_704_067_200) + (F.col("n") * 7_919) % 63_072_000)
    frame = (
        spark.range(1, rows + 1, numPartitions=INGEST_DAYS)
        .withColumnRenamed("id", "n")
        .select(
            F.col("n").cast("string").alias("id"),
            F.concat(
                F.lit('{"id":"'),
                F.col("n").cast("string"),
                F.lit('","email":"user'),
                F.col("n").cast("string"),
                F.lit('@example.com","status":"active","loyalty_points":'),
                (F.col("n") % 1_000).cast("string"),
                F.lit("}"),
            ).alias("payload"),
            updated_at.alias("source_updated_at"),
            ingested_at.alias("ingested_at"),
            F.lit("benchmark").alias("request_id"),
            F.lit(ReplayMode.FULL.value).alias("replay_mode"),
            F.lit("benchmark-run").alias("run_id"),
            F.to_date(ingested_at).alias("ingest_date"),
        )
    )
    append_once(
        frame,
        path,
        RAW_SCHEMA,
        app_id="benchmark-raw",
        partition_by=RAW_PARTITIONS,
        properties={"delta.appendOnly": "true"},
    )
    return read_table(spark, path, RAW_SCHEMA, table_version(spark, path))


#: A selection built in two timed steps: (frame, seconds to hand the ids to the JVM, seconds to
#: build and analyze the selection on them).
Built = tuple[DataFrame, float, float]


def isin_selection(raw: DataFrame, ids: Sequence[str]) -> Built:
    """The baseline: a literal IN list, as hand-written Glue scripts do it."""
    started = time.perf_counter()
    condition = F.col("id").isin(*ids)  # one py4j call per literal
    handed = time.perf_counter()
    frame = raw.where(condition)
    return frame, handed - started, time.perf_counter() - handed


def broadcast_selection(raw: DataFrame, ids: Sequence[str]) -> Built:
    """Ours: ``select_for_replay``, with the ids frame built as ``normalize`` builds it."""
    started = time.perf_counter()
    request = ReplayRequest(mode=ReplayMode.TARGETED, request_id="benchmark", ids=tuple(ids))
    ids_frame = raw.sparkSession.createDataFrame([(i,) for i in request.ids], IDS_SCHEMA)
    handed = time.perf_counter()
    frame = select_for_replay(raw, request, TimeWindow(), ids_frame)
    return frame, handed - started, time.perf_counter() - handed


Selector = Callable[[DataFrame, Sequence[str]], Built]
APPROACHES: dict[str, Selector] = {"isin": isin_selection, "broadcast": broadcast_selection}

_NODE = re.compile(r"^[\s:|+\-]*(?:\*\(\d+\)\s*)?([A-Za-z]\w*)")
_JOIN_TYPE = re.compile(r"\b(LeftSemi|LeftAnti|Inner|LeftOuter|RightOuter|FullOuter)\b")


def executed_plan(frame: DataFrame) -> str:
    """The physical plan as Spark prints it (optimizes and plans, runs nothing)."""
    return str(frame._jdf.queryExecution().executedPlan().toString())


def plan_kind(plan: str) -> str:
    """The node that does the selection: ``Filter(In)``, ``Filter(InSet)``, ``BroadcastHashJoin
    (LeftSemi)``, ...; filters without an IN (the join's ``isnotnull``) are left out."""
    kinds: list[str] = []
    for line in plan.splitlines():
        match = _NODE.match(line)
        if not match:
            continue
        node = match.group(1)
        if node.endswith("Join"):
            join_type = _JOIN_TYPE.search(line)
            kinds.append(f"{node}({join_type.group(1) if join_type else '?'})")
        elif node == "Filter":
            if " INSET " in line:
                kinds.append("Filter(InSet)")
            elif " IN (" in line:
                kinds.append("Filter(In)")
    unique = list(dict.fromkeys(kinds))
    return "+".join(unique) if unique else "none found"


def timed_count(
    select: Selector, raw: DataFrame, ids: Sequence[str]
) -> tuple[float, int, DataFrame]:
    """Wall time from the list of ids to the selection's count, the count and the selection."""
    started = time.perf_counter()
    frame = select(raw, ids)[0]
    count = frame.count()
    return time.perf_counter() - started, count, frame


def measure_pair(raw: DataFrame, rows: int, ids: Sequence[str], repeats: int) -> PairResult:
    """Warm up both approaches, then interleave ``repeats`` measured runs of each."""
    seconds: dict[str, list[float]] = {name: [] for name in APPROACHES}
    frames: dict[str, DataFrame] = {}
    for run in range(repeats + 1):
        counts: dict[str, int] = {}
        for name, select in APPROACHES.items():
            elapsed, counts[name], frames[name] = timed_count(select, raw, ids)
            label = "warm-up" if run == 0 else f"run {run}/{repeats}"
            say(
                f"  rows={rows:,} ids={len(ids):,} {name:<9} {label}: {elapsed:.2f}s "
                f"({counts[name]:,} rows)"
            )
            if run > 0:
                seconds[name].append(elapsed)
        if len(set(counts.values())) != 1 or counts["isin"] != len(ids):
            raise SelectionMismatchError(
                f"raw {rows:,} rows (one per id), {len(ids):,} ids requested: isin selected "
                f"{counts['isin']:,} rows, broadcast {counts['broadcast']:,}"
            )
    return PairResult(
        rows=rows,
        ids=len(ids),
        isin_seconds=statistics.median(seconds["isin"]),
        broadcast_seconds=statistics.median(seconds["broadcast"]),
        # The last measured frames: planning them again costs no second 50,000-literal build.
        isin_plan=plan_kind(executed_plan(frames["isin"])),
        broadcast_plan=plan_kind(executed_plan(frames["broadcast"])),
    )


def measure_build(name: str, raw: DataFrame, ids: Sequence[str], repeats: int) -> BuildResult:
    """Driver side only, nothing executed: hand the ids to the JVM, build and analyze the
    selection, then optimize and plan it. The timing runs have warmed these paths already."""
    handing: list[float] = []
    analyses: list[float] = []
    plans: list[float] = []
    plan = ""
    for run in range(1, repeats + 1):
        frame, handed, analyzed = APPROACHES[name](raw, ids)
        started = time.perf_counter()
        plan = executed_plan(frame)
        planned = time.perf_counter() - started
        say(
            f"  plan only, ids={len(ids):,} {name:<9} run {run}/{repeats}: ids to JVM "
            f"{handed:.2f}s, analysis {analyzed:.2f}s, optimize+plan {planned:.2f}s"
        )
        handing.append(handed)
        analyses.append(analyzed)
        plans.append(planned)
    return BuildResult(
        approach=name,
        ids=len(ids),
        handing_seconds=statistics.median(handing),
        analysis_seconds=statistics.median(analyses),
        plan_seconds=statistics.median(plans),
        plan_kind=plan_kind(plan),
    )


def render_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A plain text table: columns padded, numbers right-aligned, `|` between."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if cell[:1].isdigit() else cell.ljust(width)
            for cell, width in zip(cells, widths, strict=True)
        ]
        return " | ".join(padded).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in body)])


def report(
    spark: SparkSession,
    pairs: Sequence[PairResult],
    builds: Sequence[BuildResult],
    repeats: int,
    total_seconds: float,
) -> str:
    conf = spark.sparkContext.getConf()
    aqe = spark.conf.get("spark.sql.adaptive.enabled", "true")
    heading = (
        f"glue-replay targeted selection benchmark | Spark {spark.version} | "
        f"Delta {version('delta-spark')} | {conf.get('spark.master')}, "
        f"{os.cpu_count()} cores | AQE {aqe} | "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC | "
        f"median of {repeats} (+1 warm-up), seconds from id list to .count()"
    )
    table = render_table(
        [
            "rows",
            "ids",
            "isin median s",
            "broadcast median s",
            "ratio isin/broadcast",
            "plan kinds",
        ],
        [
            [
                f"{pair.rows:,}",
                f"{pair.ids:,}",
                f"{pair.isin_seconds:.3f}",
                f"{pair.broadcast_seconds:.3f}",
                f"{pair.isin_seconds / pair.broadcast_seconds:.2f}x",
                f"isin: {pair.isin_plan}; broadcast: {pair.broadcast_plan}",
            ]
            for pair in pairs
        ],
    )
    build_table = render_table(
        [
            "approach",
            "ids",
            "ids to JVM s",
            "analysis s",
            "optimize+plan s",
            "total s",
            "plan kind",
        ],
        [
            [
                build.approach,
                f"{build.ids:,}",
                f"{build.handing_seconds:.3f}",
                f"{build.analysis_seconds:.3f}",
                f"{build.plan_seconds:.3f}",
                f"{build.handing_seconds + build.analysis_seconds + build.plan_seconds:.3f}",
                build.plan_kind,
            ]
            for build in builds
        ],
    )
    return (
        f"{heading}\n\n{table}\n\n"
        f"ratio > 1: the broadcast join is faster\n\n"
        f"driver side only, nothing executed, {repeats} runs (median); ids to JVM = isin: one py4j "
        f"lit() per id, broadcast: createDataFrame of the ids:\n"
        f"{build_table}\n\ntotal run time: {total_seconds:.0f}s\n"
    )


def main(argv: Sequence[str]) -> int:
    arguments = parse_arguments(argv)
    rows_sizes: tuple[int, ...] = arguments.rows
    id_counts: tuple[int, ...] = arguments.ids
    repeats: int = arguments.repeats
    keep: bool = arguments.keep
    scratch = Path(tempfile.mkdtemp(prefix="glue-replay-benchmark-"))
    say(f"rows {rows_sizes}, ids {id_counts}, {repeats} repeats; tables under {scratch}")
    spark = start_spark()
    say(f"spark {spark.version} ready")
    pairs: list[PairResult] = []
    builds: list[BuildResult] = []
    try:
        for rows in rows_sizes:
            path = str(scratch / f"raw_{rows}")
            started = time.perf_counter()
            raw = write_raw_table(spark, path, rows)
            files = len(list(Path(path).rglob("*.parquet")))
            say(
                f"raw table of {rows:,} rows written in {time.perf_counter() - started:.1f}s: "
                f"{files} parquet files, {raw.count():,} rows read back"
            )
            sampler = random.Random(SEED)  # noqa: S311 - a reproducible sample, not a secret
            for count in id_counts:
                ids = [str(n) for n in sampler.sample(range(1, rows + 1), count)]
                pairs.append(measure_pair(raw, rows, ids, repeats))
            if rows == rows_sizes[-1]:
                largest = [str(n) for n in sampler.sample(range(1, rows + 1), max(id_counts))]
                builds.extend(measure_build(name, raw, largest, repeats) for name in APPROACHES)
        output = report(spark, pairs, builds, repeats, time.monotonic() - STARTED)
    except SelectionMismatchError as error:
        keep = True
        print(f"\nBENCHMARK ABORTED: {error}\n", file=sys.stderr)
        return 1
    finally:
        spark.stop()
        if keep:
            say(f"tables kept under {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
