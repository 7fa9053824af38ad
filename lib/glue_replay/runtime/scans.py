"""What a block of Spark SQL work read, per table: data files and bytes, from Spark's own metrics.

A replay should cost what it touches. This module measures what it touched: for every file scan
that ran on the session's Spark application while a ``with`` block was open, Spark's own scan
metrics (``number of files read`` and ``size of files read`` of ``FileSourceScanExec``, counted
after partition pruning and Delta's data skipping), added up per table. Delta's reads of its own
``_delta_log`` (commits and checkpoints) are left out; every other scan of a table counts, also
those Delta runs inside a MERGE (finding the files that match, then rewriting them), which are
the point::

    with ScanRecorder(spark) as scans:
        run_normalize(spark, args, entity)
    scans.files_read(warehouse.raw("invoices"))    # data files read from raw, all scans added
    scans.bytes_read(warehouse.normalized("invoices"))
    scans.by_table()                                # {table path: TableScans(files, bytes, scans)}
    scans.executions                                # SQL executions the block started
    scans.descriptions                              # what each is called (a run's phase)

Where the numbers come from: Spark's SQL status store (what the SQL tab of the UI shows, kept
also with the UI off): the plan graph of each SQL execution started in the block, nested ones
included, and the metric values of its scan nodes, read through py4j after the listener bus has
delivered every event. So this works on a classic session (local, a cluster, AWS Glue), not on a
Spark Connect client, and on Spark 3.5 and 4.1 alike.

What to know:

- **Everything on the application counts**: executions started by other threads during the
  block, on any session of the same ``SparkContext``, are counted too. Measure one thing at a
  time.
- **Bytes are as Spark renders them**: the status store keeps the metric as text (``7.8 KiB``),
  to one decimal of its unit, so a scan's bytes are exact below 2 KiB and within 0.05 of the
  unit shown above (under 2.5 %). File counts are exact.
- **Locations must be whole**: a scan's table is the location in its description, which Spark
  shortens to ``spark.sql.maxMetadataStringLength`` characters (100 by default). The recorder
  raises that setting on the session for the block and restores it after; a scan planned by
  another session (with the short default) and a path the session redacts
  (``spark.sql.redaction.string.regex``) cannot be attributed: :class:`ScanMetricsError`.
- **The store forgets**: it keeps the last ``spark.sql.ui.retainedExecutions`` executions (1000
  by default, a setting of the session's start). A block that runs more than that raises
  :class:`ScanMetricsError` instead of undercounting.
- **File scans only**: Delta and Spark's built-in file formats plan ``FileSourceScanExec``;
  DataSource V2 file scans, JDBC and cached data read no files in this sense and are not
  counted. A query that reuses a cached result still shows the scan that filled the cache in
  its plan: Spark reports that scan as not run (left out here) with generated code, and as 0
  files when expressions are interpreted (``spark.sql.codegen.factoryMode=NO_CODEGEN``).
- **Paths**: tables are keyed by their root path without a trailing ``/``: local paths as
  absolute paths without ``file:`` (``file:/w/raw`` and ``/w/raw`` are one table); ``s3a://``
  and ``s3n://`` spelled ``s3://`` (one bucket, one table, as Glue and :mod:`glue_replay.runtime`
  read them all through S3A). :func:`table_key` gives a path's key.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from glue_replay.errors import GlueReplayError

#: The scan node metrics read: data files read (after pruning and skipping), and their size.
FILES_METRIC = "number of files read"
BYTES_METRIC = "size of files read"
#: How long a location may get in a plan's description; raised for the block.
LOCATION_LENGTH_SETTING = "spark.sql.maxMetadataStringLength"
WHOLE_LOCATIONS = str(2**31 - 1)
#: How long to wait for the listener bus to deliver the block's events (Spark's default is 10 s).
DRAIN_TIMEOUT_MS = 120_000
#: Reads of the status store's newest execution before giving up (it trims itself meanwhile).
STORE_READ_ATTEMPTS = 10
#: Delta's own log folder: reads under it are the table's metadata, not its data.
DELTA_LOG = "_delta_log"

#: A scan's ``Location`` metadata runs to the next ``, Key: `` of its description (or its end).
_LOCATION_VALUE = re.compile(r"Location: (?P<value>.*?)(?=, [A-Z]\w*: |$)", re.DOTALL)
_LOCATION = re.compile(r"(?P<index>[^\s(]+)\((?P<count>\d+) paths\)\[(?P<paths>.*)\]", re.DOTALL)
#: ``1,234`` or ``7.8 KiB``: a number as Spark's metrics render it, with an optional size unit.
_RENDERED = re.compile(r"^\s*(?P<number>\d[\d,]*(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*(?P<unit>\w+)?")
_UNITS: dict[str, int] = {
    unit: 1 << (10 * power)
    for power, unit in enumerate(("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"))
}


class ScanMetricsError(GlueReplayError):
    """Spark's scan metrics of a block could not be read completely or attributed to a table."""


