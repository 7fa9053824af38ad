"""What every stage run shares: its window, its ledger row, idempotence and failure handling.

A stage body receives a :class:`StageContext` and returns :class:`StageCounts`; :func:`run_stage`
records the run as ``running`` before the body starts, and as ``succeeded``, ``dry_run`` or
``failed`` after, so the ledger always says what happened and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import assert_never

from pyspark.sql import SparkSession

from glue_replay.errors import RequestConflictError
from glue_replay.request import JobArguments, ReplayMode, ReplayRequest
from glue_replay.runtime.phases import labelled
from glue_replay.tables import RunRecord, RunsLedger, RunStatus, Warehouse

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: The very first BAU run looks back this far (an entity may say otherwise).
FIRST_BAU_LOOKBACK = timedelta(hours=24)
#: BAU windows start this much before the last watermark, for clock skew and late commits
#: (an entity may say otherwise).
BAU_OVERLAP = timedelta(minutes=10)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TimeWindow:
    """``[start, end)``; ``None`` leaves that side open."""

    start: datetime | None = None
    end: datetime | None = None

    def describe(self) -> str:
        start = self.start.isoformat() if self.start else "the beginning"
        end = self.end.isoformat() if self.end else "now"
        return f"[{start}, {end})"


def window_for(
    request: ReplayRequest,
    last_watermark: datetime | None,
    now: datetime,
    overlap: timedelta = BAU_OVERLAP,
    first_lookback: timedelta = FIRST_BAU_LOOKBACK,
) -> TimeWindow:
    """The time window a mode selects. Only BAU depends on the watermark."""
    match request.mode:
        case ReplayMode.FULL | ReplayMode.TARGETED:
            return TimeWindow()
        case ReplayMode.SINCE:
            return TimeWindow(request.since_start, request.until_end)
        case ReplayMode.BAU:
            start = last_watermark - overlap if last_watermark else now - first_lookback
            return TimeWindow(start, now)
        case _:
            assert_never(request.mode)


@dataclass
class StageCounts:
    """What a stage body did (or, in a dry run, would do), in rows it read.

    ``read = written + unchanged + quarantined``: ingest reads source records and writes them to
    raw or quarantines them (``unchanged`` stays 0); normalize reads raw rows and merges,
    quarantines or leaves them (``unchanged``: older versions and same content).
    """

    read: int = 0
    written: int = 0
    outboxed: int = 0
    quarantined: int = 0
    unchanged: int = 0
    missing_ids: list[str] = field(default_factory=list)
    #: What the ledger row's ``note`` says (e.g. ids a full read no longer returned).
    note: str | None = None


@dataclass(frozen=True)
class StageContext:
    """Everything a stage body may use; the body never looks at the clock or the ledger itself."""

    spark: SparkSession
    args: JobArguments
    stage: str
    entity: str
    warehouse: Warehouse
    window: TimeWindow
    now: datetime
    run_id: str
    #: The request's as-of time: when its first attempt started (``now`` for a first attempt).
    #: A read without an explicit end (full, since without ``--until``) stops there, so every
    #: attempt of the request asks the source for the same data, cut into the same batches.
    as_of: datetime | None = None
    #: An earlier attempt of this request (not a dry run) is in the ledger, so it may have
    #: written: only then is it worth asking the tables what it committed. A first attempt
    #: cannot find a commit of its own (the ledger row comes before any data write).
    retry: bool = False

    @property
    def request(self) -> ReplayRequest:
        return self.args.request

    def app_id(self, table: str) -> str:
        """The idempotency key of this request's single write to ``table``."""
        return f"glue-replay/{self.stage}/{self.entity}/{table}/{self.request.request_id}"

    def phase(self, what: str) -> AbstractContextManager[None]:
        """Label the Spark jobs of a block of the run (see :func:`labelled`)."""
        return labelled(self.spark, phase_label(self.stage, self.entity, self.request, what))

    def say(self, message: str) -> None:
        """Progress for the operator, on stdout (CloudWatch on Glue)."""
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        print(f"{stamp} [{self.stage} {self.entity}] {message}", flush=True)


StageBody = Callable[[StageContext], StageCounts]


def phase_label(stage: str, entity: str, request: ReplayRequest, what: str) -> str:
    """What the Spark UI calls a phase's jobs: ``normalize invoices bau-7: MERGE ...``."""
    return f"{stage} {entity} {request.request_id}: {what}"


