"""Start a validated replay on AWS Glue with boto3: no Spark, no ingestion logic.

The whole cascade (``--stage all``) is **one Glue workflow run** whose *run properties* carry the
request: ``glue.start_workflow_run(Name=..., RunProperties={"replay_mode": "targeted", "ids":
"1,2,3", "request_id": ..., ...})``. Why run properties rather than conditional triggers alone:
a trigger's actions carry *fixed* arguments, set when the trigger is deployed, so per-request
arguments (the mode, the date, the ids, the request id) cannot travel through a trigger. They can
travel as the workflow run's properties: every job of the run receives ``--WORKFLOW_NAME`` and
``--WORKFLOW_RUN_ID``, reads the properties with ``glue.get_workflow_run_properties`` and takes
them as its replay arguments. The workflow's conditional trigger starts normalize after ingest
``SUCCEEDED`` within the same run, so normalize sees the same properties — the same request, the
same ``request_id`` — and a failed ingest never cascades. (The scheduled BAU trigger starts a run
with no properties: the BAU run.)

A single stage (``--stage ingest`` / ``--stage normalize``) is a plain
``glue.start_job_run(JobName=..., Arguments={"--replay_mode": ..., ...})``.

Property names are the job arguments without their dashes, only those set: ``replay_mode``,
``date``, ``until``, ``ids`` or ``ids_file``, ``request_id``, ``dry_run``, ``requested_by``.
Paths (``warehouse``, ``source_url``) are deployment settings, non-overridable on Glue, and never
sent. An id list longer than :data:`INLINE_IDS_LIMIT` characters is uploaded to
``<uploads_uri>/<request_id>/ids.csv`` and sent as ``ids_file``.

Before anything starts, :func:`find_busy_runs` looks for a run of any job (or of the workflow)
the request needs: the jobs run with ``max_concurrent_runs = 1`` (one writer per Delta table), so
a busy job is reported with the run that holds it instead of racing it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from glue_replay.errors import GlueReplayError
from glue_replay.id_rules import CUSTOMER_IDS
from glue_replay.request import JobArguments, ReplayMode, parse_job_arguments
from glue_replay.trigger.config import DeploymentConfig

log = logging.getLogger(__name__)

Stage = Literal["ingest", "normalize", "all"]
STAGES: tuple[Stage, ...] = ("ingest", "normalize", "all")

#: Longest comma-joined id list sent inline, in characters. Glue allows far more in a job's
#: arguments (the issue's figure: 260 KB), but a workflow run's properties, the CloudWatch
#: console and the ledger are all happier with small values; beyond this the ids go to S3.
INLINE_IDS_LIMIT = 20_000

#: Job-run states in which a run still holds its job (``max_concurrent_runs = 1``).
ACTIVE_JOB_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "WAITING"})
ACTIVE_WORKFLOW_STATES = frozenset({"RUNNING", "STOPPING"})
#: How many recent runs of a job or workflow the busy check looks at.
BUSY_CHECK_RUNS = 50

ReadS3Object = Callable[[str, str], bytes]


class JobBusyError(GlueReplayError):
    """A job (or the workflow) the request needs is already running; nothing was started."""

    def __init__(self, busy: BusyRun) -> None:
        self.busy = busy
        super().__init__(busy.describe())

    def __reduce__(self) -> tuple[type[JobBusyError], tuple[BusyRun]]:
        return (type(self), (self.busy,))


@dataclass(frozen=True)
class BusyRun:
    """A run that holds a job or the workflow."""

    kind: Literal["job", "workflow"]
    name: str
    run_id: str
    state: str
    started_on: datetime | None

    def describe(self) -> str:
        since = f" since {_iso(self.started_on)}" if self.started_on else ""
        return f"{self.kind} {self.name} is busy with run {self.run_id} ({self.state}{since})"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "name": self.name,
            "run_id": self.run_id,
            "state": self.state,
            "started_on": _iso(self.started_on) if self.started_on else None,
        }


@dataclass(frozen=True)
class GlueTarget:
    """What a stage starts on Glue: the workflow (``--stage all``) or one job."""

    stage: Stage
    workflow: str | None
    jobs: tuple[str, ...]
    #: The deployment's workflows (replay and BAU), as configured: a run of either holds the
    #: jobs even between its stages (ingest done, normalize about to start), so any request
    #: waits for it.
    busy_workflows: tuple[str, ...] = ()

    @classmethod
    def of(cls, config: DeploymentConfig, stage: Stage) -> GlueTarget:
        workflows = tuple(
            dict.fromkeys(w for w in (config.workflow_name, config.bau_workflow_name) if w)
        )
        if stage == "ingest":
            return cls(stage, None, (config.require("ingest_job"),), workflows)
        if stage == "normalize":
            return cls(stage, None, (config.require("normalize_job"),), workflows)
        workflow = config.require("workflow_name")
        jobs = (config.require("ingest_job"), config.require("normalize_job"))
        return cls(stage, workflow, jobs, workflows)

    def describe(self) -> str:
        if self.workflow:
            return f"workflow {self.workflow} ({' -> '.join(self.jobs)})"
        return f"job {self.jobs[0]}"


@dataclass(frozen=True)
class StartedReplay:
    """What :func:`start_replay` started."""

    request_id: str
    target: GlueTarget
    properties: dict[str, str]
    workflow_run_id: str | None = None
    job_run_ids: dict[str, str] = field(default_factory=dict)
    ids_file: str | None = None

    def describe(self) -> list[str]:
        if self.workflow_run_id:
            lines = [f"workflow {self.target.workflow} run {self.workflow_run_id}"]
            lines.append(f"  jobs: {' -> '.join(self.target.jobs)} (normalize after ingest)")
        else:
            lines = [f"job {name} run {run_id}" for name, run_id in self.job_run_ids.items()]
        if self.ids_file:
            lines.append(f"ids uploaded to {self.ids_file}")
        return lines

    def as_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {"request_id": self.request_id}
        if self.workflow_run_id:
            body["workflow_name"] = self.target.workflow
            body["workflow_run_id"] = self.workflow_run_id
        else:
            body["job_run_ids"] = dict(self.job_run_ids)
        if self.ids_file:
            body["ids_file"] = self.ids_file
        return body


def new_request_id(mode: ReplayMode | str, now: datetime | None = None) -> str:
    """``<mode>-<UTC yyyymmddThhmmss>-<8 hex>``, e.g. ``targeted-20260127T101500-1a2b3c4d``.

    ``mode`` is not checked here: the request's validation refuses a bad mode first.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    prefix = mode.value if isinstance(mode, ReplayMode) else str(mode).strip().lower()
    return f"{prefix}-{moment:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def validate(
    options: Mapping[str, str | None],
    *,
    read_s3_object: ReadS3Object | None = None,
    environ: Mapping[str, str] | None = None,
) -> JobArguments:
    """Validate a request given as job arguments (``{"replay_mode": "since", ...}``) exactly as
    the jobs do: the same parser, the customers' id rule. ``None`` values are left out.

    Raises :class:`~glue_replay.errors.InvalidRequestError` naming the job argument.
    """
    # --name=value: a value that starts with dashes stays a value.
    argv = ["glue-replay", *(f"--{k}={v}" for k, v in options.items() if v is not None)]
    return parse_job_arguments(
        argv,
        id_pattern=CUSTOMER_IDS.pattern,
        id_pattern_help=CUSTOMER_IDS.help,
        read_s3_object=read_s3_object,
        environ=environ,
    )


