"""A REST full backfill fetched in parallel on the executors vs one request at a time (the first
half of `make bench-ingest`).

What it measures. A full read of the sample API's customers (``--records``, default 20,000) in
pages of ``--page-size`` (100) with ``--latency-ms`` (50 ms) added by the server to every request,
through :class:`glue_replay.sources.rest.RestSource`, in three configurations of the same source:

* ``one at a time``: no time slices (``full_start=None``), one task: every page after the other,
  which is what a driver-side loop does at best;
* ``parallel tasks``: the read cut into ``--slices`` time slices (32) from the oldest record,
  fetched by ``--tasks`` Spark tasks at once (16), each paging through its slices in turn;
* ``parallel threads``: the same slices fetched by as many tasks as the machine has cores, each
  with ``--tasks / cores`` threads, one slice per thread at a time: as many requests in flight,
  from as many task slots as an executor has cores (which is all a Glue worker gives).

Each runs twice: against the well-behaved server, and with ``--throttle-rate`` (10%) of the
requests answered ``429 Too Many Requests`` with ``Retry-After: 1``, which the source honours.

How. The sample API runs in its own process (``python -m glue_replay_devtools.sample_api``), on
loopback. Spark is a local session with ``--tasks`` task slots (``local[N]``). Each measurement
is the wall time from ``read_full`` until every batch has been counted (records and distinct
ids): every record is fetched, parsed and turned into a row; no Delta commit is timed. Each
configuration gets one warm-up read (Python workers started, imports done) and ``--repeats``
measured reads; the table shows the median run. Every read must return every record exactly
once: the script aborts otherwise. The server's own statistics give the requests it answered, by
status, and the most it served at the same time; "CPU s" is the CPU time every process involved
used during the run (the driver, the JVM, its Python workers and the sample API, read from
/proc): on a small machine that, not the network, bounds the speed-up.

    TZ=UTC .venv/bin/python scripts/bench_rest.py [--records 20000] [--page-size 100]
        [--latency-ms 50] [--tasks 16] [--slices 32] [--repeats 3] [--throttle-rate 0.1]

Output: progress on stderr, a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ["TZ"] = "UTC"
time.tzset()
# The executors' Python: this interpreter, where glue_replay is installed.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from glue_replay.runtime import build_spark_session  # noqa: E402
from glue_replay.sources.rest import RestSource, RestSourceConfig  # noqa: E402

STARTED = time.monotonic()
#: The sample API's update times lie in [now - 3 years, now - 2 days].
DATA_SPAN = timedelta(days=3 * 365)


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Measurement:
    scenario: str
    mode: str
    seconds: float
    records: int
    requests: int
    throttled: int
    max_concurrent: int
    cpu: float | None
    tasks: int
    threads: int
    slices: int

    @property
    def per_second(self) -> float:
        return self.records / self.seconds


def cpu_seconds() -> float | None:
    """CPU time used so far by this process and all its descendants still running (the JVM,
    its Python workers, the sample API): Linux's /proc, else ``None``."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    family, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        family.update(children)
        frontier = children
    return sum(used.get(pid, 0.0) for pid in family)


class BenchmarkError(Exception):
    """A read that did not return every record exactly once: its timing would mean nothing."""


@contextmanager
def sample_api(records: int, latency_ms: int) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "glue_replay_devtools.sample_api", "--port", str(port),
        "--records", str(records), "--latency-ms", str(latency_ms),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if "listening" not in line:
            raise BenchmarkError(f"the sample API did not start: {line!r}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def admin(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}{path}", data=data, method="GET" if body is None else "POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def read_once(spark: SparkSession, source: RestSource, expected: int) -> float:
    """Seconds to fetch the whole read and count its records and distinct ids (which must
    both be ``expected``): every record is fetched, parsed and turned into a row."""
    started = time.monotonic()
    total = distinct = 0
    for batch in source.read_full(spark):
        counts = batch.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("id").alias("ids")).first()
        assert counts is not None
        total, distinct = total + int(counts["n"]), distinct + int(counts["ids"])
    seconds = time.monotonic() - started
    if total != expected or distinct != expected:
        raise BenchmarkError(f"read {total} records ({distinct} distinct ids), expected {expected}")
    return seconds


