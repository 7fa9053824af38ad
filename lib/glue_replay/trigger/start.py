"""Start a validated replay on AWS Glue with boto3: no Spark, no ingestion logic.

Each deployed pipeline (one entity, see :class:`~glue_replay.trigger.config.PipelineConfig`) has
its own ingest and normalize jobs, its replay workflow and its BAU workflow; a request is for one
pipeline, and starts only that pipeline's workflow or jobs.

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

Property names are the request's canonical fields, only those set
(:meth:`~glue_replay.request.ReplayRequest.as_fields` and ``requested_by``): ``replay_mode``,
``date``, ``until``, ``ids`` or ``ids_file``, ``request_id``, ``dry_run``, ``requested_by``.
Paths (``warehouse``, ``source_url``) are deployment settings, non-overridable on Glue, and never
sent. An id list longer than :data:`INLINE_IDS_LIMIT` characters is uploaded to
``<uploads_uri>/<request_id>/ids.csv`` and sent as ``ids_file``.

Before anything starts, :func:`find_busy_runs` looks for a run of any job the request needs, and
of the pipeline's replay and BAU workflows: the jobs run with ``max_concurrent_runs = 1`` (one
writer per Delta table), so a busy job is reported with the run that holds it instead of racing
it.

What happens when a BAU run and a replay meet anyway (the BAU run starts between that check and
the start): a direct ``StartJobRun`` is refused at once (``ConcurrentRunsExceededException``).
``StartWorkflowRun`` is not: a workflow's ``MaxConcurrentRuns`` limits runs of that workflow only,
so Glue accepts the run, and its trigger's ingest run then FAILS at once ("exceeded its maximum
allowed concurrent runs"): the workflow run ends with nothing written and nothing cascaded. So
after a workflow run starts, :func:`confirm_started` watches its graph for up to
:data:`CONFIRM_SECONDS` until the first job's run appears: a run refused for concurrency is
reported as busy (the CLI's exit 3, the Lambda's 409), like a refusal before the start.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from glue_replay.aws import aws_error_code, is_aws_error, read_s3_object
from glue_replay.errors import GlueReplayError, InvalidRequestError
from glue_replay.request import (
    REPLAY_MODES,
    IdRule,
    JobArguments,
    ReadS3Object,
    ReplayMode,
    build_job_arguments,
)
from glue_replay.trigger.config import DeploymentConfig, PipelineConfig

log = logging.getLogger(__name__)

Stage = Literal["ingest", "normalize", "all"]
STAGES: tuple[Stage, ...] = ("ingest", "normalize", "all")
#: What a replay trigger accepts as a mode: ``full, since or targeted`` (never BAU).
REPLAY_MODES_TEXT = ", ".join(m.value for m in REPLAY_MODES[:-1]) + f" or {REPLAY_MODES[-1].value}"

#: Longest comma-joined id list sent inline, in characters. Glue allows far more in a job's
#: arguments (the issue's figure: 260 KB), but a workflow run's properties, the CloudWatch
#: console and the ledger are all happier with small values; beyond this the ids go to S3.
INLINE_IDS_LIMIT = 20_000

#: Job-run states in which a run still holds its job (``max_concurrent_runs = 1``).
ACTIVE_JOB_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "WAITING"})
ACTIVE_WORKFLOW_STATES = frozenset({"RUNNING", "STOPPING"})
#: How many recent runs of a job or workflow the busy check looks at.
BUSY_CHECK_RUNS = 50
#: How long a started workflow run is watched until its first job's run shows that Glue accepted
#: it (seconds), and how often. A trigger starts that run within seconds.
CONFIRM_SECONDS = 20.0
CONFIRM_POLL_SECONDS = 2.0
#: A job run that Glue refused because the job was at its max_concurrent_runs.
_CONCURRENCY_REFUSAL = re.compile(r"concurrent\s*runs", re.IGNORECASE)


class JobBusyError(GlueReplayError):
    """A job (or the workflow) the request needs is already running; nothing ran.

    ``refused`` names a workflow run that Glue started and whose first job run it refused for
    concurrency (None when nothing was started at all).
    """

    def __init__(self, busy: BusyRun, refused: str | None = None) -> None:
        self.busy, self.refused = busy, refused
        super().__init__(busy.describe())

    def __reduce__(self) -> tuple[type[JobBusyError], tuple[BusyRun, str | None]]:
        return (type(self), (self.busy, self.refused))

    def outcome(self) -> str:
        """What became of the request: ``nothing started`` or the refused run, nothing ran."""
        if self.refused is None:
            return "nothing started"
        return f"{self.refused} was started and Glue refused its first job run: nothing ran"


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
    """What a stage of one pipeline starts on Glue: its replay workflow (``--stage all``) or one
    of its jobs."""

    entity: str
    stage: Stage
    workflow: str | None
    jobs: tuple[str, ...]
    #: The pipeline's workflows (replay and BAU): a run of either holds the jobs even between
    #: its stages (ingest done, normalize about to start), so any request waits for it.
    busy_workflows: tuple[str, ...] = ()

    @classmethod
    def of(cls, pipeline: PipelineConfig, stage: Stage) -> GlueTarget:
        workflows = pipeline.workflows
        if stage == "ingest":
            return cls(pipeline.entity, stage, None, (pipeline.ingest_job,), workflows)
        if stage == "normalize":
            return cls(pipeline.entity, stage, None, (pipeline.normalize_job,), workflows)
        jobs = (pipeline.ingest_job, pipeline.normalize_job)
        return cls(pipeline.entity, stage, pipeline.workflow_name, jobs, workflows)

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
    #: What :func:`confirm_started` saw: whether Glue accepted the first job's run, and how.
    confirmation: Confirmation | None = None

    def describe(self) -> list[str]:
        if self.workflow_run_id:
            lines = [f"workflow {self.target.workflow} run {self.workflow_run_id}"]
            lines.append(f"  jobs: {' -> '.join(self.target.jobs)} (normalize after ingest)")
        else:
            lines = [f"job {name} run {run_id}" for name, run_id in self.job_run_ids.items()]
        if self.ids_file:
            lines.append(f"ids uploaded to {self.ids_file}")
        if self.confirmation is not None:
            lines.append(self.confirmation.describe())
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
        if self.confirmation is not None:
            body["confirmed"] = self.confirmation.confirmed
            body["confirmation"] = self.confirmation.detail
        return body


@dataclass(frozen=True)
class Confirmation:
    """Whether Glue was seen to accept a started workflow run's first job run."""

    confirmed: bool
    detail: str

    def describe(self) -> str:
        return f"{'confirmed' if self.confirmed else 'not confirmed'}: {self.detail}"


