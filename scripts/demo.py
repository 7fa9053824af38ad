"""`make demo`: the whole pipeline on local Spark + Delta against the bundled sample API.

1. starts the sample REST API on loopback (``python -m glue_replay_devtools.sample_api``);
2. full backfill: ingest + normalize with ``--replay_mode full``;
3. changes a few records at the source, then runs BAU (no mode), which picks up exactly those;
4. targeted replay of ids 1, 2, 3;
5. prints the runs ledger and each run's outbox events, stops the API and leaves the tables
   in ./warehouse.

Each step runs the same entry points as ``glue_jobs/*.py`` (in one Spark session, to save JVM
start-ups); the equivalent command lines are printed as it goes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

os.environ["TZ"] = "UTC"
time.tzset()

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from glue_replay import run_ingest_job, run_normalize_job  # noqa: E402
from glue_replay.runtime import build_spark_session  # noqa: E402
from glue_replay.tables import Warehouse  # noqa: E402
from glue_replay_examples.customers import PIPELINE  # noqa: E402

WAREHOUSE = Path(os.environ.get("DEMO_WAREHOUSE", "warehouse"))
MARKER = ".glue-replay-demo"
CHANGED_RECORDS = 5
TARGETED_IDS = "1,2,3"


def main() -> int:
    prepare_warehouse(WAREHOUSE)
    port = free_port(int(os.environ.get("DEMO_API_PORT", "8765")))
    source_url = f"http://127.0.0.1:{port}"
    banner(f"starting the sample API: python -m glue_replay_devtools.sample_api --port {port}")
    api = subprocess.Popen(
        [sys.executable, "-m", "glue_replay_devtools.sample_api", "--port", str(port)]
    )
    try:
        wait_until_healthy(source_url)
        spark = build_spark_session("glue-replay-demo")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        common = ["--warehouse", str(WAREHOUSE), "--source_url", source_url]

        banner("1/3 full backfill")
        run_both(spark, [*common, "--replay_mode", "full", "--request_id", f"demo-full-{stamp}"])

        banner(f"the source changes {CHANGED_RECORDS} records")
        changed = post_json(f"{source_url}/admin/mutate", {"count": CHANGED_RECORDS})["changed"]
        print(f"changed at the source: ids {', '.join(changed)}", flush=True)

        banner("2/3 business-as-usual run (no --replay_mode): picks up exactly those changes")
        run_both(spark, [*common, "--request_id", f"demo-bau-{stamp}"])

        banner(f"3/3 targeted replay of ids {TARGETED_IDS}")
        run_both(
            spark,
            [
                *common,
                "--replay_mode",
                "targeted",
                "--ids",
                TARGETED_IDS,
                "--request_id",
                f"demo-targeted-{stamp}",
            ],
        )
        report(spark, Warehouse(str(WAREHOUSE)), changed)
        spark.stop()
    finally:
        api.terminate()
        api.wait(timeout=10)
    return 0


def run_both(spark: SparkSession, arguments: list[str]) -> None:
    jobs: Sequence[tuple[str, Callable[..., int]]] = (
        ("glue_jobs/ingest_customers.py", run_ingest_job),
        ("glue_jobs/normalize_customers.py", run_normalize_job),
    )
    for script, run_job in jobs:
        shown = [a for a in arguments if a]
        print(f"\n$ python {script} {' '.join(shown)}", flush=True)
        code = run_job([script, *arguments], PIPELINE, spark=spark)
        if code != 0:
            raise SystemExit(f"demo: {script} exited with {code}")


def report(spark: SparkSession, warehouse: Warehouse, changed: list[str]) -> None:
    banner("runs ledger")
    runs = spark.read.format("delta").load(warehouse.runs).orderBy("started_at", "stage")
    runs.select(
        "request_id",
        "stage",
        "replay_mode",
        "status",
        F.col("rows_read").alias("read"),
        F.col("rows_written").alias("written"),
        F.col("rows_outboxed").alias("outboxed"),
        F.col("rows_quarantined").alias("quarantined"),
        F.size("missing_ids").alias("missing"),
    ).show(truncate=False)

    outbox = spark.read.format("delta").load(warehouse.outbox)
    banner("outbox events per run")
    outbox.groupBy("request_id", "replay_mode", "event_type").count().orderBy(
        "request_id", "event_type"
    ).show(truncate=False)
    for mode in ("bau", "targeted"):
        print(f"outbox events of the {mode} run:", flush=True)
        outbox.where(F.col("replay_mode") == mode).select(
            "event_id",
            "aggregate_id",
            "event_type",
            F.get_json_object("payload", "$.email").alias("email"),
            F.get_json_object("payload", "$.status").alias("status"),
            F.get_json_object("payload", "$.updated_at").alias("updated_at"),
        ).orderBy(F.col("aggregate_id").cast("int")).show(truncate=False)

    bau_ids = sorted(
        r["aggregate_id"] for r in outbox.where(F.col("replay_mode") == "bau").collect()
    )
    verdict = "exactly" if bau_ids == sorted(changed) else "NOT exactly"
    print(f"BAU emitted ids {bau_ids}: {verdict} the {len(changed)} changed at the source.")
    quarantine = spark.read.format("delta").load(warehouse.quarantine("customers"))
    print(f"quarantined records (malformed at the source): {quarantine.count()}")
    banner("tables")
    for name, path in (
        ("raw", warehouse.raw("customers")),
        ("normalized", warehouse.normalized("customers")),
        ("outbox", warehouse.outbox),
        ("quarantine", warehouse.quarantine("customers")),
        ("runs", warehouse.runs),
    ):
        print(f"  {name:<11} {path}")
    if bau_ids != sorted(changed):
        raise SystemExit("demo: BAU did not pick up exactly the changed records")


def prepare_warehouse(path: Path) -> None:
    """Start from an empty demo warehouse, but never delete tables the demo did not make."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise SystemExit(
                f"demo: {path}/ holds tables the demo did not create; move them or set "
                "DEMO_WAREHOUSE=another/folder"
            )
        print(f"demo: clearing the previous demo warehouse {path}/", flush=True)
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("created by `make demo`; safe to delete\n")


def free_port(preferred: int) -> int:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = int(spare.getsockname()[1])
    print(f"demo: port {preferred} is busy, using {port}", flush=True)
    return port


def wait_until_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"demo: the sample API did not answer at {url}") from None
            time.sleep(0.2)


def post_json(url: str, body: dict[str, object]) -> dict[str, list[str]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


if __name__ == "__main__":
    sys.exit(main())
