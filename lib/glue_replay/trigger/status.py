"""Where a request is, and what the ledger holds: the runs ledger (read with delta-rs, no JVM)
and the Glue API.

``glue-replay status REQUEST_ID`` prints one line per ledger row of the request (a stage, or a
retry of it) with its status, counts, missing ids and error, then the Glue runs that carry the
request (workflow runs by their ``request_id`` property, job runs by their ``--request_id``
argument), among the recent runs of every configured pipeline's jobs and replay workflow (or of
one entity's). ``glue-replay runs`` prints the newest ledger rows as a table
(:func:`show_runs`). ``glue-replay --wait`` uses :func:`follow` to poll a started run to its end.

Both show a ``running`` row as ``abandoned`` when its attempt is over: a later attempt of the
same request, stage and entity started, or its Glue job run ended (the ledger's ``run_id`` is
Glue's ``JOB_RUN_ID``). The ledger is read by :mod:`glue_replay.trigger.ledger` with the
``deltalake`` package, imported when needed: the Lambda never reads it, and no command starts
Spark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from glue_replay.aws import aws_error_code, describe_aws_error, is_aws_error
from glue_replay.trigger.config import PipelineConfig
from glue_replay.trigger.ledger import (
    RUNNING,
    LedgerRow,
    LedgerUnavailableError,
    RunsFilter,
    format_elapsed,
    format_runs_table,
    iso,
    one_line,
    read_runs,
    runs_folder,
    utc,
    with_abandoned,
)
from glue_replay.trigger.start import StartedReplay

__all__ = [
    "FINAL_JOB_STATES",
    "GlueRun",
    "LedgerRow",
    "LedgerUnavailableError",
    "ended_job_runs",
    "follow",
    "format_elapsed",
    "glue_runs",
    "read_ledger",
    "runs_table",
    "show_runs",
    "show_status",
]

#: Final job-run states; only ``SUCCEEDED`` is a success.
FINAL_JOB_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"})
FINAL_WORKFLOW_STATES = frozenset({"COMPLETED", "STOPPED", "ERROR"})
#: Workflow run statistics that mean some action did not succeed.
FAILED_ACTION_COUNTS = ("FailedActions", "StoppedActions", "TimeoutActions", "ErroredActions")
#: How many recent runs of each job ``status`` searches for the request.
STATUS_RUNS = 100
#: ``runs`` shows this many ledger rows unless ``--last`` says otherwise.
DEFAULT_LAST = 20


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
    """The ledger's folder under ``warehouse``: :func:`glue_replay.trigger.ledger.runs_folder`."""
    return runs_folder(warehouse)


def read_ledger(
    warehouse: str, request_id: str, *, region: str | None = None, s3: Any | None = None
) -> list[LedgerRow] | None:
    """The ledger rows of ``request_id`` in every ledger table, oldest first; ``None`` when there
    is no ledger table. ``request_id`` must be a valid request id."""
    found = read_runs(warehouse, RunsFilter(request_id=request_id), region=region, s3=s3)
    return None if found is None else found[0]


