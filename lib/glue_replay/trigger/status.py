"""Where a request is: the runs ledger (read with delta-rs, no JVM) and the Glue API.

``glue-replay status REQUEST_ID`` prints one line per ledger row of the request (a stage, or a
retry of it) with its status, counts, missing ids and error, then the Glue runs that carry the
request (workflow runs by their ``request_id`` property, job runs by their ``--request_id``
argument), among the recent runs of every configured pipeline's jobs and replay workflow (or of
one entity's). ``glue-replay --wait`` uses :func:`follow` to poll a started run to its end.

The ledger is read with the ``deltalake`` package (delta-rs), imported when needed: the Lambda
never reads it, and neither command starts Spark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from glue_replay.aws import is_s3_uri
from glue_replay.errors import GlueReplayError
from glue_replay.request import REQUEST_ID_PATTERN
from glue_replay.trigger.config import PipelineConfig
from glue_replay.trigger.start import StartedReplay

#: Final job-run states; only ``SUCCEEDED`` is a success.
FINAL_JOB_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"})
FINAL_WORKFLOW_STATES = frozenset({"COMPLETED", "STOPPED", "ERROR"})
#: Workflow run statistics that mean some action did not succeed.
FAILED_ACTION_COUNTS = ("FailedActions", "StoppedActions", "TimeoutActions", "ErroredActions")
#: How many recent runs of each job ``status`` searches for the request.
STATUS_RUNS = 100

_LEDGER_COLUMNS = (
    "run_id",
    "stage",
    "entity",
    "job_name",
    "replay_mode",
    "status",
    "requested_by",
    "id_count",
    "started_at",
    "finished_at",
    "rows_read",
    "rows_written",
    "rows_outboxed",
    "rows_quarantined",
    "missing_ids",
    "note",
    "error",
)


class LedgerUnavailableError(GlueReplayError):
    """The runs ledger exists but could not be read (permissions, network, a broken table)."""


@dataclass(frozen=True)
class LedgerRow:
    """The columns of one runs-ledger row that an operator looks at."""

    run_id: str
    stage: str
    entity: str
    job_name: str
    replay_mode: str
    status: str
    requested_by: str | None
    id_count: int | None
    started_at: datetime | None
    finished_at: datetime | None
    rows_read: int | None
    rows_written: int | None
    rows_outboxed: int | None
    rows_quarantined: int | None
    missing_ids: tuple[str, ...] = ()
    note: str | None = None
    error: str | None = None

    def describe(self) -> str:
        """``ingest     orders     succeeded  read 2, written 2, ...  run local-1 (21s)``"""
        counts = (
            f"read {self.rows_read or 0}, written {self.rows_written or 0}, "
            f"outboxed {self.rows_outboxed or 0}, quarantined {self.rows_quarantined or 0}, "
            f"missing ids {len(self.missing_ids)}"
        )
        timing = f"started {_iso(self.started_at)}" if self.started_at else "not started"
        if self.started_at and self.finished_at:
            timing += f", took {format_elapsed(self.finished_at - self.started_at)}"
        line = (
            f"{self.stage:<10} {self.entity:<10} {self.status:<10} {counts}  "
            f"run {self.run_id} ({timing})"
        )
        if self.error:
            line += f"  error: {_one_line(self.error)}"
        if self.note:
            line += f"  note: {_one_line(self.note)}"
        return line


@dataclass(frozen=True)
class GlueRun:
    """A Glue job or workflow run of a request."""

    kind: str
    name: str
    run_id: str
    state: str
    started_on: datetime | None
    completed_on: datetime | None = None
    error: str | None = None

    def describe(self, now: datetime | None = None) -> str:
        end = self.completed_on or now or datetime.now(UTC)
        elapsed = f", {format_elapsed(end - _utc(self.started_on))}" if self.started_on else ""
        started = f" started {_iso(self.started_on)}" if self.started_on else ""
        error = f"  error: {_one_line(self.error)}" if self.error else ""
        return f"{self.kind} {self.name} run {self.run_id} {self.state}{started}{elapsed}{error}"


def runs_table(warehouse: str) -> str:
    """The ledger's location under ``warehouse`` (as ``glue_replay.tables.Warehouse`` puts it)."""
    root = warehouse if "://" in warehouse else str(Path(warehouse).resolve())
    return f"{root.rstrip('/')}/runs"