def replay_properties(args: JobArguments, ids_file: str | None = None) -> dict[str, str]:
    """The request as Glue workflow run properties (job arguments without dashes), only the set
    ones; the ids inline, or ``ids_file`` when they were uploaded there."""
    request = args.request
    properties = {"replay_mode": request.mode.value}
    if request.since:
        properties["date"] = request.since.isoformat()
    if request.until:
        properties["until"] = request.until.isoformat()
    if ids_file:
        properties["ids_file"] = ids_file
    elif request.ids:
        properties["ids"] = ",".join(request.ids)
    properties["request_id"] = request.request_id
    if request.dry_run:
        properties["dry_run"] = "true"
    properties["requested_by"] = args.requested_by
    return properties


def as_job_arguments(properties: Mapping[str, str]) -> dict[str, str]:
    """Run properties as ``start_job_run`` arguments: ``{"--replay_mode": "full", ...}``."""
    return {f"--{name}": value for name, value in properties.items()}


def ids_too_long(ids: Sequence[str]) -> bool:
    """True when the comma-joined ids exceed :data:`INLINE_IDS_LIMIT` characters."""
    return sum(len(i) for i in ids) + max(len(ids) - 1, 0) > INLINE_IDS_LIMIT


def ids_csv(ids: Sequence[str]) -> bytes:
    """The uploaded id file: a header row ``id``, then one id a line."""
    return "".join(f"{line}\n" for line in ("id", *ids)).encode()