def glue_runs(
    glue: Any,
    pipelines: Sequence[PipelineConfig],
    request_id: str,
    *,
    recent_job_runs: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> list[GlueRun]:
    """The recent runs of ``pipelines``' replay workflows and jobs that carry ``request_id``,
    oldest first. ``recent_job_runs`` (job -> its runs) saves listing the jobs' runs again."""
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
    if recent_job_runs is None:
        recent_job_runs = _recent_job_runs(glue, pipelines)
    for job, job_runs in recent_job_runs.items():
        runs.extend(
            _job_run(job, run)
            for run in job_runs
            if (run.get("Arguments") or {}).get("--request_id") == request_id
        )
    return sorted(
        runs, key=lambda r: _utc(r.started_on) if r.started_on else datetime.min.replace(tzinfo=UTC)
    )


def _recent_job_runs(
    glue: Any, pipelines: Sequence[PipelineConfig]
) -> dict[str, list[dict[str, Any]]]:
    """The latest :data:`STATUS_RUNS` runs of each of ``pipelines``' jobs."""
    return {
        job: list(glue.get_job_runs(JobName=job, MaxResults=STATUS_RUNS).get("JobRuns", []))
        for job in _jobs(pipelines)
    }


def _jobs(pipelines: Sequence[PipelineConfig]) -> list[str]:
    return _unique(j for p in pipelines for j in (p.ingest_job, p.normalize_job))


def ended_job_runs(
    glue: Any,
    rows: Sequence[LedgerRow],
    jobs: Collection[str],
    *,
    known: Mapping[str, str] | None = None,
    warn: Callable[[str], None],
) -> dict[str, str]:
    """Run id -> final Glue state, for each ``running`` row of ``jobs`` whose job run has ended.

    A run's state is taken from ``known`` (run id -> state, from a listing already made), else
    asked with one ``GetJobRun``. Rows of other jobs (``local`` runs) are not asked about. When
    Glue cannot be asked (no credentials, access denied, no network), ``warn`` gets one line and
    what is known so far is returned: the listing never fails for it. A run Glue no longer knows
    (its history is kept 90 days) is left as the ledger says.
    """
    known = known or {}
    ended: dict[str, str] = {}
    for row in rows:
        if row.status != RUNNING or row.job_name not in jobs or not row.run_id:
            continue
        state = known.get(row.run_id)
        if state is None:
            try:
                run = glue.get_job_run(JobName=row.job_name, RunId=row.run_id)["JobRun"]
            except Exception as exc:
                if not is_aws_error(exc):
                    raise
                if aws_error_code(exc) == "EntityNotFoundException":
                    continue
                warn(
                    f"could not ask Glue whether running runs ended (AWS "
                    f"{describe_aws_error(exc)}); they are shown as the ledger says, unless a "
                    "later attempt started"
                )
                return ended
            state = str(run.get("JobRunState", ""))
        if state in FINAL_JOB_STATES:
            ended[row.run_id] = state
    return ended


def show_status(
    request_id: str,
    *,
    warehouse: str,
    say: Callable[[str], None],
    region: str | None = None,
    pipelines: Sequence[PipelineConfig] = (),
    glue: Any | None = None,
    entity: str | None = None,
    s3: Any | None = None,
    warn: Callable[[str], None] | None = None,
) -> bool:
    """Print where ``request_id`` is: its ledger rows (only ``entity``'s when given), then its
    runs of ``pipelines``' jobs and workflows (when ``glue`` is given). True when the ledger or
    Glue knows the request.

    A ``running`` row is shown as ``abandoned`` when a later attempt of it started, or when its
    Glue job run has ended (looked up among the jobs' recent runs, else with ``GetJobRun``).
    ``s3`` lists an ``s3://`` warehouse's ledger tables; botocore's errors from Glue propagate
    (after the ledger is printed).
    """
    location = runs_folder(warehouse)
    found = False
    say(f"request {request_id}" + (f" (entity {entity})" if entity else ""))
    asks_glue = glue is not None and bool(pipelines)
    recent: dict[str, list[dict[str, Any]]] = {}
    glue_error: Exception | None = None
    if asks_glue:
        try:
            recent = _recent_job_runs(glue, pipelines)
        except Exception as exc:
            if not is_aws_error(exc):
                raise
            glue_error = exc
    try:
        rows = read_ledger(warehouse, request_id, region=region, s3=s3)
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
            ended: dict[str, str] = {}
            if asks_glue and glue_error is None:
                listed = {
                    run["Id"]: str(run.get("JobRunState", "")) for r in recent.values() for run in r
                }
                ended = ended_job_runs(glue, rows, _jobs(pipelines), known=listed, warn=warn or say)
            say(f"ledger {location}:")
            shown = with_abandoned(rows, ended)
            for row in shown:
                say(f"  {row.describe()}")
            for line in delivery_summary(shown):
                say(line)
    if glue_error is not None:
        raise glue_error
    if asks_glue:
        runs = glue_runs(glue, pipelines, request_id, recent_job_runs=recent)
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


def delivery_summary(rows: Sequence[LedgerRow]) -> list[str]:
    """One line per entity: how many of the request's events reached the sink, and where.

    The events are those its (last successful) normalize put in the outbox; the deliveries are
    the publish runs' rows for the request (a run killed mid-batch may have delivered some
    twice: delivery is at least once, ``event_id`` is the dedupe key).

        normalize invoices outboxed 5; publish rows delivered 5 to file:/tmp/p
        -> "delivered: invoices 5 of 5 events, to file:/tmp/p"
    """
    lines: list[str] = []
    for entity in _unique(row.entity for row in rows):
        normalized = [
            row
            for row in rows
            if row.entity == entity and row.stage == "normalize" and row.status == "succeeded"
        ]
        if not normalized:
            continue
        outboxed = normalized[-1].rows_outboxed or 0
        published = [row for row in rows if row.entity == entity and row.stage == "publish"]
        delivered = sum(row.rows_delivered or 0 for row in published)
        dead = published[-1].rows_dead_lettered or 0 if published else 0
        sinks = ", ".join(_unique(row.sink for row in published if row.sink))
        if not published:
            text = f"not published yet (the next publish run delivers its {outboxed} events)"
        elif delivered >= outboxed:
            text = f"{outboxed} of {outboxed} events, to {sinks}"
            if delivered > outboxed:
                text += f" ({delivered - outboxed} delivered again after a restart)"
        else:
            text = f"{delivered} of {outboxed} events so far, to {sinks}"
            if dead:
                text += f"; {dead} dead-lettered or held (see dead_letter/{entity})"
        lines.append(f"delivered: {entity} {text}")
    return lines


def show_runs(
    runs_filter: RunsFilter,
    *,
    warehouse: str,
    say: Callable[[str], None],
    warn: Callable[[str], None],
    region: str | None = None,
    pipelines: Sequence[PipelineConfig] = (),
    glue: Any | None = None,
    s3: Any | None = None,
) -> None:
    """Print the ledger rows ``runs_filter`` admits as a table, newest first.

    A ``running`` row is shown as ``abandoned`` when a later attempt of it is among the rows
    shown, or when Glue (``glue``, for the rows of ``pipelines``' jobs, one ``GetJobRun`` each)
    says its job run ended; when Glue cannot be asked, ``warn`` says so and the table is printed
    all the same. Raises :class:`~glue_replay.trigger.ledger.LedgerUnavailableError` when the
    ledger cannot be read.

        ledger /data/wh/runs (2 tables): 2 rows, newest first
        started               stage      entity     request  mode  status     read ...
    """
    location = runs_folder(warehouse)
    found = read_runs(warehouse, runs_filter, region=region, s3=s3)
    matching = f" matching {runs_filter.describe()}" if runs_filter.describe() else ""
    if found is None:
        say(f"ledger: no runs table at {location}; nothing has run yet")
        return
    rows, tables = found
    if not rows:
        say(f"ledger: no row{matching} in {location}")
        return
    ended: dict[str, str] = {}
    if glue is not None and pipelines:
        shown = with_abandoned(rows)  # a later attempt already tells: no need to ask Glue
        ended = ended_job_runs(glue, shown, _jobs(pipelines), warn=warn)
    rows = with_abandoned(rows, ended)
    newest_first = list(reversed(rows))
    how_many = (
        f"the {len(rows)} newest rows (--last N for more)"
        if runs_filter.last is not None and len(rows) == runs_filter.last
        else f"{len(rows)} row{'s' if len(rows) != 1 else ''}, newest first"
    )
    say(f"ledger {location} ({tables} table{'s' if tables != 1 else ''}){matching}: {how_many}")
    for line in format_runs_table(newest_first):
        say(line)
    for row in newest_first:
        if row.abandoned_because:
            say(
                f"abandoned: run {row.run_id} ({row.stage} {row.entity}, request "
                f"{row.request_id}): {row.abandoned_because}"
            )


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


def _utc(moment: datetime | None) -> datetime:
    assert moment is not None
    return utc(moment)


def _iso(moment: datetime | None) -> str:
    return iso(moment)


def _one_line(text: str, limit: int = 300) -> str:
    return one_line(text, limit)