@dataclass(frozen=True)
class FileScan:
    """One file scan node of one SQL execution, as it ran."""

    execution_id: int
    #: The table's root path (see :func:`table_key`).
    table: str
    #: The file index it listed: ``PreparedDeltaFileIndex`` (a Delta read),
    #: ``TahoeBatchFileIndex`` (files a Delta command chose, e.g. a MERGE), ...
    file_index: str
    files: int
    bytes: int


@dataclass(frozen=True)
class TableScans:
    """What a block read from one table: data files and bytes, summed over its ``scans``."""

    files: int = 0
    bytes: int = 0
    scans: int = 0


class ScanRecorder:
    """Records the data files every SQL execution in a ``with`` block read, per table.

    The results are there once the block has exited (also when it raised).

        with ScanRecorder(spark) as scans: spark.read.format("delta").load(p).where(...).count()
        -> scans.files_read(p) == 1, scans.by_table() == {p: TableScans(1, 2560, 1)}
    """

    def __init__(self, spark: SparkSession) -> None:
        self._spark = spark
        self._store: Any = None
        self._before: int | None = None
        self._saved_length: str | None = None
        self._scans: tuple[FileScan, ...] | None = None
        self._executions: int | None = None
        self._descriptions: tuple[str, ...] | None = None

    def __enter__(self) -> ScanRecorder:
        if self._before is not None:
            raise ScanMetricsError("a ScanRecorder records one block; make a new one")
        jsession = self._spark._jsparkSession
        self._store = jsession.sharedState().statusStore()
        self._drain()
        self._before = _last_execution_id(self._store)
        self._saved_length = self._spark.conf.get(LOCATION_LENGTH_SETTING)
        self._spark.conf.set(LOCATION_LENGTH_SETTING, WHOLE_LOCATIONS)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._saved_length is not None:
            self._spark.conf.set(LOCATION_LENGTH_SETTING, self._saved_length)
        try:
            self._drain()
            before, last = self._before, _last_execution_id(self._store)
            assert before is not None  # set by __enter__
            self._scans = tuple(self._collect(before, last))
            self._executions = last - before
            self._descriptions = tuple(
                str(self._store.execution(execution).get().description())
                for execution in range(before + 1, last + 1)
            )
        except Exception:
            if exc_type is None:
                raise
            # The block's own error matters more: leave the results unread.

    @property
    def scans(self) -> tuple[FileScan, ...]:
        """Every data file scan of the block, in execution order."""
        if self._scans is None:
            raise ScanMetricsError(
                "the scans are known once the `with ScanRecorder(spark)` block has exited"
            )
        return self._scans

    @property
    def executions(self) -> int:
        """How many SQL executions the block started, nested ones included (Delta's own reads
        of its log and the parts of a MERGE are executions too): each is planned and compiles
        its own code, so this is what a block's fixed cost grows with, whatever its rows."""
        if self._executions is None:
            raise ScanMetricsError(
                "the executions are known once the `with ScanRecorder(spark)` block has exited"
            )
        return self._executions

    @property
    def descriptions(self) -> tuple[str, ...]:
        """What each SQL execution of the block is called, in order: the job description set
        when it started (a run's phase, see :mod:`glue_replay.runtime.phases`; Delta prefixes
        its own with ``Delta: ``), else the call site Spark names it after."""
        if self._descriptions is None:
            raise ScanMetricsError(
                "the descriptions are known once the `with ScanRecorder(spark)` block has exited"
            )
        return self._descriptions

    def by_table(self) -> dict[str, TableScans]:
        """Files, bytes and scans per table (its :func:`table_key`), sorted by table."""
        totals: dict[str, TableScans] = {}
        for scan in self.scans:
            seen = totals.get(scan.table, TableScans())
            totals[scan.table] = TableScans(
                seen.files + scan.files, seen.bytes + scan.bytes, seen.scans + 1
            )
        return dict(sorted(totals.items()))

    def of(self, path: str) -> TableScans:
        """What the block read from the table at ``path`` (all zero if it was not read)."""
        return self.by_table().get(table_key(path), TableScans())

    def files_read(self, path: str) -> int:
        """The data files read from the table at ``path``, summed over every scan of it."""
        return self.of(path).files

    def bytes_read(self, path: str) -> int:
        """The bytes of data files read from the table at ``path``, as Spark renders them."""
        return self.of(path).bytes

    def _drain(self) -> None:
        """Wait until the listener bus has delivered every event posted so far."""
        bus = self._spark.sparkContext._jsc.sc().listenerBus()
        try:
            bus.waitUntilEmpty(DRAIN_TIMEOUT_MS)
        except Py4JJavaError as error:
            raise ScanMetricsError(
                f"Spark's listener bus did not deliver its events in {DRAIN_TIMEOUT_MS} ms: "
                f"{error.java_exception}"
            ) from None

    def _collect(self, before: int, last: int) -> Iterator[FileScan]:
        store = self._store
        lost = [
            execution
            for execution in range(before + 1, last + 1)
            if not store.execution(execution).isDefined()
        ]
        if lost:
            retained = self._spark.conf.get("spark.sql.ui.retainedExecutions")
            raise ScanMetricsError(
                f"Spark's SQL status store no longer holds {len(lost)} of the "
                f"{last - before} SQL executions of the block (it keeps the last "
                f"spark.sql.ui.retainedExecutions={retained}); start the session with a "
                "higher value to measure this block"
            )
        for execution in range(before + 1, last + 1):
            yield from _file_scans(store, execution)