def upload_ids(s3: Any, config: DeploymentConfig, request_id: str, ids: Sequence[str]) -> str:
    """Put ``ids`` at ``<uploads_uri>/<request_id>/ids.csv``; returns its ``s3://`` URI."""
    bucket, prefix = config.uploads_location
    key = f"{prefix}/{request_id}/ids.csv" if prefix else f"{request_id}/ids.csv"
    encryption: dict[str, str] = {"ServerSideEncryption": "AES256"}
    if config.uploads_kms_key:
        encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": config.uploads_kms_key}
    s3.put_object(Bucket=bucket, Key=key, Body=ids_csv(ids), ContentType="text/csv", **encryption)
    uri = f"s3://{bucket}/{key}"
    log.info("uploaded %d ids to %s", len(ids), uri)
    return uri


def find_busy_runs(glue: Any, target: GlueTarget) -> list[BusyRun]:
    """Runs that hold a job (or the workflow) ``target`` needs, most recent first."""
    busy: list[BusyRun] = []
    for job in target.jobs:
        runs = glue.get_job_runs(JobName=job, MaxResults=BUSY_CHECK_RUNS).get("JobRuns", [])
        busy.extend(
            BusyRun("job", job, run["Id"], run["JobRunState"], run.get("StartedOn"))
            for run in runs
            if run.get("JobRunState") in ACTIVE_JOB_STATES
        )
    for workflow in target.busy_workflows:
        response = glue.get_workflow_runs(
            Name=workflow, IncludeGraph=False, MaxResults=BUSY_CHECK_RUNS
        )
        busy.extend(
            BusyRun(
                "workflow",
                workflow,
                run["WorkflowRunId"],
                run["Status"],
                run.get("StartedOn"),
            )
            for run in response.get("Runs", [])
            if run.get("Status") in ACTIVE_WORKFLOW_STATES
        )
    return sorted(
        busy, key=lambda b: b.started_on or datetime.min.replace(tzinfo=UTC), reverse=True
    )


def start_replay(
    glue: Any, s3: Any, config: DeploymentConfig, args: JobArguments, stage: Stage
) -> StartedReplay:
    """Upload the ids if needed, then start the workflow run or the job run.

    Does not check for busy runs first (see :func:`find_busy_runs`), but a run that started in
    between is still caught: Glue's ``ConcurrentRunsExceededException`` becomes a
    :class:`JobBusyError` naming the run that holds the job.
    """
    from botocore.exceptions import ClientError

    target = GlueTarget.of(config, stage)
    request = args.request
    ids_file = (
        upload_ids(s3, config, request.request_id, request.ids)
        if ids_too_long(request.ids)
        else None
    )
    properties = replay_properties(args, ids_file)
    log.info(
        "starting %s for request %s: %s",
        target.describe(),
        request.request_id,
        json.dumps({k: v for k, v in properties.items() if k != "ids"}, sort_keys=True),
    )
    try:
        if target.workflow:
            response = glue.start_workflow_run(Name=target.workflow, RunProperties=properties)
            return StartedReplay(
                request.request_id,
                target,
                properties,
                workflow_run_id=response["RunId"],
                ids_file=ids_file,
            )
        arguments = as_job_arguments(properties)
        run_ids = {
            job: glue.start_job_run(JobName=job, Arguments=arguments)["JobRunId"]
            for job in target.jobs
        }
        return StartedReplay(
            request.request_id, target, properties, job_run_ids=run_ids, ids_file=ids_file
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConcurrentRunsExceededException":
            raise
        holders = find_busy_runs(glue, target)
        name = target.workflow or target.jobs[0]
        kind: Literal["job", "workflow"] = "workflow" if target.workflow else "job"
        raise JobBusyError(
            holders[0] if holders else BusyRun(kind, name, "(not listed)", "RUNNING", None)
        ) from None


def describe_client_error(exc: Exception) -> str:
    """``GetJobRuns: EntityNotFoundException (Job not found)`` for a botocore error, briefly."""
    response = getattr(exc, "response", None)
    operation = getattr(exc, "operation_name", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code, message = error.get("Code", "error"), error.get("Message", "")
        text = f"{operation}: {code}" if operation else str(code)
        return f"{text} ({message})" if message else text
    return f"{type(exc).__name__}: {exc}"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
