"""Benchmark: a JDBC full read of the orders pipeline's source, partitioned vs one partition.

Starts a throwaway PostgreSQL (``glue_replay_devtools.postgres``; ``$GLUE_REPLAY_TEST_PG_DSN``
if set), loads ``--rows`` orders with two line items each (generated inside the database), and
times, in one Spark session, ``read_full`` of the orders source — the pipeline's own query: the
payload JSON built per order with its line items aggregated — once with ``--partitions`` range
queries over ``id`` and once with a single query. Each read is consumed completely (every row,
every payload byte: ``count`` and ``sum(length(payload))``), after a small warm-up read, and
prints a table:

    python scripts/bench_jdbc.py [--rows 1000000] [--partitions 8]

What it does not time: the Delta append of the ingest stage (the same for both reads).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ["TZ"] = "UTC"
time.tzset()
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from glue_replay.runtime import build_spark_session  # noqa: E402
from glue_replay.sources.jdbc import JdbcCredentials, JdbcSource  # noqa: E402
from glue_replay_devtools.postgres import (  # noqa: E402
    PostgresServer,
    create_shop_schema,
    load_generated_orders,
    start_postgres,
)
from glue_replay_examples.orders import CONNECTION_PROPERTIES, ORDER_IDS, ORDERS_QUERY  # noqa: E402

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Result:
    label: str
    partitions: int
    rows: int
    payload_bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def orders_source(server: PostgresServer, partitions: int) -> JdbcSource:
    """The orders pipeline's source (``glue_replay_examples.orders.shop_database``), with
    ``partitions`` range queries."""
    return JdbcSource(
        server.jdbc_url,
        query=ORDERS_QUERY,
        name="orders",
        payload_column="payload",
        partition_column="id",
        num_partitions=partitions,
        credentials=JdbcCredentials(server.reader.user, server.reader.password),
        properties=CONNECTION_PROPERTIES,
        ids=ORDER_IDS,
    )


def timed_full_read(spark: SparkSession, source: JdbcSource, label: str) -> Result:
    started = time.perf_counter()
    frame = source.read_full(spark)
    totals = frame.agg(F.count(F.lit(1)).alias("n"), F.sum(F.length("payload")).alias("b")).first()
    seconds = time.perf_counter() - started
    assert totals is not None
    return Result(label, source.num_partitions, int(totals["n"]), int(totals["b"]), seconds)


def bench_jdbc(spark: SparkSession, server: PostgresServer, partitions: int) -> list[Result]:
    """The partitioned read, then the single-query read, after a warm-up (JVM, driver, pool)."""
    warm = orders_source(server, partitions)
    warm.read_since(spark, NOW - timedelta(hours=2), None).agg(F.count(F.lit(1))).first()
    return [
        timed_full_read(spark, orders_source(server, partitions), "partitioned"),
        timed_full_read(spark, orders_source(server, 1), "one partition"),
    ]


def render(results: list[Result], rows: int, cores: int) -> str:
    lines = [
        f"JDBC full read of {rows:,} orders (PostgreSQL, payload JSON with line items), "
        f"local Spark on {cores} cores",
        "",
        f"| {'read':<14} | {'queries':>7} | {'rows':>9} | {'MB payload':>10} | {'seconds':>7} "
        f"| {'records/s':>9} |",
        f"|{'-' * 16}|{'-' * 9}|{'-' * 11}|{'-' * 12}|{'-' * 9}|{'-' * 11}|",
    ]
    for r in results:
        lines.append(
            f"| {r.label:<14} | {r.partitions:>7} | {r.rows:>9,} | "
            f"{r.payload_bytes / 1e6:>10.1f} | {r.seconds:>7.1f} | {r.rate:>9,.0f} |"
        )
    partitioned, single = results
    lines += ["", f"partitioned / one partition: {partitioned.rate / single.rate:.2f}x"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=8)
    options = parser.parse_args()

    started = time.perf_counter()
    with start_postgres() as server:
        create_shop_schema(server)
        load_generated_orders(server, options.rows, now=NOW)
        print(f"loaded {options.rows:,} orders in {time.perf_counter() - started:.1f}s", flush=True)
        spark = build_spark_session("glue-replay-bench-jdbc")
        try:
            results = bench_jdbc(spark, server, options.partitions)
            cores = os.cpu_count() or 1
        finally:
            spark.stop()
    for result in results:
        if result.rows != options.rows:
            raise SystemExit(f"{result.label} read {result.rows} rows, not {options.rows}")
    print(render(results, options.rows, cores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