def confirm_started(
    glue: Any,
    started: StartedReplay,
    *,
    within: float = CONFIRM_SECONDS,
    poll: float = CONFIRM_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Confirmation:
    """Watch a started workflow run until its first job's run shows whether Glue accepted it.

    Raises :class:`JobBusyError` if Glue refused that run for concurrency (a run of the job that
    began after the busy check). Returns an unconfirmed :class:`Confirmation` when no run showed
    up within ``within`` seconds, or when the endpoint answers with no workflow graph.
    """
    run_id, workflow = started.workflow_run_id, started.target.workflow
    if run_id is None or workflow is None:
        # StartJobRun refuses a busy job itself (ConcurrentRunsExceededException).
        return Confirmation(True, "started by StartJobRun, which refuses a busy job itself")
    first_job = started.target.jobs[0]
    deadline = clock() + within
    while True:
        run = glue.get_workflow_run(Name=workflow, RunId=run_id, IncludeGraph=True)["Run"]
        graph = run.get("Graph")
        if graph is None:
            return Confirmation(False, "Glue answered with no workflow graph to watch")
        job_runs = [
            job_run
            for node in graph.get("Nodes", [])
            if node.get("Type") == "JOB" and node.get("Name") == first_job
            for job_run in (node.get("JobDetails") or {}).get("JobRuns", [])
        ]
        for job_run in job_runs:
            refused = job_run.get("JobRunState") == "FAILED" and _CONCURRENCY_REFUSAL.search(
                job_run.get("ErrorMessage") or ""
            )
            if refused:
                holders = [b for b in find_busy_runs(glue, started.target) if b.run_id != run_id]
                holder = holders[0] if holders else BusyRun("job", first_job, "?", "RUNNING", None)
                raise JobBusyError(holder, refused=f"workflow {workflow} run {run_id}")
        if job_runs:
            latest = job_runs[-1]
            return Confirmation(
                True, f"{first_job} run {latest.get('Id', '?')} {latest.get('JobRunState', '?')}"
            )
        if clock() >= deadline:
            return Confirmation(False, f"no run of {first_job} yet after {within:.0f} s")
        sleep(poll)


def new_request_id(mode: ReplayMode | str, now: datetime | None = None) -> str:
    """``<mode>-<UTC yyyymmddThhmmss>-<8 hex>``, e.g. ``targeted-20260127T101500-1a2b3c4d``.

    ``mode`` is not checked here: the request's validation refuses a bad mode first.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    prefix = mode.value if isinstance(mode, ReplayMode) else str(mode).strip().lower()
    return f"{prefix}-{moment:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def validate(
    fields: Mapping[str, str | None],
    *,
    ids: IdRule,
    read_s3_object: ReadS3Object | None = None,
    environ: Mapping[str, str] | None = None,
) -> JobArguments:
    """Validate a replay request given as canonical fields (``{"replay_mode": "since", ...}``,
    ``None``: not given) with the entity's id rule, in the one place every request is validated
    (:func:`~glue_replay.request.build_job_arguments`). A trigger's rule comes first: the mode
    is required and is a replay mode (BAU is the schedule's, never a replay).

    Raises :class:`~glue_replay.errors.InvalidRequestError` naming the canonical field.
    """
    check_replay_mode(fields.get("replay_mode"))
    return build_job_arguments(
        {name: value for name, value in fields.items() if value is not None},
        ids=ids,
        read_s3_object=read_s3_object,
        environ=environ,
    )


def check_replay_mode(raw: str | None) -> ReplayMode:
    """The replay mode a trigger was asked for: required, and never BAU."""
    if raw is None:
        raise InvalidRequestError(
            "replay_mode", "is required (a replay is never a default)", REPLAY_MODES_TEXT
        )
    replay_modes = {m.value: m for m in REPLAY_MODES}
    lowered = raw.strip().lower()
    if lowered == ReplayMode.BAU.value:
        raise InvalidRequestError(
            "replay_mode", f"{raw!r} is the scheduled run, not a replay", REPLAY_MODES_TEXT
        )
    if lowered not in replay_modes:
        raise InvalidRequestError("replay_mode", f"{raw!r} is not a replay mode", REPLAY_MODES_TEXT)
    return replay_modes[lowered]


def replay_properties(args: JobArguments, ids_file: str | None = None) -> dict[str, str]:
    """The request as Glue workflow run properties: its canonical fields and who asked; the ids
    inline, or ``ids_file`` when they were uploaded there."""
    properties = args.request.as_fields()
    if ids_file:
        properties.pop("ids", None)
        properties["ids_file"] = ids_file
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
    glue: Any,
    s3: Any,
    config: DeploymentConfig,
    target: GlueTarget,
    args: JobArguments,
    *,
    confirm_within: float = CONFIRM_SECONDS,
) -> StartedReplay:
    """Upload the ids if needed, then start ``target``'s workflow run or job run.

    Does not check for busy runs first (see :func:`find_busy_runs`), but a run that started in
    between is still caught: Glue's ``ConcurrentRunsExceededException`` (a job run), or a workflow
    run whose first job run Glue refused for concurrency (:func:`confirm_started`, watched for up
    to ``confirm_within`` seconds), becomes a :class:`JobBusyError` naming the run that holds
    the job.
    """
    from botocore.exceptions import ClientError

    request = args.request
    ids_file = (
        upload_ids(s3, config, request.request_id, request.ids)
        if ids_too_long(request.ids)
        else None
    )
    properties = replay_properties(args, ids_file)
    log.info(
        "starting %s of %s for request %s: %s",
        target.describe(),
        target.entity,
        request.request_id,
        json.dumps({k: v for k, v in properties.items() if k != "ids"}, sort_keys=True),
    )
    try:
        if target.workflow:
            response = glue.start_workflow_run(Name=target.workflow, RunProperties=properties)
            started = StartedReplay(
                request.request_id,
                target,
                properties,
                workflow_run_id=response["RunId"],
                ids_file=ids_file,
            )
            confirmation = confirm_started(glue, started, within=confirm_within)
            return replace(started, confirmation=confirmation)
        arguments = as_job_arguments(properties)
        run_ids = {
            job: glue.start_job_run(JobName=job, Arguments=arguments)["JobRunId"]
            for job in target.jobs
        }
        return StartedReplay(
            request.request_id, target, properties, job_run_ids=run_ids, ids_file=ids_file
        )
    except ClientError as exc:
        if aws_error_code(exc) != "ConcurrentRunsExceededException":
            raise
        holders = find_busy_runs(glue, target)
        name = target.workflow or target.jobs[0]
        kind: Literal["job", "workflow"] = "workflow" if target.workflow else "job"
        raise JobBusyError(
            holders[0] if holders else BusyRun(kind, name, "(not listed)", "RUNNING", None)
        ) from None


class AwsClients:
    """The boto3 clients of one command or invocation, created when first used."""

    def __init__(self, region: str | None) -> None:
        import boto3

        self._session = boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)
        return self._clients[service]

    @property
    def glue(self) -> Any:
        return self.client("glue")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    def read_s3_object(self, bucket: str, key: str) -> bytes:
        """An object's bytes with this session's S3 client (the ids-file reader's hook)."""
        return read_s3_object(bucket, key, client=self.s3)

    def caller(self) -> str | None:
        """Who is asking, for the ledger: the caller's IAM ARN (``None`` if STS cannot say)."""
        try:
            arn = str(self.client("sts").get_caller_identity()["Arn"])
        except Exception as exc:
            if not is_aws_error(exc):
                raise
            return None
        # The ledger takes up to 128 characters: keep the ARN's most specific part.
        return arn if len(arn) <= 128 else arn.rsplit(":", 1)[-1][-128:]


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
