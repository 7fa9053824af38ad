"""`make demo`: both bundled pipelines on local Spark + Delta, with no configuration.

1. starts the sample REST API on loopback (``python -m glue_replay_devtools.sample_api``), the
   source of ``customers``, and a throwaway PostgreSQL with the sample shop's orders, the source
   of ``orders`` (``glue_replay_devtools.postgres``);
2. for each pipeline: a full backfill (ingest + normalize with ``--replay_mode full``); a few
   records change at the source; a BAU run (no mode), which picks up exactly those; a targeted
   replay of three ids;
3. prints the runs ledger and the outbox events of each run;
4. publishes every outbox to JSONL files (``glue_jobs/publish_outbox.py --sink file:...``) and
   shows what each request delivered, traced from the ledger (``glue-replay status``); stops both
   servers and leaves the tables and the published files in ./warehouse.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

os.environ["TZ"] = "UTC"
time.tzset()

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from glue_replay import Pipeline, run_ingest_job, run_normalize_job, run_publish_job  # noqa: E402
from glue_replay.runtime import build_spark_session  # noqa: E402
from glue_replay.tables import Warehouse, read_quarantine, read_runs  # noqa: E402
from glue_replay.trigger.status import show_status  # noqa: E402
from glue_replay_devtools.postgres import SampleShop, start_sample_shop  # noqa: E402
from glue_replay_examples.customers import PIPELINE as CUSTOMERS  # noqa: E402
from glue_replay_examples.orders import PIPELINE as ORDERS  # noqa: E402

WAREHOUSE = Path(os.environ.get("DEMO_WAREHOUSE", "warehouse"))
MARKER = ".glue-replay-demo"
CHANGED_RECORDS = 5
TARGETED_CUSTOMERS = ["1", "2", "3"]
ORDERS_IN_SHOP = 40


@dataclass
class DemoPipeline:
    """One bundled pipeline as the demo drives it: its jobs, settings and source changes."""

    pipeline: Pipeline
    scripts: tuple[str, str]
    settings: list[str]
    change: Callable[[], list[str]]
    targeted: list[str]
    show: tuple[str, ...]


def main() -> int:
    prepare_warehouse(WAREHOUSE)
    port = free_port(int(os.environ.get("DEMO_API_PORT", "8765")))
    source_url = f"http://127.0.0.1:{port}"
    banner(f"starting the sample API: python -m glue_replay_devtools.sample_api --port {port}")
    api = subprocess.Popen(
        [sys.executable, "-m", "glue_replay_devtools.sample_api", "--port", str(port)]
    )
    shop: SampleShop | None = None
    try:
        wait_until_healthy(source_url)
        banner("starting the sample shop's PostgreSQL (initdb + pg_ctl in a temporary folder)")
        shop = start_sample_shop(records=ORDERS_IN_SHOP)
        print(f"orders database: {shop.server.jdbc_url} (read-only login)", flush=True)
        # A local job reads the database's credentials from the environment, never arguments.
        os.environ.update(shop.reader_env)
        demos = [
            DemoPipeline(
                CUSTOMERS,
                ("glue_jobs/ingest_customers.py", "glue_jobs/normalize_customers.py"),
                ["--source_url", source_url],
                lambda: post_json(f"{source_url}/admin/mutate", {"count": CHANGED_RECORDS})[
                    "changed"
                ],
                TARGETED_CUSTOMERS,
                ("email", "status", "updated_at"),
            ),
            DemoPipeline(
                ORDERS,
                ("glue_jobs/ingest_orders.py", "glue_jobs/normalize_orders.py"),
                shop.job_args,
                lambda: shop.change(CHANGED_RECORDS) if shop else [],
                shop.good_ids[:3],
                ("status", "amount", "updated_at"),
            ),
        ]
        spark = build_spark_session("glue-replay-demo")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        changes = {demo.pipeline.name: run_demo(spark, demo, stamp) for demo in demos}
        verdicts = [exact for exact, _ in changes.values()]
        verdicts.append(publish(spark, demos, stamp, {k: c for k, (_, c) in changes.items()}))
        print_tables(Warehouse(str(WAREHOUSE)), [d.pipeline.name for d in demos])
        spark.stop()
    finally:
        if shop is not None:
            shop.stop()
        api.terminate()
        api.wait(timeout=10)
    if not all(verdicts):
        raise SystemExit(
            "demo: a BAU run did not pick up (or deliver) exactly the changed records, or a "
            "targeted replay did not deliver exactly its ids"
        )
    return 0


def run_demo(spark: SparkSession, demo: DemoPipeline, stamp: str) -> tuple[bool, list[str]]:
    """full -> the source changes -> BAU -> targeted for one pipeline; whether BAU was exact,
    and the ids changed at the source."""
    name = demo.pipeline.name
    common = ["--warehouse", str(WAREHOUSE), *demo.settings]

    banner(f"{name} 1/3 full backfill")
    run_both(
        spark, demo, [*common, "--replay_mode", "full", "--request_id", f"{name}-full-{stamp}"]
    )

    banner(f"{name}: the source changes {CHANGED_RECORDS} records")
    changed = [str(i) for i in demo.change()]
    print(f"changed at the source: ids {', '.join(changed)}", flush=True)

    banner(f"{name} 2/3 business-as-usual run (no --replay_mode): picks up exactly those changes")
    run_both(spark, demo, [*common, "--request_id", f"{name}-bau-{stamp}"])

    ids = ",".join(demo.targeted)
    banner(f"{name} 3/3 targeted replay of ids {ids}")
    targeted = ["--replay_mode", "targeted", "--ids", ids]
    run_both(spark, demo, [*common, *targeted, "--request_id", f"{name}-targeted-{stamp}"])
    return report(spark, Warehouse(str(WAREHOUSE)), demo, changed), changed


def publish(
    spark: SparkSession, demos: list[DemoPipeline], stamp: str, changed: dict[str, list[str]]
) -> bool:
    """Publish every outbox to JSONL files; True if each BAU request delivered exactly the
    changed ids and each targeted replay exactly its ids."""
    folder = WAREHOUSE.resolve() / "published"
    arguments = ["--warehouse", str(WAREHOUSE), "--sink", f"file:{folder}"]
    banner("publish: every outbox to JSONL files, in order per record")
    print(f"\n$ python glue_jobs/publish_outbox.py {' '.join(arguments)}", flush=True)
    pipelines = [demo.pipeline for demo in demos]
    code = run_publish_job(["glue_jobs/publish_outbox.py", *arguments], pipelines, spark=spark)
    if code != 0:
        raise SystemExit(f"demo: glue_jobs/publish_outbox.py exited with {code}")
    exact = True
    for demo in demos:
        name = demo.pipeline.name
        lines = [
            json.loads(line)
            for path in sorted((folder / name).glob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]
        banner(f"{name}: published to {folder / name}/ ({len(lines)} events)")
        for kind, wanted in (("bau", changed[name]), ("targeted", demo.targeted)):
            request = f"{name}-{kind}-{stamp}"
            ids = sorted((e["aggregate_id"] for e in lines if e["request_id"] == request), key=int)
            ok = ids == sorted(wanted, key=int)
            exact = exact and ok
            print(
                f"{kind:<8} request {request}: delivered {len(ids)} events, ids {', '.join(ids)}"
                f" ({'exactly' if ok else 'NOT exactly'} the {len(wanted)} "
                f"{'changed at the source' if kind == 'bau' else 'asked for'})",
                flush=True,
            )
        sample = next(e for e in lines if e["request_id"] == f"{name}-bau-{stamp}")
        print(f"one published line:\n{json.dumps(sample)[:400]}", flush=True)
        request = f"{name}-bau-{stamp}"
        print(f"\n$ glue-replay status {request} --warehouse {WAREHOUSE}", flush=True)
        show_status(request, warehouse=str(WAREHOUSE), say=print)
    return exact


def run_both(spark: SparkSession, demo: DemoPipeline, arguments: list[str]) -> None:
    jobs: Sequence[tuple[str, Callable[..., int]]] = (
        (demo.scripts[0], run_ingest_job),
        (demo.scripts[1], run_normalize_job),
    )
    for script, run_job in jobs:
        shown = [a for a in arguments if a]
        print(f"\n$ python {script} {' '.join(shown)}", flush=True)
        code = run_job([script, *arguments], demo.pipeline, spark=spark)
        if code != 0:
            raise SystemExit(f"demo: {script} exited with {code}")


def report(
    spark: SparkSession, warehouse: Warehouse, demo: DemoPipeline, changed: list[str]
) -> bool:
    entity = demo.pipeline.entity
    banner(f"{entity.name}: runs ledger")
    runs = read_runs(spark, warehouse).where(F.col("entity") == entity.name)
    runs.orderBy("started_at", "stage").select(
        "request_id",
        "stage",
        "replay_mode",
        "status",
        F.col("rows_read").alias("read"),
        F.col("rows_written").alias("written"),
        F.col("rows_outboxed").alias("outboxed"),
        F.col("rows_quarantined").alias("quarantined"),
        F.col("rows_unchanged").alias("unchanged"),
        F.size("missing_ids").alias("missing"),
    ).show(truncate=False)

    outbox = spark.read.format("delta").load(warehouse.outbox_of(entity.name))
    banner(f"{entity.name}: outbox events per run")
    outbox.groupBy("request_id", "replay_mode", "event_type").count().orderBy(
        "request_id", "event_type"
    ).show(truncate=False)
    for mode in ("bau", "targeted"):
        print(f"outbox events of the {entity.name} {mode} run:", flush=True)
        outbox.where(F.col("replay_mode") == mode).select(
            "event_id",
            "aggregate_id",
            "event_type",
            *[F.get_json_object("payload", f"$.{field}").alias(field) for field in demo.show],
        ).orderBy(F.col("aggregate_id").cast("long")).show(truncate=False)

    bau_ids = sorted(
        r["aggregate_id"] for r in outbox.where(F.col("replay_mode") == "bau").collect()
    )
    exact = bau_ids == sorted(changed)
    verdict = "exactly" if exact else "NOT exactly"
    print(f"BAU emitted ids {bau_ids}: {verdict} the {len(changed)} changed at the source.")
    quarantine = read_quarantine(spark, warehouse, entity.name)
    print(f"quarantined {entity.name} records (malformed at the source): {quarantine.count()}")
    return exact


def print_tables(warehouse: Warehouse, entities: list[str]) -> None:
    banner("tables")
    for entity in entities:
        for name, path in (
            ("raw", warehouse.raw(entity)),
            ("normalized", warehouse.normalized(entity)),
            ("quarantine", f"{warehouse.quarantine(entity)}/<stage>"),
        ):
            print(f"  {name:<11} {path}")
    print(f"  {'outbox':<11} {warehouse.outbox}/<entity>")
    print(f"  {'runs':<11} {warehouse.runs}/<stage>/<entity>")


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