def read_ledger(
    warehouse: str, request_id: str, *, region: str | None = None
) -> list[LedgerRow] | None:
    """The ledger rows of ``request_id``, oldest first; ``None`` when there is no ledger table.

    ``request_id`` must be a valid request id (it is put in a SQL predicate).
    """
    if not REQUEST_ID_PATTERN.fullmatch(request_id):
        raise ValueError(f"not a request id: {request_id!r}")
    try:
        from deltalake import DeltaTable, QueryBuilder
    except ImportError:
        raise LedgerUnavailableError(
            "reading the runs ledger needs the deltalake package: pip install 'glue-replay[cli]'"
        ) from None

    location = runs_table(warehouse)
    options = {"AWS_REGION": region} if region and is_s3_uri(location) else {}
    try:
        if not DeltaTable.is_deltatable(location, storage_options=options):
            return None
        table = DeltaTable(location, storage_options=options)
        result = (
            QueryBuilder()
            .register("runs", table)
            .execute(
                f"SELECT {', '.join(_LEDGER_COLUMNS)} FROM runs "  # request_id validated above
                f"WHERE request_id = '{request_id}' ORDER BY started_at, stage, entity"
            )
            .read_all()
        )
    except Exception as exc:  # delta-rs raises its own and OS errors; the operator needs one line
        raise LedgerUnavailableError(
            f"cannot read the runs ledger {location} ({type(exc).__name__}: {_one_line(str(exc))})"
        ) from None
    columns = {name: result.column(name).to_pylist() for name in _LEDGER_COLUMNS}
    return [
        LedgerRow(
            **{name: columns[name][row] for name in _LEDGER_COLUMNS if name != "missing_ids"},
            missing_ids=tuple(columns["missing_ids"][row] or ()),
        )
        for row in range(result.num_rows)
    ]


def glue_runs(glue: Any, pipelines: Sequence[PipelineConfig], request_id: str) -> list[GlueRun]:
    """The recent runs of ``pipelines``' replay workflows and jobs that carry ``request_id``,
    oldest first."""
    runs: list[GlueRun] = []
    for workflow in _unique(p.workflow_name for p in pipelines):
        response = glue.get_workflow_runs(Name=workflow, IncludeGraph=False, MaxResults=STATUS_RUNS)
        runs.extend(
            GlueRun(
                "workflow",
                workflow,
                run["WorkflowRunId"],
                run["Status"],
                run.get("StartedOn"),
                run.get("CompletedOn"),
                run.get("ErrorMessage"),
            )
            for run in response.get("Runs", [])
            if (run.get("WorkflowRunProperties") or {}).get("request_id") == request_id
        )
    for job in _unique(j for p in pipelines for j in (p.ingest_job, p.normalize_job)):
        response = glue.get_job_runs(JobName=job, MaxResults=STATUS_RUNS)
        runs.extend(
            _job_run(job, run)
            for run in response.get("JobRuns", [])
            if (run.get("Arguments") or {}).get("--request_id") == request_id
        )
    return sorted(
        runs, key=lambda r: _utc(r.started_on) if r.started_on else datetime.min.replace(tzinfo=UTC)
    )


def show_status(
    request_id: str,
    *,
    warehouse: str,
    say: Callable[[str], None],
    region: str | None = None,
    pipelines: Sequence[PipelineConfig] = (),
    glue: Any | None = None,
    entity: str | None = None,
) -> bool:
    """Print where ``request_id`` is: its ledger rows (only ``entity``'s when given), then its
    runs of ``pipelines``' jobs and workflows (when ``glue`` is given). True when the ledger or
    Glue knows the request."""
    location = runs_table(warehouse)
    found = False
    say(f"request {request_id}" + (f" (entity {entity})" if entity else ""))
    try:
        rows = read_ledger(warehouse, request_id, region=region)
    except LedgerUnavailableError as exc:
        say(f"ledger: {exc}")
    else:
        if rows is not None and entity:
            rows = [row for row in rows if row.entity == entity]
        of_entity = f" of entity {entity}" if entity else ""
        if rows is None:
            say(f"ledger: no runs table at {location}")
        elif not rows:
            say(f"ledger: no row{of_entity} for request {request_id} in {location}")
        else:
            found = True
            say(f"ledger {location}:")
            for row in rows:
                say(f"  {row.describe()}")
    if glue is not None and pipelines:
        runs = glue_runs(glue, pipelines, request_id)
        if runs:
            found = True
            say("glue:")
            for run in runs:
                say(f"  {run.describe()}")
        else:
            names = _unique(
                name for p in pipelines for name in (p.workflow_name, p.ingest_job, p.normalize_job)
            )
            say(
                f"glue: no recent run of {', '.join(names)} carries request {request_id} "
                f"(the latest {STATUS_RUNS} runs of each were searched)"
            )
    return found