def _last_execution_id(store: Any) -> int:
    """The newest SQL execution's id in the status store (ordered by id), -1 when empty.

    The store trims itself to ``spark.sql.ui.retainedExecutions`` on a thread of its own, so
    executions can go between counting them and reading the last: then it counts again.
    """
    for _ in range(STORE_READ_ATTEMPTS):
        count = int(store.executionsCount())
        if count == 0:
            return -1
        newest = store.executionsList(count - 1, 1)
        if newest.size() > 0:
            return int(newest.apply(0).executionId())
    raise ScanMetricsError(
        f"Spark's SQL status store changed under every one of {STORE_READ_ATTEMPTS} reads of "
        "its newest execution"
    )


def _file_scans(store: Any, execution: int) -> Iterator[FileScan]:
    """The data file scans (not Delta log reads) in the final plan of one execution."""
    nodes = store.planGraph(execution).allNodes()
    found: list[tuple[str, str, dict[str, int]]] = []
    for index in range(nodes.size()):
        node = nodes.apply(index)
        if not str(node.name()).startswith("Scan"):
            continue
        metrics = node.metrics()
        accumulators = {}  # metric name -> the accumulator id its value is kept under
        for position in range(metrics.size()):
            metric = metrics.apply(position)
            accumulators[str(metric.name())] = int(metric.accumulatorId())
        if FILES_METRIC not in accumulators or BYTES_METRIC not in accumulators:
            continue
        file_index, paths = parse_location(str(node.desc()))
        if any(DELTA_LOG in path.split("/") for path in paths):
            continue
        found.append((file_index, ", ".join(table_key(p) for p in paths), accumulators))
    if not found:
        return
    values = _metric_values(store.executionMetrics(execution))
    for file_index, table, accumulators in found:
        files = values.get(accumulators[FILES_METRIC])
        size = values.get(accumulators[BYTES_METRIC])
        if files is None:
            continue  # planned but never run (e.g. replaced by adaptive execution)
        yield FileScan(
            execution_id=execution,
            table=table,
            file_index=file_index,
            files=round(rendered_number(files)),
            bytes=round(rendered_number(size)) if size is not None else 0,
        )