def measure(
    spark: SparkSession,
    url: str,
    scenario: str,
    mode: str,
    config: RestSourceConfig,
    args: argparse.Namespace,
) -> Measurement:
    source = RestSource(config)
    slices = len(source.full_slices())
    say(
        f"{scenario} / {mode}: warm-up ({slices} slices, {config.max_concurrency} tasks x "
        f"{config.threads_per_task} threads)"
    )
    read_once(spark, source, args.records)
    runs: list[tuple[float, dict[str, Any], float | None]] = []
    for repeat in range(args.repeats):
        admin(url, "/admin/stats/reset", {})
        cpu_before = cpu_seconds()
        seconds = read_once(spark, source, args.records)
        cpu_after = cpu_seconds()
        stats = admin(url, "/admin/stats")
        cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        runs.append((seconds, stats, cpu))
        say(f"{scenario} / {mode}: run {repeat + 1}: {seconds:.2f}s, cpu {cpu}, server {stats}")
    # The median run, with its own statistics.
    seconds, stats, cpu = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    return Measurement(
        scenario=scenario,
        mode=mode,
        seconds=seconds,
        records=args.records,
        requests=stats["requests"],
        throttled=stats["statuses"].get("429", 0),
        max_concurrent=stats["max_concurrent"],
        cpu=cpu,
        tasks=config.max_concurrency,
        threads=config.threads_per_task,
        slices=slices,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--throttle-rate", type=float, default=0.1)
    args = parser.parse_args(argv)

    say(f"starting Spark (local[{args.tasks}]) and the sample API ({args.records} records)")
    spark = build_spark_session(
        "glue-replay-bench-rest",
        extra_settings={"spark.master": f"local[{args.tasks}]", "spark.ui.enabled": "false"},
    )
    results: list[Measurement] = []
    try:
        with sample_api(args.records, args.latency_ms) as url:
            # Exactly --slices slices: from a day before the oldest record to a day after now
            # (the last one open-ended, as always).
            oldest = datetime.now(UTC) - DATA_SPAN - timedelta(days=1)
            common: dict[str, Any] = {
                "base_url": url,
                "path": "customers",
                "page_size": args.page_size,
            }
            sliced = {
                **common,
                "full_start": oldest,
                "slice_width": (DATA_SPAN + timedelta(days=2)) / args.slices,
                "slices_per_batch": args.slices,
            }
            cores = os.cpu_count() or 1
            configs = {
                "one at a time": RestSourceConfig(**common, max_concurrency=1),
                "parallel tasks": RestSourceConfig(**sliced, max_concurrency=args.tasks),
                "parallel threads": RestSourceConfig(
                    **sliced,
                    max_concurrency=cores,
                    threads_per_task=max(1, args.tasks // cores),
                ),
            }
            scenarios = [
                ("no failures", {"failure_rate": 0.0}),
                (
                    f"{args.throttle_rate:.0%} answered 429 (Retry-After: 1)",
                    {"failure_rate": args.throttle_rate, "failure_statuses": [429]},
                ),
            ]
            for scenario, behaviour in scenarios:
                admin(url, "/admin/config", {**behaviour, "retry_after": 1})
                for mode, config in configs.items():
                    results.append(measure(spark, url, scenario, mode, config, args))
    finally:
        spark.stop()

    cores = os.cpu_count()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"\nREST full backfill: {args.records:,} records, pages of {args.page_size}, "
        f"{args.latency_ms} ms latency per request; local[{args.tasks}] on {cores} cores "
        f"(load average at the end: {load}); median of {args.repeats}\n"
    )
    print(
        "| scenario | mode | slices | tasks x threads | requests (429) | max in flight | "
        "CPU s | seconds | records/s | speed-up |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        baseline = next(
            r for r in results if r.scenario == result.scenario and r.mode == "one at a time"
        )
        print(
            f"| {result.scenario} | {result.mode} | {result.slices} | "
            f"{result.tasks} x {result.threads} | "
            f"{result.requests} ({result.throttled}) | {result.max_concurrent} | "
            f"{'n/a' if result.cpu is None else f'{result.cpu:.1f}'} | "
            f"{result.seconds:.2f} | {result.per_second:,.0f} | "
            f"{baseline.seconds / result.seconds:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