def _unique(names: Iterator[str] | Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))


# -- following a started run ---------------------------------------------------------------------


@dataclass
class _Progress:
    """The last state printed per run, so only changes are printed."""

    seen: dict[str, str] = field(default_factory=dict)

    def changes(self, runs: list[GlueRun]) -> Iterator[GlueRun]:
        for run in runs:
            key = f"{run.kind} {run.name} {run.run_id}"
            if self.seen.get(key) != run.state:
                self.seen[key] = run.state
                yield run


def follow(
    glue: Any,
    started: StartedReplay,
    *,
    poll_seconds: float,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> bool:
    """Poll what :func:`~glue_replay.trigger.start.start_replay` started until it ends; print
    each run's state and elapsed time when it changes. True when every job succeeded."""
    progress = _Progress()
    while True:
        runs, finished, succeeded = _poll(glue, started)
        for run in progress.changes(runs):
            say(f"  {now():%H:%M:%S}  {run.describe(now())}")
        if finished:
            return succeeded
        sleep(poll_seconds)


def _poll(glue: Any, started: StartedReplay) -> tuple[list[GlueRun], bool, bool]:
    """(runs, finished, succeeded) of what was started."""
    if started.workflow_run_id and started.target.workflow:
        run = glue.get_workflow_run(
            Name=started.target.workflow, RunId=started.workflow_run_id, IncludeGraph=True
        )["Run"]
        jobs = list(_graph_job_runs(run.get("Graph", {})))
        workflow = GlueRun(
            "workflow",
            started.target.workflow,
            started.workflow_run_id,
            run["Status"],
            run.get("StartedOn"),
            run.get("CompletedOn"),
            run.get("ErrorMessage"),
        )
        finished = run["Status"] in FINAL_WORKFLOW_STATES
        statistics = run.get("Statistics", {})
        jobs_done = {j.name for j in jobs if j.state == "SUCCEEDED"}
        succeeded = (
            run["Status"] == "COMPLETED"
            and not any(statistics.get(name, 0) for name in FAILED_ACTION_COUNTS)
            and all(j.state == "SUCCEEDED" for j in jobs)
            # With the graph at hand, every job of the cascade must have run: a cascade whose
            # second trigger never fired is not a success.
            and (not jobs or jobs_done >= set(started.target.jobs))
        )
        return [workflow, *jobs], finished, succeeded
    job_runs = [
        _job_run(name, glue.get_job_run(JobName=name, RunId=run_id)["JobRun"])
        for name, run_id in started.job_run_ids.items()
    ]
    finished = all(j.state in FINAL_JOB_STATES for j in job_runs)
    return job_runs, finished, all(j.state == "SUCCEEDED" for j in job_runs)


def _graph_job_runs(graph: dict[str, Any]) -> Iterator[GlueRun]:
    for node in graph.get("Nodes", []):
        if node.get("Type") != "JOB":
            continue
        job_runs = node.get("JobDetails", {}).get("JobRuns", [])
        if job_runs:
            # The latest attempt: Glue retries are further entries.
            latest = max(
                job_runs,
                key=lambda r: (
                    _utc(r.get("StartedOn"))
                    if r.get("StartedOn")
                    else datetime.min.replace(tzinfo=UTC)
                ),
            )
            yield _job_run(node.get("Name", latest.get("JobName", "?")), latest)


def _job_run(job: str, run: dict[str, Any]) -> GlueRun:
    return GlueRun(
        "job",
        job,
        run["Id"],
        run.get("JobRunState", "?"),
        run.get("StartedOn"),
        run.get("CompletedOn") if run.get("JobRunState") in FINAL_JOB_STATES else None,
        run.get("ErrorMessage"),
    )


# -- formatting ---------------------------------------------------------------------------------


def format_elapsed(delta: timedelta) -> str:
    """``5s``, ``3m 05s``, ``1h 02m``."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _utc(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M:%SZ")


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