def _metric_values(metrics: Any) -> dict[int, str]:
    """A Scala ``Map[Long, String]`` of accumulator id -> rendered value, as a dict."""
    values: dict[int, str] = {}
    entries = metrics.iterator()
    while entries.hasNext():
        entry = entries.next()
        values[int(entry._1())] = str(entry._2())
    return values


def parse_location(description: str) -> tuple[str, tuple[str, ...]]:
    """A file scan's file index and root paths, from its description in the plan.

    "... Location: PreparedDeltaFileIndex(1 paths)[s3a://lake/raw/invoices], ..."
    -> ("PreparedDeltaFileIndex", ("s3a://lake/raw/invoices",))
    """
    found = _LOCATION_VALUE.search(description)
    if found is None:
        raise ScanMetricsError(f"no Location in the file scan {description[:300]!r}")
    value = found["value"]
    match = _LOCATION.fullmatch(value)
    if match is None or "(redacted)" in value:
        shortened = value.endswith("...") or "(redacted)" in value
        raise ScanMetricsError(
            f"the file scan's location is shortened or redacted ({value[:200]!r}): it was "
            f"planned with {LOCATION_LENGTH_SETTING} below the path's length (by another "
            "session?) or the path matches spark.sql.redaction.string.regex"
            if shortened
            else f"the file scan's location {value[:200]!r} is not 'Index(N paths)[paths]'"
        )
    index, count, listed = match["index"], int(match["count"]), match["paths"]
    paths = (listed,) if count == 1 else tuple(listed.split(", "))
    if len(paths) != count:
        paths = (listed,)  # a path with ", " in it: keep the list whole, as one key
    return index, paths


def table_key(path: str) -> str:
    """The key a table's path is recorded under: one spelling per table.

    "file:///w/raw/invoices/" -> "/w/raw/invoices"
    "s3a://lake/raw/invoices" -> "s3://lake/raw/invoices"
    "warehouse/raw/invoices"  -> "<working directory>/warehouse/raw/invoices"
    """
    text = path.strip()
    scheme, sep, rest = text.partition("://")
    if text.startswith("file:"):
        local = text[len("file:") :]
        if local.startswith("//"):  # file:///path, or file://host/path (the host is this one)
            local = "/" + local[2:].partition("/")[2]
        return posixpath.normpath(local)
    if not sep:
        return posixpath.normpath(posixpath.abspath(text))
    scheme = scheme.lower()
    if scheme in ("s3a", "s3n"):
        scheme = "s3"
    return f"{scheme}://{rest.rstrip('/')}"


def rendered_number(text: str) -> float:
    """A metric value as the status store renders it, as a number (bytes for sizes).

    "1,234" -> 1234; "7.8 KiB" -> 7987.2; "total (min, med, max ...)\\n2.0 MiB (...)" -> 2097152
    """
    line = text.split("\n", 1)[1] if text.startswith("total") and "\n" in text else text
    match = _RENDERED.match(line)
    if match is None:
        raise ScanMetricsError(f"not a metric value: {text!r}")
    number = float(match["number"].replace(",", ""))
    unit = match["unit"]
    if unit is None:
        return number
    if unit not in _UNITS:
        raise ScanMetricsError(f"unknown size unit {unit!r} in metric value {text!r}")
    return number * _UNITS[unit]
