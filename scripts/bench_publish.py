"""`make bench-publish`: the publisher's throughput against merely reading the outbox, where its
time goes, and what the AWS sinks' calls carry.

1. **The outbox.** ``--events`` customer events (the bundled ``customers`` entity: one event per
   customer, a payload of ~500 bytes shaped like a normalized customer, its version column
   ``updated_at`` inside) in ``--commits`` commits, written straight to ``outbox/customers`` with
   ``OUTBOX_SCHEMA``, the outbox's partitioning and table properties (append-only, change data
   feed from the first commit) by ``append_once``, as normalize writes it. Not through
   ingest/normalize: that would take far longer than what is measured.
2. **The ceiling**, merely reading the same rows (every column, into Spark's ``noop`` sink):
   the change feed from version 0 by Structured Streaming ``availableNow`` into a
   ``foreachBatch`` — exactly the publisher's reader, the baseline of the ratios — and, for
   comparison, a batch ``readChangeFeed`` read and a plain ``spark.read.format("delta")``.
3. **The file sink**: ``run_publish_job(["publish_outbox", "--sink", "file:<folder>", ...])``
   on a fresh copy of the warehouse (the first publish of that backlog), timed end to end, then
   without the run's fixed costs (lease, ledger, outbox checks: only ``stream_outbox``), then its
   micro-batches alone. The steps of the median run are timed by wrappers this script puts
   around the publish module's functions (in this process only; no library code changes), with
   the CPU time of the driver, the JVM and its Python workers during each.
4. **The AWS sinks** on ``moto_server`` (its own process, ``tests/moto_process.py``):
   ``--aws-events`` events published to a Kinesis stream of 4 shards, an SQS FIFO queue, an SNS
   standard topic and an EventBridge bus through the same job. moto is not AWS: the table is
   about calls and bytes (API calls from the run's ledger note, bytes per call from the run's
   ``PublishTotals``, reached by wrapping the publish module's ``_report``), not throughput.
   moto's SQS slows down with every message a queue holds: the queue is purged while the job
   sends, as a consumer keeping up would empty it.

Interleaved ``--repeats`` times after one warm-up round; the tables report medians. Every run
must deliver every event exactly once (lines in the JSONL files, ``rows_delivered`` in the
ledger); the script aborts otherwise. Progress on stderr, the tables on stdout.

    .venv/bin/python scripts/bench_publish.py [--events 100000] [--commits 10] [--repeats 3]
        [--aws-events 5000] [--no-aws] [--scale 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

os.environ["TZ"] = "UTC"
time.tzset()
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # moto_process: moto_server in a process of its own

from bench_rest import cpu_seconds  # noqa: E402
from pyspark.sql import Column, DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql.readwriter import DataFrameWriter  # noqa: E402

import glue_replay.pipelines.publish as publish_module  # noqa: E402
import glue_replay.tables.delta as delta_tables  # noqa: E402
from glue_replay import run_publish_job  # noqa: E402
from glue_replay.pipelines.normalize import OUTBOX_PROPERTIES  # noqa: E402
from glue_replay.runtime import build_spark_session  # noqa: E402
from glue_replay.sinks import SinkSpec, open_sink  # noqa: E402
from glue_replay.sinks.base import BatchLimits, Event  # noqa: E402
from glue_replay.sinks.files import write_jsonl  # noqa: E402
from glue_replay.tables import RunsLedger, Warehouse, append_once  # noqa: E402
from glue_replay.tables.schemas import OUTBOX_PARTITIONS, OUTBOX_SCHEMA  # noqa: E402
from glue_replay.transforms.common import JSON_OPTIONS  # noqa: E402
from glue_replay_examples.customers import PIPELINE  # noqa: E402
from moto_process import FAKE_AWS_ENVIRONMENT, running_moto_server  # noqa: E402

STARTED = time.monotonic()
ENTITY = PIPELINE.entity
#: When the synthetic events were "normalized": one commit every 10 minutes from here.
OCCURRED = datetime(2026, 6, 1, 12, tzinfo=UTC)
AWS_TARGET = "bench-events"


def say(message: str) -> None:
    """A progress line on stderr, stamped with the time since start."""
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- the outbox ------------------------------------------------------------------------------------


def _pick(values: Sequence[str], index: Column) -> Column:
    return F.element_at(F.array(*[F.lit(v) for v in values]), (index % len(values) + 1).cast("int"))


FIRST = ("Maximilian", "Anne-Marie", "Christopher", "Alexandra", "Oluwaseun", "Charlotte")
LAST = (
    "Henderson-Clarke",
    "Okonkwo-Adeyemi",
    "Fitzgerald",
    "Castellanos Rivera",
    "van der Berg",
    "Nakamura",
    "Wisniewska",
)
STREETS = (
    "Kingsway Business Park, Oldham Road, Failsworth",
    "Church Lane, The Old Rectory, Lower Beeding",
    "Rue du Faubourg Saint-Honore, Batiment B, 3e etage",
    "Westersingel, Kantoor Centrum Noord, Ingang C",
)
CITIES = (
    ("Manchester", "M14 5TQ", "GB", "+44 161"),
    ("Paris", "75008", "FR", "+33 1"),
    ("Rotterdam", "3011 AB", "NL", "+31 10"),
    ("Wroclaw", "50-001", "PL", "+48 71"),
    ("Milton Keynes", "MK9 2FR", "GB", "+44 1908"),
)


def customer_events(spark: SparkSession, start: int, count: int, commit: int) -> DataFrame:
    """``count`` outbox events (customers ``start + 1`` ...), shaped as normalize emits them: the
    payload is the entity's business columns as JSON (``JSON_OPTIONS``), ~500 bytes."""
    n = F.col("id")
    first, last = _pick(FIRST, n), _pick(LAST, F.floor(n / 7))
    city = (n % len(CITIES)).cast("int")
    place = [_pick([c[i] for c in CITIES], city) for i in range(4)]
    occurred = OCCURRED + timedelta(minutes=10 * commit)
    updated = F.lit(occurred - timedelta(hours=1)).cast("timestamp") - F.make_interval(
        secs=(n % 86_400).cast("int")
    )
    columns = {
        "id": (n + 1).cast("string"),
        "email": F.lower(
            F.concat_ws("", first, F.lit("."), last, n, F.lit("@mail.example-customers.com"))
        ),
        "first_name": first,
        "last_name": last,
        "phone": F.concat_ws(
            " ", place[3], F.lpad((n % 10_000).cast("string"), 4, "0"), F.lit("0958")
        ),
        "status": F.when(n % 10 == 0, F.lit("inactive")).otherwise(F.lit("active")),
        "loyalty_points": ((n * 37) % 5000).cast("int"),
        "address_line1": F.concat_ws(" ", ((n % 300) + 1).cast("string"), _pick(STREETS, n)),
        "address_line2": F.when(
            n % 5 != 0,
            F.concat(
                F.lit("Apartment "), ((n % 90) + 1).cast("string"), F.lit(", Riverside Court")
            ),
        ),
        "address_city": place[0],
        "address_postcode": place[1],
        "address_country": place[2],
        "created_at": updated - F.make_interval(days=((n * 13) % 1000).cast("int")),
        "updated_at": updated,
    }
    assert list(columns) == ENTITY.business_columns
    digest = F.md5(F.concat(F.lit("bench-publish/"), n.cast("string")))
    event_id = F.concat_ws(
        "-", *[F.substring(digest, a, b) for a, b in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
    )
    stamp = F.lit(occurred).cast("timestamp")
    return spark.range(start, start + count).select(
        event_id.alias("event_id"),
        F.lit(ENTITY.name).alias("aggregate_type"),
        (n + 1).cast("string").alias("aggregate_id"),
        F.lit(ENTITY.event_types.created).alias("event_type"),
        F.to_json(F.struct(*[c.alias(k) for k, c in columns.items()]), JSON_OPTIONS).alias(
            "payload"
        ),
        stamp.alias("occurred_at"),
        F.lit(f"bench-full-{commit}").alias("request_id"),
        F.lit("full").alias("replay_mode"),
        F.to_date(stamp).alias("event_date"),
    )


def write_outbox(spark: SparkSession, warehouse: str, events: int, commits: int) -> float:
    """The outbox of ``events`` events in ``commits`` appends (version 0 is its creation, with
    the outbox's properties); returns the mean payload size in bytes."""
    path = Warehouse(warehouse).outbox_of(ENTITY.name)
    per_commit = -(-events // commits)
    for commit in range(commits):
        start = commit * per_commit
        count = min(per_commit, events - start)
        append_once(
            customer_events(spark, start, count, commit),
            path,
            OUTBOX_SCHEMA,
            f"bench-publish/outbox/{commit}",
            OUTBOX_PARTITIONS,
            OUTBOX_PROPERTIES,
        )
    row = spark.read.format("delta").load(path).agg(F.count("*"), F.avg(F.length("payload")))
    counted, mean = row.first() or (0, 0.0)
    if counted != events:
        raise SystemExit(f"the outbox holds {counted} events, not {events}")
    return float(mean)


# -- timing ----------------------------------------------------------------------------------------


@dataclass
class Step:
    calls: int = 0
    seconds: float = 0.0
    cpu: float = 0.0


@dataclass
class Profile:
    """Wall and CPU time of wrapped functions, by call path (the publisher's foreachBatch runs on
    a py4j callback thread while the main thread waits in ``awaitTermination``: one at a time)."""

    steps: dict[tuple[str, ...], Step] = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)
    restore: list[tuple[Any, str, Any]] = field(default_factory=list)

    def wrap(self, owner: Any, name: str, label: str | None = None) -> None:
        original = getattr(owner, name)
        shown = label or name

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.stack.append(shown)
            path = tuple(self.stack)
            cpu, started = cpu_seconds() or 0.0, time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                step = self.steps.setdefault(path, Step())
                step.calls += 1
                step.seconds += time.perf_counter() - started
                step.cpu += (cpu_seconds() or 0.0) - cpu
                self.stack.pop()

        setattr(owner, name, timed)
        self.restore.append((owner, name, original))

    def reset(self) -> None:
        self.steps, self.stack = {}, []

    def unwrap(self) -> None:
        for owner, name, original in reversed(self.restore):
            setattr(owner, name, original)


PROFILED_TEXT_WRITE = "Spark job: envelope JSON, hashed by aggregate, each part sorted, text write"
#: What the profile times, in the publisher's order.
PROFILED = (
    (publish_module, "publish_entity", None),
    (publish_module, "acquire_lease", None),
    (RunsLedger, "start", "ledger.start (append)"),
    (publish_module, "_abandon_dead_runs", None),
    (publish_module, "table_exists", None),
    (publish_module, "change_feed_on", None),
    (publish_module, "_change_feed_from_start", "_change_feed_from_start (history)"),
    (publish_module, "stream_outbox", None),
    (publish_module, "publish_batch", None),
    (publish_module, "unresolved_aggregates", None),
    (publish_module, "_tally", "_tally (per-request counts, narrow columns)"),
    (publish_module, "send", None),
    (publish_module, "write_jsonl", None),
    (DataFrameWriter, "text", PROFILED_TEXT_WRITE),
    (publish_module, "_next_sequence", None),
    (publish_module, "_checkpoint_id", None),
    (publish_module, "append_once", "append_once (dead letters)"),
    (delta_tables, "ensure_table", "ensure_table (creates dead_letter/<entity> the first time)"),
    (publish_module, "_account", "_account (per-request totals)"),
    (RunsLedger, "record", "ledger.record (MERGE)"),
    (publish_module, "_report", None),
)
#: The timings of the file-sink publish being measured (its wrappers are installed by main).
PROFILE = Profile()
#: What the time of a step not covered by its timed children is spent on.
REST = {
    "publish_outbox": "argument parsing, logging setup",
    "publish_entity": "the run record and context, the summary line",
    "stream_outbox": "query start, offsets (Delta log), planning, commit of each batch",
    "publish_batch": "the batch's plan",
    "send": "outcomes frame (lazy)",
    "write_jsonl": "listing, the part files joined into one (driver), rename, staging deleted",
    "append_once (dead letters)": "outcomes computed and cached (a pass over the batch), an "
    "append of no rows committed",
}


@dataclass(frozen=True)
class Measured:
    label: str
    events: int
    seconds: float
    cpu: float


def timed(label: str, events: int, action: Callable[..., object], *args: Any) -> Measured:
    """Wall and CPU time (this process and its descendants: the JVM, its Python workers) of
    ``action(*args)``, which handles ``events``."""
    cpu, started = cpu_seconds() or 0.0, time.perf_counter()
    action(*args)
    return Measured(label, events, time.perf_counter() - started, (cpu_seconds() or 0.0) - cpu)


def median_of(runs: Sequence[Measured]) -> Measured:
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


# -- the ceiling -----------------------------------------------------------------------------------


def stream_change_feed(spark: SparkSession, outbox: str, checkpoint: str, events: int) -> None:
    """The publisher's reader (change feed from version 0, ``availableNow``, ``foreachBatch``),
    each batch merely read: every column into the ``noop`` sink. It must read ``events`` rows."""
    query = (
        spark.readStream.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", 0)
        .load(outbox)
        .writeStream.queryName("bench-ceiling")
        .foreachBatch(lambda batch, _: batch.write.format("noop").mode("overwrite").save())
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    read = sum(int(progress["numInputRows"]) for progress in query.recentProgress)
    if read != events:
        raise SystemExit(f"the streaming read saw {read} rows, not {events}")


def batch_change_feed(spark: SparkSession, outbox: str) -> None:
    frame = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", 0)
        .load(outbox)
    )
    frame.write.format("noop").mode("overwrite").save()


def hashed_change_feed(spark: SparkSession, outbox: str) -> None:
    """Every value of every row read (hashed): ``noop`` alone lets the scan skip the payload's
    bytes, which any sink must touch."""
    frame = (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", 0)
        .load(outbox)
    )
    frame.select(F.xxhash64(*frame.columns).alias("hash")).write.format("noop").mode(
        "overwrite"
    ).save()


def plain_read(spark: SparkSession, outbox: str) -> None:
    spark.read.format("delta").load(outbox).write.format("noop").mode("overwrite").save()


def stream_to_jsonl(spark: SparkSession, outbox: str, checkpoint: str, folder: str) -> None:
    """The file sink's own work without the publisher's bookkeeping: the same reader, each batch
    written by ``write_jsonl`` in delivery order (no lease, ledger, dead letters or totals)."""

    def write(batch: DataFrame, batch_id: int) -> None:
        events = batch.select(
            *publish_module.EVENT_COLUMNS,
            F.col("_commit_version").alias("outbox_version"),
            publish_module.version_of(ENTITY).alias("entity_version"),
        )
        write_jsonl(events, folder, f"batch-{batch_id:08d}", publish_module.delivery_order())

    query = (
        spark.readStream.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", 0)
        .load(outbox)
        .writeStream.queryName("bench-jsonl-only")
        .foreachBatch(write)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()


# -- publishing ------------------------------------------------------------------------------------


@dataclass
class Captured:
    """The run's ``PublishTotals`` (calls and bytes per call), handed to the publish module's
    ``_report`` at the end of an entity's run."""

    totals: Any = None


def capture_totals(captured: Captured) -> Callable[[], None]:
    original = publish_module._report

    def report(context: Any) -> None:
        captured.totals = context.totals
        original(context)

    publish_module._report = report

    def restore() -> None:
        publish_module._report = original

    return restore


def fresh_warehouse(template: str, scratch: Path, name: str) -> str:
    """A copy of the warehouse (its outbox only): each publish is the first of that backlog."""
    target = scratch / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target)
    return str(target)


def publish(spark: SparkSession, warehouse: str, sink: str, run_id: str) -> None:
    argv = ["publish_outbox", "--warehouse", warehouse, "--sink", sink, "--JOB_RUN_ID", run_id]
    # The publisher's progress lines go to stderr with ours: stdout keeps only the tables.
    with contextlib.redirect_stdout(sys.stderr):
        code = run_publish_job(argv, [PIPELINE], spark=spark)
    if code != 0:
        raise SystemExit(f"publish_outbox {sink} exited with {code}")


def ledger_row(spark: SparkSession, warehouse: str, run_id: str) -> dict[str, Any]:
    path = Warehouse(warehouse).runs_of("publish", ENTITY.name)
    rows = (
        spark.read.format("delta")
        .load(path)
        .where((F.col("run_id") == run_id) & (F.col("request_id") == run_id))
        .collect()
    )
    if len(rows) != 1:
        raise SystemExit(f"publish run {run_id}: {len(rows)} ledger rows, not 1")
    return rows[0].asDict()


def check_delivered(row: dict[str, Any], events: int) -> None:
    if row["status"] != "succeeded" or row["rows_delivered"] != events:
        raise SystemExit(
            f"publish run {row['run_id']}: {row['status']}, {row['rows_delivered']} of {events} "
            f"delivered, {row['rows_dead_lettered']} dead-lettered ({row['error']})"
        )


def published_lines(folder: Path) -> int:
    lines = 0
    for path in folder.rglob("*.jsonl"):
        with path.open("rb") as handle:
            lines += sum(1 for _ in handle)
    return lines


@dataclass(frozen=True)
class FilePublish:
    """One file-sink publish of the whole backlog: end to end, its streaming part, its
    micro-batches, and the profile of its steps."""

    end_to_end: Measured
    streaming: Measured
    batches: Measured
    per_event: Measured
    steps: dict[tuple[str, ...], Step]


def _part(label: str, events: int, steps: dict[tuple[str, ...], Step]) -> Measured:
    chosen = [step for path, step in steps.items() if path[-1] == label]
    return Measured(label, events, sum(s.seconds for s in chosen), sum(s.cpu for s in chosen))


def publish_to_files(
    spark: SparkSession, template: str, scratch: Path, events: int, run: int, profile: Profile
) -> FilePublish:
    warehouse = fresh_warehouse(template, scratch, "publish-file")
    folder = scratch / "publish-file" / "published"
    run_id = f"bench-file-{run}"
    profile.reset()
    profile.stack.append("publish_outbox")
    try:
        whole = timed("publish_outbox", events, publish, spark, warehouse, f"file:{folder}", run_id)
    finally:
        profile.stack.pop()
    steps = dict(profile.steps)
    steps[("publish_outbox",)] = Step(1, whole.seconds, whole.cpu)
    check_delivered(ledger_row(spark, warehouse, run_id), events)
    lines = published_lines(folder)
    if lines != events:
        raise SystemExit(f"the file sink wrote {lines} lines, not {events}")
    batches = _part("publish_batch", events, steps)
    # What grows with the events: the batch cached (the part of publish_batch outside its timed
    # steps) and the JSONL Spark job; the rest is per batch or per run.
    timed_children = [
        step for path, step in steps.items() if len(path) >= 2 and path[-2] == "publish_batch"
    ]
    jsonl = _part(PROFILED_TEXT_WRITE, events, steps)
    per_event = Measured(
        "batch read + JSONL write",
        events,
        batches.seconds - sum(s.seconds for s in timed_children) + jsonl.seconds,
        batches.cpu - sum(s.cpu for s in timed_children) + jsonl.cpu,
    )
    return FilePublish(whole, _part("stream_outbox", events, steps), batches, per_event, steps)


# -- the AWS sinks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsResult:
    sink: str
    events: int
    ledger_calls: int
    call_bytes: list[int]
    limits: BatchLimits
    estimated_bytes: int
    seconds: float


def aws_sinks(endpoint: str) -> list[tuple[str, str]]:
    """Create the four destinations on moto; (label, sink URI) each."""
    import boto3

    boto3.client("kinesis").create_stream(StreamName=AWS_TARGET, ShardCount=4)
    queue = boto3.client("sqs").create_queue(
        QueueName=f"{AWS_TARGET}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    topic = boto3.client("sns").create_topic(Name=AWS_TARGET)["TopicArn"]
    boto3.client("events").create_event_bus(Name=AWS_TARGET)
    return [
        ("Kinesis PutRecords (4 shards)", f"kinesis:{AWS_TARGET}"),
        ("SQS SendMessageBatch (FIFO)", f"sqs:{queue}"),
        ("SNS PublishBatch (standard)", f"sns:{topic}"),
        ("EventBridge PutEvents", f"eventbridge:{AWS_TARGET}"),
    ]


@contextlib.contextmanager
def emptied(queue_url: str | None) -> Iterator[None]:
    """Empty the queue twice a second while the job sends, as a consumer keeping up would.
    moto's SQS walks every message a queue holds several times per message sent, so a queue left
    to fill up makes each call slower than the last (~4 s per call once it held 2,000 messages,
    on the 2-vCPU VM). ``moto_server`` runs with
    ``MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR=false`` (no 60 s between purges). Delivery
    is checked on the ledger, as for the other sinks."""
    if queue_url is None:
        yield
        return
    import boto3

    stop = threading.Event()

    def purge() -> None:
        sqs = boto3.session.Session().client("sqs")
        while not stop.wait(0.5):
            sqs.purge_queue(QueueUrl=queue_url)

    purger = threading.Thread(target=purge, name="bench-sqs-purge", daemon=True)
    purger.start()
    try:
        yield
    finally:
        stop.set()
        purger.join(timeout=60)


def wire_bytes(spark: SparkSession, warehouse: str, spec: SinkSpec) -> int:
    """Every event's size as ``spec``'s API counts it (the sink's own ``size_of``), summed."""
    sink = open_sink(spec)
    rows = spark.read.format("delta").load(Warehouse(warehouse).outbox_of(ENTITY.name)).collect()
    return sum(
        sink.size_of(
            Event(
                r["event_id"],
                r["aggregate_type"],
                r["aggregate_id"],
                r["event_type"],
                r["payload"],
                r["occurred_at"],
                r["request_id"],
                r["replay_mode"],
            )
        )
        for r in rows
    )


def bench_aws(spark: SparkSession, scratch: Path, events: int, commits: int) -> list[AwsResult]:
    template = str(scratch / "aws-template")
    write_outbox(spark, template, events, commits)
    results: list[AwsResult] = []
    os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"  # see emptied()
    with running_moto_server(scratch) as endpoint:
        environment = {**FAKE_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint}
        os.environ.update(environment)
        spark.sparkContext.environment.update(environment)  # the Python workers send
        say(f"moto_server at {endpoint}")
        captured = Captured()
        restore = capture_totals(captured)
        try:
            for label, sink in aws_sinks(endpoint):
                kind = sink.split(":", 1)[0]
                warehouse = fresh_warehouse(template, scratch, f"aws-{kind}")
                run_id = f"bench-{kind}"
                captured.totals = None
                with emptied(sink.split(":", 1)[1] if kind == "sqs" else None):
                    seconds = timed(label, events, publish, spark, warehouse, sink, run_id).seconds
                row = ledger_row(spark, warehouse, run_id)
                check_delivered(row, events)
                found = re.search(r"(\d+) API calls", row["note"] or "")
                spec = SinkSpec(kind, sink.split(":", 1)[1])
                results.append(
                    AwsResult(
                        label,
                        events,
                        int(found.group(1)) if found else -1,
                        list(captured.totals.call_bytes) if captured.totals else [],
                        open_sink(spec).limits,
                        wire_bytes(spark, warehouse, spec),
                        seconds,
                    )
                )
                say(f"{label}: {events} events, ledger note {row['note']!r}, {seconds:.1f}s")
        finally:
            restore()
            for key in environment:
                spark.sparkContext.environment.pop(key, None)
    return results


# -- report ----------------------------------------------------------------------------------------


def render(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A Markdown table: numbers right-aligned."""
    numeric = [
        all(re.match(r"^[\d.,x%-]", row[i] or "-") for row in body) for i in range(len(header))
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def throughput_table(rows: Sequence[tuple[str, Measured]], ceiling: Measured) -> str:
    rate = ceiling.events / ceiling.seconds
    return render(
        ["what", "events", "seconds", "CPU s", "cores busy", "events/s", "x ceiling"],
        [
            [
                label,
                f"{m.events:,}",
                f"{m.seconds:.2f}",
                f"{m.cpu:.1f}",
                f"{m.cpu / m.seconds:.1f}",
                f"{m.events / m.seconds:,.0f}",
                f"{m.events / m.seconds / rate:.2f}x",
            ]
            for label, m in rows
        ],
    )


def profile_table(steps: dict[tuple[str, ...], Step]) -> str:
    run = steps[("publish_outbox",)].seconds
    body: list[list[str]] = []

    def emit(path: tuple[str, ...]) -> None:
        step = steps[path]
        depth = len(path) - 1
        body.append(
            [
                "· " * depth + path[-1],
                f"{step.calls}",
                f"{step.seconds:.2f}",
                f"{step.cpu:.1f}",
                f"{step.seconds / run:.0%}",
            ]
        )
        children = [p for p in steps if len(p) == len(path) + 1 and p[: len(path)] == path]
        for child in children:
            emit(child)
        if children and path[-1] in REST:
            rest = step.seconds - sum(steps[c].seconds for c in children)
            rest_cpu = step.cpu - sum(steps[c].cpu for c in children)
            body.append(
                [
                    "· " * (depth + 1) + f"(rest: {REST[path[-1]]})",
                    "",
                    f"{rest:.2f}",
                    f"{rest_cpu:.1f}",
                    f"{rest / run:.0%}",
                ]
            )

    emit(("publish_outbox",))
    return render(["step", "calls", "seconds", "CPU s", "share of run"], body)


def aws_table(results: Sequence[AwsResult]) -> str:
    body = []
    for r in results:
        calls = r.ledger_calls
        sizes = r.call_bytes
        mean_bytes = statistics.mean(sizes) if sizes else r.estimated_bytes / max(calls, 1)
        body.append(
            [
                r.sink,
                f"{r.events:,}",
                f"{calls:,}" + ("" if len(sizes) == calls else f" ({len(sizes)} in totals)"),
                f"{mean_bytes:,.0f}",
                f"{max(sizes):,}" if sizes else "n/a",
                f"{r.limits.max_call_bytes:,}",
                f"{(max(sizes) if sizes else mean_bytes) / r.limits.max_call_bytes:.1%}",
                f"{r.events / calls:.1f}",
                f"{r.limits.max_records}",
                f"{r.estimated_bytes / calls:,.0f}",
                f"{r.seconds:.1f}",
            ]
        )
    return render(
        [
            "sink (API)",
            "events",
            "API calls",
            "mean B/call",
            "max B/call",
            "B limit/call",
            "max/limit",
            "mean records/call",
            "record limit/call",
            "est. B/call",
            "s on moto",
        ],
        body,
    )


def bench_files(
    spark: SparkSession,
    scratch: Path,
    options: argparse.Namespace,
    outbox: str,
    files: int,
    mean_payload: float,
) -> str:
    """The ceiling reads and the file-sink publish, interleaved; their report."""
    profile = PROFILE
    runs: dict[str, list[Measured]] = {}
    publishes: list[FilePublish] = []
    template = str(Path(outbox).parents[1])
    for repeat in range(options.repeats + 1):
        measured = [
            timed(
                "ceiling: change feed, streaming availableNow -> foreachBatch(noop)",
                options.events,
                stream_change_feed,
                spark,
                outbox,
                str(scratch / f"ceiling-checkpoint-{repeat}"),
                options.events,
            ),
            timed(
                "change feed, batch read -> noop", options.events, batch_change_feed, spark, outbox
            ),
            timed("plain Delta read -> noop", options.events, plain_read, spark, outbox),
            timed(
                "change feed, batch read, every value hashed (xxhash64) -> noop",
                options.events,
                hashed_change_feed,
                spark,
                outbox,
            ),
            timed(
                "change feed, streaming -> foreachBatch(write_jsonl), no bookkeeping",
                options.events,
                stream_to_jsonl,
                spark,
                outbox,
                str(scratch / f"jsonl-checkpoint-{repeat}"),
                str(scratch / f"jsonl-{repeat}"),
            ),
        ]
        result = publish_to_files(spark, template, scratch, options.events, repeat, profile)
        say(
            f"{f'run {repeat}' if repeat else 'warm-up'}: "
            + ", ".join(f"{m.label.split(':')[0]} {m.seconds:.2f}s" for m in measured)
            + f"; file publish {result.end_to_end.seconds:.2f}s "
            f"(batches {result.batches.seconds:.2f}s)"
        )
        if repeat:
            for m in measured:
                runs.setdefault(m.label, []).append(m)
            publishes.append(result)

    medians = [median_of(found) for found in runs.values()]
    ceiling = medians[0]
    chosen = sorted(publishes, key=lambda p: p.end_to_end.seconds)[len(publishes) // 2]
    rows = [
        *((m.label, m) for m in medians),
        ("publish_outbox -> file sink, end to end", chosen.end_to_end),
        ("... stream_outbox only (no lease, ledger start/end, outbox checks)", chosen.streaming),
        ("... micro-batches only (foreachBatch: send, dead letters, ledger)", chosen.batches),
        ("... batch read + JSONL write only (no dead letters, totals, ledger)", chosen.per_event),
    ]
    batches = sum(s.calls for p, s in chosen.steps.items() if p[-1] == "publish_batch")
    ratio = ceiling.seconds / chosen.end_to_end.seconds
    cores = os.cpu_count() or 2
    return "\n".join(
        [
            f"glue-replay publish benchmark | Spark {spark.version} | Delta "
            f"{version('delta-spark')} | local[{cores}] | {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
            f"| load average {os.getloadavg()[0]:.1f} (a shared machine: expect noise)",
            f"outbox: {options.events:,} customer events in {options.commits} commits, {files} "
            f"files, mean payload {mean_payload:.0f} B, written directly as Delta (not through "
            f"ingest/normalize); median of {options.repeats} (+1 warm-up); each publish on a "
            f"fresh copy of the warehouse (its first publish: {batches} micro-batch(es))",
            "",
            throughput_table(rows, ceiling),
            "",
            f"file sink end to end / ceiling: {ratio:.2f}x (the issue's target: >= 0.5x: "
            f"{'met' if ratio >= 0.5 else 'NOT met'})",
            "",
            "where the median file-sink publish spends its time (wrapped functions, nested; CPU s "
            "= the driver, the JVM and its Python workers):",
            "",
            profile_table(chosen.steps),
        ]
    )


def bench_scale(
    spark: SparkSession, scratch: Path, sizes: Sequence[int], commits: int, repeats: int
) -> str:
    """The ceiling and the file-sink publish at larger backlogs (one outbox per size): how the
    ratio moves once the run's fixed costs (lease, ledger commits) are spread over more events."""
    body = []
    for events in sizes:
        template = str(scratch / f"scale-{events}")
        started = time.perf_counter()
        write_outbox(spark, template, events, commits)
        say(f"scale: {events:,} events written in {time.perf_counter() - started:.1f}s")
        outbox = Warehouse(template).outbox_of(ENTITY.name)
        ceilings, hashed, publishes = [], [], []
        for repeat in range(repeats + 1):
            every_value = timed("hashed", events, hashed_change_feed, spark, outbox)
            ceiling = timed(
                "ceiling",
                events,
                stream_change_feed,
                spark,
                outbox,
                str(scratch / f"scale-{events}-ceiling-{repeat}"),
                events,
            )
            result = publish_to_files(spark, template, scratch, events, 100 + repeat, PROFILE)
            say(
                f"scale {events:,} {'run ' + str(repeat) if repeat else 'warm-up'}: ceiling "
                f"{ceiling.seconds:.2f}s, publish {result.end_to_end.seconds:.2f}s"
            )
            if repeat:
                ceilings.append(ceiling)
                hashed.append(every_value)
                publishes.append(result)
        shutil.rmtree(template, ignore_errors=True)
        ceiling, every_value = median_of(ceilings), median_of(hashed)
        chosen = sorted(publishes, key=lambda p: p.end_to_end.seconds)[len(publishes) // 2]
        fixed = chosen.end_to_end.seconds - chosen.streaming.seconds
        body.append(
            [
                f"{events:,}",
                f"{ceiling.seconds:.2f}",
                f"{every_value.seconds:.2f}",
                f"{chosen.end_to_end.seconds:.2f}",
                f"{chosen.streaming.seconds:.2f}",
                f"{fixed:.2f}",
                f"{events / chosen.end_to_end.seconds:,.0f}",
                f"{ceiling.seconds / chosen.end_to_end.seconds:.2f}x",
                f"{ceiling.seconds / chosen.streaming.seconds:.2f}x",
                f"{every_value.seconds / chosen.end_to_end.seconds:.2f}x",
            ]
        )
    return render(
        [
            "events",
            "ceiling s",
            "every value hashed s",
            "publish end to end s",
            "stream_outbox s",
            "run's fixed s (lease, ledger, checks)",
            "events/s end to end",
            "end to end x ceiling",
            "stream_outbox x ceiling",
            "end to end x every value hashed",
        ],
        body,
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="measured rounds after 1 warm-up")
    parser.add_argument("--aws-events", type=int, default=5_000)
    parser.add_argument("--no-aws", action="store_true", help="skip the AWS sinks on moto")
    parser.add_argument(
        "--scale",
        default="",
        help="larger backlogs to measure the ceiling and the end-to-end publish at, e.g. "
        "400000,1000000 (default: none)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the warehouses and print where")
    options = parser.parse_args(argv)
    if options.repeats < 1 or options.events < 1 or options.commits < 1:
        parser.error("--events, --commits and --repeats must be at least 1")
    try:
        scale = [int(size.replace("_", "")) for size in options.scale.split(",") if size.strip()]
    except ValueError:
        parser.error(f"--scale: {options.scale!r} is not a comma-separated list of event counts")

    scratch = Path(tempfile.mkdtemp(prefix="glue-replay-bench-publish-"))
    cores = os.cpu_count() or 2
    load_before = os.getloadavg()
    say(f"{options.events:,} events in {options.commits} commits; warehouses under {scratch}")
    spark = build_spark_session(
        "glue-replay-bench-publish",
        extra_settings={
            "spark.master": f"local[{cores}]",
            "spark.sql.shuffle.partitions": str(cores),
            "spark.default.parallelism": str(cores),
            "spark.databricks.delta.snapshotPartitions": "1",
            "spark.databricks.delta.autoCompact.enabled": "false",
            "spark.driver.memory": "4g",
        },
    )
    say(f"spark {spark.version} ready")
    profile = PROFILE
    for owner, name, label in PROFILED:
        profile.wrap(owner, name, label)
    try:
        template = str(scratch / "template")
        started = time.perf_counter()
        mean_payload = write_outbox(spark, template, options.events, options.commits)
        outbox = Warehouse(template).outbox_of(ENTITY.name)
        files = len(list(Path(outbox).rglob("*.parquet")))
        say(
            f"outbox written in {time.perf_counter() - started:.1f}s: {files} parquet files, "
            f"mean payload {mean_payload:.0f} bytes"
        )
        cdf_rows = (
            spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", 0)
            .load(outbox)
            .count()
        )
        if cdf_rows != options.events:
            raise SystemExit(f"the change feed holds {cdf_rows} rows, not {options.events}")

        print(bench_files(spark, scratch, options, outbox, files, mean_payload), flush=True)
        if scale:
            print(
                f"\nlarger backlogs ({options.commits} commits each; median of "
                f"{options.repeats} after a warm-up): the run's fixed costs spread over more "
                "events\n"
            )
            print(bench_scale(spark, scratch, scale, options.commits, options.repeats), flush=True)
        if not options.no_aws:
            say(f"AWS sinks: {options.aws_events:,} events each on moto_server")
            aws = bench_aws(spark, scratch, options.aws_events, 5)
            print(
                f"\nAWS sinks on moto_server: {options.aws_events:,} events each, one event per "
                "aggregate (calls are cut by record and byte limits only); API calls from the "
                "ledger note, bytes per call from PublishTotals.call_bytes; est. = the events' "
                "bytes (the sink's size_of) / API calls; moto's speed is not AWS's\n"
            )
            print(aws_table(aws))
    finally:
        profile.unwrap()
        spark.stop()
        if options.keep:
            say(f"warehouses kept under {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"\ntotal run time: {time.monotonic() - STARTED:.0f}s; load average "
        f"{load_before[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