def run_stage(
    spark: SparkSession,
    args: JobArguments,
    *,
    stage: str,
    entity: str,
    body: StageBody,
    clock: Clock = utc_now,
    bau_overlap: timedelta = BAU_OVERLAP,
    first_bau_lookback: timedelta = FIRST_BAU_LOOKBACK,
) -> RunRecord:
    """Run ``body`` once for ``args.request`` and record it in the ledger.

    The same request run again (a Glue retry, a re-run after a crash) reuses the first attempt's
    window, so it selects the same data and its idempotent writes are no-ops; after a success it
    writes nothing at all. A ``request_id`` reused for a different request is refused.
    """
    warehouse = Warehouse(args.warehouse)
    ledger = RunsLedger(spark, warehouse.runs_of(stage, entity))
    request = args.request
    now = clock()

    def phase(what: str) -> AbstractContextManager[None]:
        return labelled(spark, phase_label(stage, entity, request, what))

    with phase("ledger: earlier attempts and the BAU watermark"):
        prior = ledger.before_run(request.request_id, stage, entity)
    attempts = prior.attempts
    _refuse_reused_request_id(request, attempts)

    watermark = prior.watermark if request.mode is ReplayMode.BAU else None
    window = _window_of_retry(attempts) if request.mode is ReplayMode.BAU else None
    if window is None:
        window = window_for(request, watermark, now, bau_overlap, first_bau_lookback)

    run = RunRecord(
        run_id=args.run_id,
        request_id=request.request_id,
        job_name=args.job_name,
        stage=stage,
        entity=entity,
        replay_mode=request.mode.value,
        status=RunStatus.RUNNING,
        requested_by=args.requested_by,
        arguments=args.for_ledger(),
        request_fingerprint=request.fingerprint(),
        id_count=len(request.ids),
        window_start=window.start,
        window_end=window.end,
        started_at=now,
    )
    as_of = _as_of(attempts, now)
    retry = any(a.status is not RunStatus.DRY_RUN for a in attempts)
    context = StageContext(
        spark, args, stage, entity, warehouse, window, now, args.run_id, as_of, retry
    )
    done = next((a for a in attempts if a.status is RunStatus.SUCCEEDED), None)
    if done is not None and not request.dry_run:
        note = f"request already succeeded in run {done.run_id}; nothing written"
        context.say(note)
        run = replace(run, status=RunStatus.SUCCEEDED, finished_at=clock(), note=note)
        with phase("ledger: nothing to do"):
            ledger.start(run)
        return run

    context.say(f"run {args.run_id}, request {request.request_id}: {request.describe()}")
    if request.mode is ReplayMode.BAU:
        context.say(f"window {window.describe()}")
    dead = [a for a in attempts if a.status is RunStatus.RUNNING]
    if dead and not request.dry_run:
        # The job runs once at a time: an earlier attempt still "running" died unrecorded.
        with phase("ledger: abandon dead attempts"):
            ledger.abandon(dead, args.run_id, now)
        context.say(f"marked {len(dead)} earlier attempt(s) that died unrecorded as abandoned")
    with phase("ledger: run started"):
        ledger.start(run)
    try:
        counts = body(context)
    except BaseException as exc:
        failed = replace(
            run, status=RunStatus.FAILED, finished_at=clock(), error=describe_error(exc)
        )
        try:
            with phase("ledger: run failed"):
                ledger.finish(failed)
        except Exception:  # the run's own error matters more than the ledger's
            log.exception("could not record the failed run %s in the ledger", run.run_id)
        raise
    status = RunStatus.DRY_RUN if request.dry_run else RunStatus.SUCCEEDED
    moves_watermark = request.mode is ReplayMode.BAU and status is RunStatus.SUCCEEDED
    # A retry that succeeds after a later BAU run keeps its own (earlier) window: its rows are
    # in, but the watermark stays where that later run put it, never moves back. The watermark
    # read before the run is still the current one: a job runs once at a time.
    end = window.end
    if moves_watermark and watermark is not None and end is not None and end <= watermark:
        moves_watermark = False
        kept = f"window ended at or before the watermark {watermark.isoformat()}; kept"
        context.say(kept)
        counts.note = f"{counts.note}; {kept}" if counts.note else kept
    run = replace(
        run,
        status=status,
        finished_at=clock(),
        rows_read=counts.read,
        rows_written=counts.written,
        rows_outboxed=counts.outboxed,
        rows_quarantined=counts.quarantined,
        rows_unchanged=counts.unchanged,
        missing_ids=counts.missing_ids,
        watermark=window.end if moves_watermark else None,
        note=counts.note,
    )
    with phase("ledger: run finished"):
        ledger.finish(run)
    context.say(
        f"{status.value}: read {counts.read}, written {counts.written}, "
        f"outboxed {counts.outboxed}, quarantined {counts.quarantined}, "
        f"unchanged {counts.unchanged}"
        + (f", missing ids {len(counts.missing_ids)}" if request.ids else "")
    )
    return run


def describe_error(exc: BaseException) -> str:
    """One line for the ledger: the exception type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:1000]


def _refuse_reused_request_id(request: ReplayRequest, attempts: list[RunRecord]) -> None:
    for attempt in attempts:
        if attempt.request_fingerprint != request.fingerprint():
            raise RequestConflictError(
                f"--request_id {request.request_id} was already used by run {attempt.run_id} "
                f"for a different request ({attempt.replay_mode}); use a new request_id"
            )


def _as_of(attempts: list[RunRecord], now: datetime) -> datetime:
    """The first attempt's start: a retry reads the source as of the same time."""
    starts = [a.started_at for a in attempts if a.status is not RunStatus.DRY_RUN]
    return min(starts) if starts else now


def _window_of_retry(attempts: list[RunRecord]) -> TimeWindow | None:
    """A BAU retry keeps its first attempt's window, so a kill mid-run can lose nothing."""
    for attempt in attempts:
        if attempt.status is not RunStatus.DRY_RUN and attempt.window_end is not None:
            return TimeWindow(attempt.window_start, attempt.window_end)
    return None
