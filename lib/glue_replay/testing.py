"""The conformance kit: does *your* source and entity keep the replay contract (DESIGN §6)?

Run it in your own tests, with real Spark and Delta, against a small copy of your source: it
drives the real job entry points (:func:`~glue_replay.run_ingest_job` and
:func:`~glue_replay.run_normalize_job`, exactly what your ``glue_jobs/*.py`` call) through every
mode in an empty warehouse and checks what each run wrote:

1. ``full``: exit 0 and ``succeeded`` ledger rows; raw holds every known id once;
   ``normalized/<entity>`` holds every good id once; one ``created`` outbox event per good id;
   every bad record in ``quarantine/<entity>`` with a reason, and the run still succeeded;
2. the same request again: no table gains or loses a row;
3. BAU (no ``--replay_mode``), after your ``change_source`` changed a few records: exactly the
   records updated in the BAU window are read (the changed ones among them); only the changed
   ones are emitted, as ``updated``; the watermark is the window's end; the first window is
   ``first_bau_lookback`` long;
4. ``targeted``: exactly the requested ids are read and re-emitted; the id the source does not
   have is in ``missing_ids`` (ingest and normalize) and the run succeeds; the watermark stays;
5. ``since``: exactly the records updated in the window are read; every id selected is
   re-emitted; the watermark stays;
6. the outbox: DESIGN §5's columns and types, ``aggregate_type`` = the entity's name, the
   entity's event types, unique ``event_id`` s, payloads whose key is the ``aggregate_id``; the
   normalized table: the entity's columns and types, one row per key;
7. every run the kit makes: its ledger counts add up, ``rows_read = rows_written +
   rows_unchanged + rows_quarantined`` (nothing it read vanished uncounted).

A failure raises :class:`ConformanceError` (an ``AssertionError``) naming the entity, the check
and every property that did not hold. No pytest import: any test runner works.

Usage, in your tests (``spark`` is your Delta-enabled session fixture, e.g. one built with
``glue_replay.runtime.build_spark_session``)::

    from glue_replay.testing import check_pipeline
    from my_pipelines.products import PIPELINE

    def test_products_conform(spark, tmp_path):
        catalog = write_catalog(tmp_path)              # your source's test data: 5 products
        check_pipeline(
            spark, PIPELINE,
            warehouse=str(tmp_path / "warehouse"),     # must be empty
            job_args=["--catalog_file", str(catalog)], # deployment settings the jobs need
            known_ids=["A-1", "A-2", "A-3", "A-4", "A-5"],  # every id the source has
            bad_ids=["A-4"],                           # must end in quarantine
            missing_id="A-9",                          # valid, but not at the source
            since=date(2025, 7, 1),                    # a window with a few records in it
            change_source=lambda: touch(catalog, ["A-1", "A-2"]),  # -> the ids it changed
        )

The README's "Add your own source and entity" has the complete example. ``change_source``
should change good records only, stamped "now" (in the jobs' clock). Keep the data tiny: the
kit makes ten stage runs (a few seconds each on a laptop).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_replay.entity import Entity
from glue_replay.jobs import Pipeline, run_ingest_job, run_normalize_job
from glue_replay.request import JobArguments, build_job_arguments
from glue_replay.tables import RunRecord, RunsLedger, RunStatus, Warehouse
from glue_replay.tables.delta import table_exists

__all__ = [
    "OUTBOX_CONTRACT",
    "REQUEST_IDS",
    "ConformanceError",
    "ConformanceReport",
    "PipelineConformance",
    "SteppingClock",
    "check_pipeline",
    "job_arguments",
]

#: The request id of each of the kit's requests, so a test can inspect what a step wrote.
REQUEST_IDS: Mapping[str, str] = {
    "full": "conformance-full",
    "bau": "conformance-bau",
    "targeted": "conformance-targeted",
    "since": "conformance-since",
}
#: The outbox's columns and types, as DESIGN §5 states them (written out, not imported: this
#: is the contract the library is checked against).
OUTBOX_CONTRACT: tuple[tuple[str, str], ...] = (
    ("event_id", "string"),
    ("aggregate_type", "string"),
    ("aggregate_id", "string"),
    ("event_type", "string"),
    ("payload", "string"),
    ("occurred_at", "timestamp"),
    ("request_id", "string"),
    ("replay_mode", "string"),
    ("event_date", "date"),
)
_VERDICT_CHARS = 1000
_PYTHON_ERROR = re.compile(r"^(?:[A-Za-z_]\w*\.)*\w*(?:Error|Exception): .+$", re.MULTILINE)


class ConformanceError(AssertionError):
    """A pipeline broke the replay contract: which entity, which check, what did not hold."""

    def __init__(self, entity: str, check: str, problems: Sequence[str]) -> None:
        self.entity, self.check, self.problems = entity, check, tuple(problems)
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"pipeline {entity!r} fails the {check!r} check:\n{listed}")

    def __reduce__(self) -> tuple[type[ConformanceError], tuple[str, str, tuple[str, ...]]]:
        return (type(self), (self.entity, self.check, self.problems))


class SteppingClock:
    """A clock that stands still until told to move: the jobs' (and your fake source's) time.

    Hand the same instance to the kit and to a source whose records are stamped with "now"
    (the bundled sample API takes one); the kit moves it by ``step`` after every stage run, so
    a normalize run always starts after the ingest run it follows.

        clock = SteppingClock(datetime(2026, 6, 1, 12, tzinfo=UTC)); clock.advance(minutes=5)
    """

    def __init__(self, start: datetime, step: timedelta = timedelta(minutes=1)) -> None:
        if start.tzinfo is None:
            raise ValueError(f"SteppingClock needs a timezone-aware start, got {start!r}")
        if step <= timedelta(0):
            raise ValueError(f"SteppingClock step must be positive, got {step}")
        self.now = start.astimezone(UTC)
        self.step = step

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **units: float) -> None:
        """Move on by ``delta``, by ``timedelta(**units)``, or by one ``step``."""
        self.now += delta if delta is not None else (timedelta(**units) if units else self.step)


def job_arguments(
    warehouse: str,
    request_id: str,
    entity: Entity,
    today: date,
    *,
    job_name: str = "test",
    **fields: str,
) -> JobArguments:
    """A job's arguments for one request, through the jobs' own validation (``entity``'s id
    rule, an ``ids_file``), for calling ``run_ingest``/``run_normalize`` in a test or a script.

        job_arguments(root, "t-1", INVOICES, date(2026, 3, 9), replay_mode="targeted", ids="7")
    """
    return build_job_arguments(
        {
            "request_id": request_id,
            "warehouse": warehouse,
            "JOB_NAME": job_name,
            "JOB_RUN_ID": request_id,
            "requested_by": job_name,
            **fields,
        },
        ids=entity.ids,
        today=today,
    )


@dataclass(frozen=True)
class ConformanceReport:
    """What the kit ran: the warehouse it filled, its requests, the checks that passed."""

    entity: str
    warehouse: str
    requests: Mapping[str, str]
    checks: tuple[str, ...]
    changed_ids: tuple[str, ...] = ()
    watermark: datetime | None = None


def check_pipeline(
    spark: SparkSession,
    pipeline: Pipeline,
    *,
    warehouse: str,
    known_ids: Sequence[str],
    missing_id: str,
    since: date,
    bad_ids: Sequence[str] = (),
    until: date | None = None,
    since_ids: Sequence[str] | None = None,
    targeted_ids: Sequence[str] | None = None,
    change_source: Callable[[], Iterable[str]] | None = None,
    job_args: Sequence[str] = (),
    clock: SteppingClock | None = None,
) -> ConformanceReport:
    """Run every check of :class:`PipelineConformance` in order; see the module's docstring.

    ``known_ids``: every id your test source has (keyed records); ``bad_ids``: those whose
    record must be quarantined; ``missing_id``: an id your entity's id rule accepts but the
    source does not have; ``since``/``until``: a ``since`` window (``since_ids``: the ids the
    source returns for it, by default those whose update time, as ingested, is in it);
    ``targeted_ids``: default two good ids and one bad id; ``change_source``: changes a few
    records at the source (update time "now") and returns their ids; ``job_args``: extra
    arguments every job gets (``--source_url``, your pipeline's settings); ``clock``: the jobs'
    clock (default: the wall clock).
    """
    return PipelineConformance(
        spark,
        pipeline,
        warehouse=warehouse,
        known_ids=known_ids,
        missing_id=missing_id,
        since=since,
        bad_ids=bad_ids,
        until=until,
        since_ids=since_ids,
        targeted_ids=targeted_ids,
        change_source=change_source,
        job_args=job_args,
        clock=clock,
    ).run()


@dataclass
class _Problems:
    """The properties one check found broken; raised together at the end of the check."""

    entity: str
    check: str
    found: list[str] = field(default_factory=list)

    def expect(self, holds: bool, problem: str) -> None:
        if not holds:
            self.found.append(problem)

    def equal(self, what: str, actual: object, expected: object) -> None:
        if actual != expected:
            self.found.append(f"{what}: got {actual!r}, expected {expected!r}")

    def raise_if_any(self) -> None:
        if self.found:
            raise ConformanceError(self.entity, self.check, self.found)


class PipelineConformance:
    """The checks of the kit, one method each, in the order :meth:`run` calls them.

    Each check builds on the tables the earlier ones left (BAU needs a backfill, a replay needs
    a watermark to leave alone), so call :meth:`run`, or the methods in order.
    """

    def __init__(
        self,
        spark: SparkSession,
        pipeline: Pipeline,
        *,
        warehouse: str,
        known_ids: Sequence[str],
        missing_id: str,
        since: date,
        bad_ids: Sequence[str] = (),
        until: date | None = None,
        since_ids: Sequence[str] | None = None,
        targeted_ids: Sequence[str] | None = None,
        change_source: Callable[[], Iterable[str]] | None = None,
        job_args: Sequence[str] = (),
        clock: SteppingClock | None = None,
    ) -> None:
        self.spark, self.pipeline, self.entity = spark, pipeline, pipeline.entity
        self.name = pipeline.entity.name
        self.tables = Warehouse(warehouse)
        self.known_ids = _unique_texts(known_ids, "known_ids")
        self.bad_ids = _unique_texts(bad_ids, "bad_ids")
        self.good_ids = tuple(i for i in self.known_ids if i not in self.bad_ids)
        self.missing_id = missing_id
        self.since, self.until = since, until
        self.since_ids = None if since_ids is None else _unique_texts(since_ids, "since_ids")
        self.change_source = change_source
        self.job_args = tuple(job_args)
        self.clock = clock
        self.checks: list[str] = []
        self.changed_ids: tuple[str, ...] = ()
        self.watermarks: dict[str, datetime | None] = {}
        # Ledger rows by (request, stage), read once between two job runs.
        self._ledger: dict[tuple[str, str], list[RunRecord]] = {}
        default_targets = (*self.good_ids[:2], *self.bad_ids[:1])
        self.targeted_ids = _unique_texts(targeted_ids or default_targets, "targeted_ids")
        self._refuse_bad_setup()

    # -- the checks ------------------------------------------------------------------------

    def run(self) -> ConformanceReport:
        """Every check, in order; the first one that fails raises :class:`ConformanceError`."""
        self.check_warehouse_is_empty()
        self.check_full()
        self.check_same_request_twice()
        self.check_bau()
        self.check_targeted()
        self.check_since()
        self.check_table_contracts()
        return ConformanceReport(
            entity=self.name,
            warehouse=self.tables.root,
            requests=REQUEST_IDS,
            checks=tuple(self.checks),
            changed_ids=self.changed_ids,
            watermark=self.watermarks.get("ingest"),
        )

    def check_warehouse_is_empty(self) -> None:
        """The kit compares whole tables: it needs a warehouse of its own."""
        problems = self._problems("empty warehouse")
        ledgers = [self.tables.runs_of(stage, self.name) for stage in ("ingest", "normalize")]
        for path in [*self._data_tables(), *ledgers]:
            problems.expect(not table_exists(self.spark, path), f"{path} already exists")
        problems.raise_if_any()
        self.checks.append("empty warehouse")

    def check_full(self) -> None:
        """A full backfill: every known id to raw, every good id normalized and emitted once."""
        problems = self._problems("full")
        request = REQUEST_IDS["full"]
        self._run_both(problems, request, ["--replay_mode", "full"])
        self._expect_ledger(problems, request, "full")
        problems.equal(
            "raw ids of the full request (the source's full read must return every known id once)",
            self._raw_ids(request),
            sorted(self.known_ids),
        )
        keys = self._normalized_keys()
        problems.equal(f"normalized/{self.name} keys", sorted(keys), sorted(self.good_ids))
        self._expect_events(problems, request, self.good_ids, "created", "full")
        quarantined = self._quarantine()
        problems.equal(
            f"quarantine/{self.name} ids",
            sorted({row["id"] for row in quarantined if row["id"] is not None}),
            sorted(self.bad_ids),
        )
        for row in quarantined:
            problems.expect(
                bool((row["reason"] or "").strip()),
                f"quarantined record {row['id']!r} has no reason",
            )
        normalize = self._attempts(request, "normalize")
        if normalize:
            problems.equal(
                "normalize rows_quarantined of the full request",
                normalize[-1].rows_quarantined,
                len(self.bad_ids),
            )
        problems.raise_if_any()
        self.checks.append("full")

    def check_same_request_twice(self) -> None:
        """The full request again (a Glue retry): no table gains or loses a single row."""
        problems = self._problems("same request twice")
        request = REQUEST_IDS["full"]
        before = {path: self._snapshot(path) for path in self._data_tables()}
        self._run_both(problems, request, ["--replay_mode", "full"], attempt=2)
        for path, rows in before.items():
            after = self._snapshot(path)
            if after != rows:
                added, lost = Counter(after) - Counter(rows), Counter(rows) - Counter(after)
                problems.found.append(
                    f"{path} changed: {sum(added.values())} rows added, "
                    f"{sum(lost.values())} rows removed"
                )
        for stage in ("ingest", "normalize"):
            runs = self._attempts(request, stage)
            problems.equal(
                f"{stage} ledger statuses of the full request run twice",
                [run.status.value for run in runs],
                ["succeeded", "succeeded"],
            )
        problems.raise_if_any()
        self.checks.append("same request twice")

    def check_bau(self) -> None:
        """BAU after ``change_source``: the changes are read and emitted, the watermark moves."""
        problems = self._problems("bau")
        request = REQUEST_IDS["bau"]
        if self.change_source is not None:
            self.changed_ids = _unique_texts(list(self.change_source()), "change_source()")
            self._tick()
        self._run_both(problems, request, [])
        self._expect_ledger(problems, request, "bau")
        ingest = self._attempts(request, "ingest")
        if ingest:
            # What the source had updated in the window before this run, and the changes.
            window = self._in_window(ingest[-1].window_start, ingest[-1].window_end, request)[0]
            problems.equal(
                "raw ids of the BAU request (the source's BAU read must return exactly the "
                f"records updated in its window {ingest[-1].window_start}..{ingest[-1].window_end}"
                ", change_source's among them)",
                self._raw_ids(request),
                sorted(set(window) | set(self.changed_ids)),
            )
        self._expect_events(problems, request, self.changed_ids, "updated", "bau")
        for stage in ("ingest", "normalize"):
            runs = self._attempts(request, stage)
            if not runs:
                continue
            run = runs[-1]
            ledger = RunsLedger(self.spark, self.tables.runs_of(stage, self.name))
            watermark = ledger.last_watermark(stage, self.name)
            problems.expect(
                run.watermark is not None and run.watermark == run.window_end,
                f"{stage}: a BAU run's watermark must be its window end {run.window_end}, "
                f"got {run.watermark}",
            )
            problems.equal(f"{stage}: last BAU watermark after BAU", watermark, run.window_end)
            if run.window_start is not None and run.window_end is not None:
                problems.equal(
                    f"{stage}: first BAU window length",
                    run.window_end - run.window_start,
                    self.entity.first_bau_lookback,
                )
            self.watermarks[stage] = watermark
        problems.raise_if_any()
        self.checks.append("bau")

    def check_targeted(self) -> None:
        """Exactly the requested ids; the one the source lacks is reported, not fatal."""
        problems = self._problems("targeted")
        request = REQUEST_IDS["targeted"]
        ids = [*self.targeted_ids, self.missing_id]
        self._run_both(problems, request, ["--replay_mode", "targeted", "--ids", ",".join(ids)])
        self._expect_ledger(problems, request, "targeted")
        problems.equal(
            "raw ids of the targeted request (the source's targeted read must return exactly "
            "the requested ids it has)",
            self._raw_ids(request),
            sorted(self.targeted_ids),
        )
        for stage in ("ingest", "normalize"):
            runs = self._attempts(request, stage)
            if runs:
                problems.equal(f"{stage} missing_ids", runs[-1].missing_ids, [self.missing_id])
        emitted = [i for i in self.targeted_ids if i not in self.bad_ids]
        self._expect_events(problems, request, emitted, "updated", "targeted")
        self._expect_watermarks_unchanged(problems, request)
        problems.raise_if_any()
        self.checks.append("targeted")

    def check_since(self) -> None:
        """Exactly the records updated in ``[since, until)``; every id selected re-emitted."""
        problems = self._problems("since")
        request = REQUEST_IDS["since"]
        start, end = _midnight(self.since), _midnight(self.until)
        expected_read, selected = self._in_window(start, end)
        if self.since_ids is not None:
            expected_read = sorted(self.since_ids)
        if not expected_read:
            raise ConformanceError(
                self.name,
                "since",
                [f"no record of the source is updated in [{self.since}, {self.until or 'now'}):"
                 " choose a `since` window that holds a few records"],
            )  # fmt: skip
        window = ["--replay_mode", "since", "--date", self.since.isoformat()]
        if self.until is not None:
            window += ["--until", self.until.isoformat()]
        self._run_both(problems, request, window)
        self._expect_ledger(problems, request, "since")
        problems.equal(
            "raw ids of the since request (the source's since read must return exactly the "
            f"records updated in [{self.since}, {self.until or 'now'}))",
            self._raw_ids(request),
            expected_read,
        )
        for stage in ("ingest", "normalize"):
            runs = self._attempts(request, stage)
            if runs:
                problems.equal(
                    f"{stage} window", (runs[-1].window_start, runs[-1].window_end), (start, end)
                )
        emitted = sorted(set(selected) | set(expected_read))
        emitted = [i for i in emitted if i not in self.bad_ids]
        self._expect_events(problems, request, emitted, "updated", "since")
        self._expect_watermarks_unchanged(problems, request)
        problems.raise_if_any()
        self.checks.append("since")

    def check_table_contracts(self) -> None:
        """The outbox and the normalized table, as every run left them (DESIGN §5)."""
        problems = self._problems("table contracts")
        outbox = self._read(self.tables.outbox_of(self.name))
        problems.equal(
            "outbox columns",
            [(f.name, f.dataType.simpleString()) for f in outbox.schema.fields],
            list(OUTBOX_CONTRACT),
        )
        events = outbox.select(
            "event_id", "aggregate_type", "aggregate_id", "event_type", "payload"
        )
        rows = events.collect()
        duplicated = sorted(k for k, n in Counter(r["event_id"] for r in rows).items() if n > 1)
        problems.expect(not duplicated, f"outbox event_ids used twice: {duplicated[:5]}")
        types = sorted({r["aggregate_type"] for r in rows})
        problems.equal("outbox aggregate_type values", types, [self.name])
        kinds = self.entity.event_types
        unknown = sorted({r["event_type"] for r in rows} - set(kinds.all))
        problems.expect(not unknown, f"outbox event types not the entity's: {unknown}")
        for row in rows:
            key = _payload_key(row["payload"], self.entity.key)
            if key != row["aggregate_id"]:
                problems.found.append(
                    f"event {row['event_id']}: payload {self.entity.key} is {key!r}, "
                    f"aggregate_id is {row['aggregate_id']!r}"
                )
                break
        normalized = self._read(self.tables.normalized(self.name))
        actual = {f.name: f.dataType.simpleString() for f in normalized.schema.fields}
        for column in self.entity.schema.fields:
            problems.equal(
                f"normalized/{self.name} column {column.name}",
                actual.get(column.name),
                column.dataType.simpleString(),
            )
        keys = Counter(self._normalized_keys())
        doubled = sorted(k for k, n in keys.items() if n > 1)
        problems.expect(not doubled, f"normalized/{self.name} has several rows for {doubled}")
        problems.raise_if_any()
        self.checks.append("table contracts")

    # -- running jobs ----------------------------------------------------------------------

    def _run_both(
        self, problems: _Problems, request: str, mode: list[str], attempt: int = 1
    ) -> None:
        """Ingest, then normalize, of one request, as the workflow cascade runs them."""
        for stage, job in (("ingest", run_ingest_job), ("normalize", run_normalize_job)):
            argv = [
                f"conformance/{stage}_{self.name}.py",
                *mode,
                "--request_id",
                request,
                "--warehouse",
                self.tables.root,
                "--JOB_RUN_ID",
                f"{request}-{stage}-{attempt}",
                *self.job_args,
            ]
            self._ledger.clear()
            captured = io.StringIO()
            with contextlib.redirect_stderr(captured):
                code = job(argv, self.pipeline, spark=self.spark, clock=self.clock)
            sys.stderr.write(captured.getvalue())
            self._tick()
            if code != 0:
                problems.found.append(
                    f"{stage} {' '.join(mode) or '(BAU)'} exited {code}, expected 0: "
                    + _job_verdict(captured.getvalue(), f"{stage}_{self.name}")
                )
                problems.raise_if_any()
            self._expect_counts_add_up(problems, request, stage, f"{request}-{stage}-{attempt}")

    def _tick(self) -> None:
        if self.clock is not None:
            self.clock.advance()

    # -- reading what the runs wrote -------------------------------------------------------

    def _problems(self, check: str) -> _Problems:
        return _Problems(self.name, check)

    def _data_tables(self) -> list[str]:
        return [
            self.tables.raw(self.name),
            self.tables.normalized(self.name),
            self.tables.quarantine_of("ingest", self.name),
            self.tables.quarantine_of("normalize", self.name),
            self.tables.outbox_of(self.name),
        ]

    def _read(self, path: str) -> DataFrame:
        return self.spark.read.format("delta").load(path)

    def _rows(self, path: str, *columns: str, request: str | None = None) -> list[Any]:
        if not table_exists(self.spark, path):
            return []
        frame = self._read(path)
        if request is not None:
            frame = frame.where(F.col("request_id") == request)
        return frame.select(*columns).collect() if columns else frame.collect()

    def _snapshot(self, path: str) -> list[str]:
        return sorted(repr(tuple(row)) for row in self._rows(path))

    def _raw_ids(self, request: str) -> list[str]:
        return sorted(
            r["id"] for r in self._rows(self.tables.raw(self.name), "id", request=request)
        )

    def _normalized_keys(self) -> list[str]:
        rows = self._rows(self.tables.normalized(self.name), self.entity.key)
        return [str(row[0]) for row in rows]

    def _quarantine(self) -> list[Any]:
        stages = ("ingest", "normalize")
        return [
            row
            for stage in stages
            for row in self._rows(self.tables.quarantine_of(stage, self.name), "id", "reason")
        ]

    def _attempts(self, request: str, stage: str) -> list[RunRecord]:
        if (request, stage) not in self._ledger:
            runs = RunsLedger(self.spark, self.tables.runs_of(stage, self.name))
            found = runs.attempts(request, stage, self.name)
            self._ledger[request, stage] = found
        return self._ledger[request, stage]

    def _in_window(
        self, start: datetime | None, end: datetime | None, excluding: str | None = None
    ) -> tuple[list[str], list[str]]:
        """(ids whose latest ingested version is updated in the window: what the source should
        return; ids with any raw version in it: what normalize selects), leaving out the raw
        rows of request ``excluding``."""
        columns = ("id", "source_updated_at", "ingested_at", "request_id")
        rows = [
            row
            for row in self._rows(self.tables.raw(self.name), *columns)
            if row["request_id"] != excluding
        ]
        naive_start = start.replace(tzinfo=None) if start else None
        naive_end = end.replace(tzinfo=None) if end else None

        def inside(updated: datetime | None) -> bool:
            return (
                updated is not None
                and (naive_start is None or updated >= naive_start)
                and (naive_end is None or updated < naive_end)
            )

        latest: dict[str, Any] = {}
        for row in sorted(rows, key=lambda r: r["ingested_at"]):
            latest[row["id"]] = row
        current = sorted(i for i, row in latest.items() if inside(row["source_updated_at"]))
        selected = sorted({row["id"] for row in rows if inside(row["source_updated_at"])})
        return current, selected

    # -- shared expectations ---------------------------------------------------------------

    def _expect_ledger(self, problems: _Problems, request: str, mode: str) -> None:
        for stage in ("ingest", "normalize"):
            runs = self._attempts(request, stage)
            problems.equal(
                f"{stage} ledger rows (mode, status) of request {request}",
                [(run.replay_mode, run.status.value) for run in runs],
                [(mode, RunStatus.SUCCEEDED.value)],
            )
            if runs and mode != "bau":
                problems.expect(
                    runs[-1].watermark is None, f"{stage}: a {mode} replay recorded a watermark"
                )

    def _expect_events(
        self, problems: _Problems, request: str, ids: Iterable[str], event_type: str, mode: str
    ) -> None:
        kinds = self.entity.event_types
        name = kinds.created if event_type == "created" else kinds.updated
        rows = self._rows(
            self.tables.outbox_of(self.name),
            "aggregate_id",
            "event_type",
            "replay_mode",
            request=request,
        )
        problems.equal(
            f"outbox events (aggregate_id, event_type, replay_mode) of request {request}",
            sorted((r["aggregate_id"], r["event_type"], r["replay_mode"]) for r in rows),
            sorted((i, name, mode) for i in ids),
        )

    def _expect_counts_add_up(
        self, problems: _Problems, request: str, stage: str, run_id: str
    ) -> None:
        """Every row a run read is written, unchanged or quarantined: none vanishes uncounted."""
        for run in self._attempts(request, stage):
            if run.run_id != run_id:
                continue
            accounted = run.rows_written + run.rows_unchanged + run.rows_quarantined
            problems.expect(
                run.rows_read == accounted,
                f"{stage} run {run_id}: rows_read {run.rows_read} != rows_written "
                f"{run.rows_written} + rows_unchanged {run.rows_unchanged} + rows_quarantined "
                f"{run.rows_quarantined}",
            )

    def _expect_watermarks_unchanged(self, problems: _Problems, request: str) -> None:
        for stage, watermark in self.watermarks.items():
            ledger = RunsLedger(self.spark, self.tables.runs_of(stage, self.name))
            problems.equal(
                f"{stage}: last BAU watermark after replay {request}",
                ledger.last_watermark(stage, self.name),
                watermark,
            )

    def _refuse_bad_setup(self) -> None:
        problems = self._problems("setup")
        problems.expect(bool(self.good_ids), "known_ids must hold at least one good id")
        for label, ids in (("bad_ids", self.bad_ids), ("targeted_ids", self.targeted_ids)):
            strays = sorted(set(ids) - set(self.known_ids))
            problems.expect(not strays, f"{label} {strays} are not in known_ids")
        problems.expect(
            self.missing_id not in self.known_ids, f"missing_id {self.missing_id!r} is known"
        )
        problems.expect(self.until is None or self.until > self.since, "until must be after since")
        for value in (*self.known_ids, self.missing_id):
            problems.expect(
                re.fullmatch(self.entity.ids.pattern, value) is not None,
                f"id {value!r} fails the entity's id rule ({self.entity.ids.help})",
            )
        problems.raise_if_any()


def _unique_texts(values: Iterable[str], what: str) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(str(v) for v in values))
    if any(not v for v in found):
        raise ValueError(f"{what} holds an empty id")
    return found


def _job_verdict(stderr: str, job: str) -> str:
    """The job's own one-line verdict (``<job>: failed: ...``) from its stderr, without the JVM
    stack trace an exception message may carry; else the end of stderr."""
    marker = f"{job}: "
    start = stderr.rfind(marker)
    if start == -1:
        return stderr[-_VERDICT_CHARS:].strip() or "(nothing on stderr)"
    line = stderr[start:].splitlines()[0]
    if len(line) > _VERDICT_CHARS:
        line = line[:_VERDICT_CHARS] + " ..."
    if "Py4JJavaError" in line:
        # The JVM's error wraps a Python one from an executor: that one is the cause.
        causes = [
            cause
            for cause in _PYTHON_ERROR.findall(stderr)
            if not cause.startswith(("org.", "java.", "scala.", "py4j.", "Py4JJavaError"))
        ]
        if causes:
            line += f" (cause, on an executor: {causes[0][:_VERDICT_CHARS]})"
    return line


def _midnight(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), UTC) if day is not None else None


def _payload_key(payload: str | None, key: str) -> str | None:
    """The key of an event's payload as text (``7`` -> ``"7"``), or None if it has none."""
    try:
        record = json.loads(payload or "")
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get(key) is None:
        return None
    value = record[key]
    return value if isinstance(value, str) else json.dumps(value)
