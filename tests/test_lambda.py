"""The Lambda trigger against Glue and S3 in moto: what it starts, what it refuses, what it says."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from moto import mock_aws
from moto.glue.models import glue_backends
from moto.moto_api import state_manager

from glue_replay.trigger.lambda_handler import handler

pytest.register_assert_rewrite("moto_deployment")  # its asserts explain failures as these do
from moto_deployment import (  # noqa: E402
    ACCOUNT,
    BAU_WORKFLOW,
    INGEST,
    NORMALIZE,
    REGION,
    UPLOADS_BUCKET,
    WORKFLOW,
    Deployment,
    aws_environment,
    create_deployment,
)

TODAY = datetime.now(UTC).date().isoformat()


@dataclass(frozen=True)
class Context:
    """The attributes of a Lambda context object the handler reads."""

    function_name: str = "glue-replay-trigger"
    aws_request_id: str = "c0ffee"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    aws_environment(monkeypatch)
    # The Lambda is configured by its environment alone (Terraform sets these).
    for name, value in {
        "GLUE_REPLAY_WORKFLOW": WORKFLOW,
        "GLUE_REPLAY_BAU_WORKFLOW": BAU_WORKFLOW,
        "GLUE_REPLAY_INGEST_JOB": INGEST,
        "GLUE_REPLAY_NORMALIZE_JOB": NORMALIZE,
        "GLUE_REPLAY_UPLOADS_URI": f"s3://{UPLOADS_BUCKET}/ids",
        "GLUE_REPLAY_WAREHOUSE": "s3://lake/glue-replay",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        glue, s3 = create_deployment()
        try:
            yield Deployment(glue, s3, uploads_prefix="ids/")
        finally:
            state_manager.unset_transition("glue::job_run")


def invoke(event: Any) -> tuple[int, dict[str, Any]]:
    response = handler(event, Context())
    assert response["headers"] == {"Content-Type": "application/json"}
    return response["statusCode"], json.loads(response["body"])


def test_an_event_starts_one_workflow_run_and_returns_the_request_id(aws: Deployment) -> None:
    status, body = invoke({"mode": "targeted", "ids": ["7", 3, "7"]})

    [run] = aws.workflow_runs()
    request_id = run["WorkflowRunProperties"]["request_id"]
    assert re.fullmatch(r"targeted-\d{8}T\d{6}-[0-9a-f]{8}", request_id)
    assert (status, body) == (
        202,
        {
            "request_id": request_id,
            "workflow_name": WORKFLOW,
            "workflow_run_id": run["WorkflowRunId"],
        },
    )
    assert run["WorkflowRunProperties"] == {
        "replay_mode": "targeted",
        "ids": "7,3",
        "request_id": request_id,
        "requested_by": "lambda:glue-replay-trigger",
    }
    assert aws.job_runs(INGEST) == [] and aws.job_runs(NORMALIZE) == []


def test_one_stage_from_an_event_is_a_job_run(aws: Deployment) -> None:
    status, body = invoke(
        {
            "mode": "since",
            "date": "2026-01-01",
            "until": "2026-02-01",
            "stage": "normalize",
            "dry_run": True,
            "request_id": "fix-1842",
            "requested_by": "jane.doe@example.com",
        }
    )

    [run] = aws.job_runs(NORMALIZE)
    assert (status, body) == (
        202,
        {"request_id": "fix-1842", "job_run_ids": {NORMALIZE: run["Id"]}},
    )
    assert run["Arguments"] == {
        "--replay_mode": "since",
        "--date": "2026-01-01",
        "--until": "2026-02-01",
        "--request_id": "fix-1842",
        "--dry_run": "true",
        "--requested_by": "jane.doe@example.com",
    }
    assert aws.workflow_runs() == [] and aws.job_runs(INGEST) == []


def test_a_full_backfill_needs_confirm_true(aws: Deployment) -> None:
    refused = invoke({"mode": "full", "request_id": "bf-1"})
    aws.assert_nothing_started()
    accepted = invoke({"mode": "full", "request_id": "bf-1", "confirm": True})

    assert refused == (
        400,
        {
            "error": "invalid request: confirm: a full backfill must be confirmed; "
            'accepted: "confirm": true in the event'
        },
    )
    [run] = aws.workflow_runs()
    assert accepted == (
        202,
        {"request_id": "bf-1", "workflow_name": WORKFLOW, "workflow_run_id": run["WorkflowRunId"]},
    )
    assert run["WorkflowRunProperties"] == {
        "replay_mode": "full",
        "request_id": "bf-1",
        "requested_by": "lambda:glue-replay-trigger",
    }


def test_a_large_ids_file_on_s3_is_rewritten_to_the_uploads_prefix(aws: Deployment) -> None:
    # The jobs' rule for a one-column file: the header is "id" (see request.ids_from_text).
    lines = ["id", *(f"C-{i:05d}" for i in range(1, 50_001))]
    aws.s3.put_object(
        Bucket=UPLOADS_BUCKET, Key="incoming/export.csv", Body="\r\n".join(lines).encode()
    )

    status, body = invoke(
        {"mode": "targeted", "ids_file": f"s3://{UPLOADS_BUCKET}/incoming/export.csv"}
    )

    [run] = aws.workflow_runs()
    request_id = run["WorkflowRunProperties"]["request_id"]
    key = f"ids/{request_id}/ids.csv"
    assert (status, body) == (
        202,
        {
            "request_id": request_id,
            "workflow_name": WORKFLOW,
            "workflow_run_id": run["WorkflowRunId"],
            "ids_file": f"s3://{UPLOADS_BUCKET}/{key}",
        },
    )
    assert run["WorkflowRunProperties"] == {
        "replay_mode": "targeted",
        "ids_file": f"s3://{UPLOADS_BUCKET}/{key}",
        "request_id": request_id,
        "requested_by": "lambda:glue-replay-trigger",
    }
    uploaded = aws.s3.get_object(Bucket=UPLOADS_BUCKET, Key=key)["Body"].read().decode()
    assert uploaded.startswith("id\nC-00001\nC-00002\n") and uploaded.endswith("\nC-50000\n")
    assert uploaded == "id\n" + "".join(f"C-{i:05d}\n" for i in range(1, 50_001))


def test_a_busy_job_answers_409_with_the_run_that_holds_it(aws: Deployment) -> None:
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 10**9})
    holder_id = aws.glue.start_job_run(JobName=NORMALIZE)["JobRunId"]
    holder = aws.glue.get_job_run(JobName=NORMALIZE, RunId=holder_id)["JobRun"]
    since = holder["StartedOn"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    status, body = invoke({"mode": "targeted", "ids": "1,2", "request_id": "busy-1"})

    assert (status, body) == (
        409,
        {
            "error": f"job {NORMALIZE} is busy with run {holder_id} (STARTING since {since}); "
            "nothing started",
            "busy": {
                "kind": "job",
                "name": NORMALIZE,
                "run_id": holder_id,
                "state": "STARTING",
                "started_on": since,
            },
        },
    )
    aws.assert_nothing_started(except_runs=1)


def test_a_running_bau_workflow_answers_409(aws: Deployment) -> None:
    bau_run = aws.glue.start_workflow_run(Name=BAU_WORKFLOW)["RunId"]
    started_on = aws.glue.get_workflow_run(Name=BAU_WORKFLOW, RunId=bau_run)["Run"]["StartedOn"]
    since = started_on.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    status, body = invoke({"mode": "targeted", "ids": "1", "stage": "ingest"})

    assert (status, body) == (
        409,
        {
            "error": f"workflow {BAU_WORKFLOW} is busy with run {bau_run} (RUNNING since {since}); "
            "nothing started",
            "busy": {
                "kind": "workflow",
                "name": BAU_WORKFLOW,
                "run_id": bau_run,
                "state": "RUNNING",
                "started_on": since,
            },
        },
    )
    aws.assert_nothing_started()


def test_a_race_lost_at_start_is_a_409_too(aws: Deployment) -> None:
    """Glue's ConcurrentRunsExceededException, when a run slips in after the busy check."""
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 10**9})
    holder_id = aws.glue.start_job_run(JobName=INGEST)["JobRunId"]
    backend_runs = glue_backends[ACCOUNT][REGION].jobs[INGEST].job_runs
    # Hide the holder from the busy check's listing only, as a run started a moment later would be.
    original = glue_backends[ACCOUNT][REGION].jobs[INGEST].get_job_runs
    listings = iter([[], backend_runs])
    glue_backends[ACCOUNT][REGION].jobs[INGEST].get_job_runs = lambda: next(listings)
    try:
        status, body = invoke({"mode": "targeted", "ids": "1", "stage": "ingest"})
    finally:
        glue_backends[ACCOUNT][REGION].jobs[INGEST].get_job_runs = original

    assert status == 409
    assert body["busy"]["run_id"] == holder_id
    assert body["error"].startswith(f"job {INGEST} is busy with run {holder_id} (STARTING since ")


BAD_EVENTS = [
    ({}, "mode: is required (a replay is never a default); accepted: full, since or targeted"),
    ("not json", "event: is not JSON; accepted: a JSON object"),
    (["targeted"], "event: is a list; accepted: a JSON object with the replay's fields"),
    (
        {"replay_mode": "full"},
        "replay_mode: is not a field of a replay request; accepted: mode, date, until, ids, "
        "ids_file, stage, dry_run, request_id, requested_by, confirm",
    ),
    (
        {"mode": "bau"},
        "mode: 'bau' is the scheduled run, not a replay; accepted: full, since or targeted",
    ),
    (
        {"mode": "everything"},
        "mode: 'everything' is not a replay mode; accepted: full, since or targeted",
    ),
    ({"mode": 3}, "mode: is a int, not a string; accepted: a JSON string"),
    (
        {"mode": "since", "date": "2026-13-01"},
        "date: '2026-13-01' is not a calendar date; "
        "accepted: a UTC date YYYY-MM-DD, e.g. 2026-01-31",
    ),
    (
        {"mode": "since", "date": "2999-01-01"},
        f"date: 2999-01-01 is in the future (today is {TODAY} UTC); "
        "accepted: a date on or before today",
    ),
    (
        {"mode": "full", "ids": ["1"], "confirm": True},
        "ids: is only valid with mode targeted (mode is full); "
        "accepted: mode targeted ids ..., or no ids",
    ),
    (
        {"mode": "targeted"},
        "ids: mode targeted needs ids; accepted: ids 1,2,3 or ids_file PATH|s3://bucket/key.csv",
    ),
    (
        {"mode": "targeted", "ids": ["1", "2' OR '1'='1"]},
        "ids: \"2' OR '1'='1\" is not a safe id; "
        "accepted: 1-64 letters, digits or _ . : -, starting with a letter or digit",
    ),
    (
        {"mode": "targeted", "ids": [1, {"id": 2}]},
        "ids: is neither a list of ids nor a string; "
        'accepted: ["1", "2"] or "1,2" (strings or integers)',
    ),
    (
        {"mode": "targeted", "ids": "1", "ids_file": f"s3://{UPLOADS_BUCKET}/x.csv"},
        "ids_file: was given together with ids; accepted: either ids or ids_file, not both",
    ),
    (
        {"mode": "targeted", "ids_file": f"s3://{UPLOADS_BUCKET}/missing.csv"},
        f"ids_file: cannot read s3://{UPLOADS_BUCKET}/missing.csv (GetObject: NoSuchKey (The "
        "specified key does not exist.)); accepted: an s3:// object the trigger may read",
    ),
    (
        {"mode": "targeted", "ids": "1", "stage": "publish"},
        "stage: 'publish' is not a stage; accepted: ingest, normalize, all (default all)",
    ),
    (
        {"mode": "targeted", "ids": "1", "dry_run": "maybe"},
        "dry_run: 'maybe' is not a boolean; accepted: true or false",
    ),
    (
        {"mode": "targeted", "ids": "1", "request_id": "../etc"},
        "request_id: '../etc' is not a valid request id; "
        "accepted: 1-128 letters, digits or _ . : -, starting with a letter or digit",
    ),
    (
        {"mode": "targeted", "ids": "1", "requested_by": "jane; rm -rf"},
        "requested_by: 'jane; rm -rf' is not a principal name; accepted: a user or role name",
    ),
]


@pytest.mark.parametrize(("event", "error"), BAD_EVENTS)
def test_a_bad_event_answers_400_in_one_line_and_starts_nothing(
    aws: Deployment, event: Any, error: str
) -> None:
    status, body = invoke(event)

    assert (status, body) == (400, {"error": f"invalid request: {error}"})
    aws.assert_nothing_started()


def test_a_lambda_without_its_configuration_answers_500(
    aws: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLUE_REPLAY_WORKFLOW")

    status, body = invoke({"mode": "targeted", "ids": "1"})

    assert (status, body) == (
        500,
        {
            "error": "configuration: workflow_name is not configured ($GLUE_REPLAY_BAU_WORKFLOW, "
            "$GLUE_REPLAY_INGEST_JOB, "
            "$GLUE_REPLAY_NORMALIZE_JOB, $GLUE_REPLAY_UPLOADS_URI, $GLUE_REPLAY_WAREHOUSE); "
            "set 'workflow_name' in --config FILE / $GLUE_REPLAY_CONFIG or $GLUE_REPLAY_WORKFLOW"
        },
    )
    aws.assert_nothing_started()


def test_an_aws_error_answers_502_without_credentials_in_it(
    aws: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLUE_REPLAY_NORMALIZE_JOB", "no-such-job")

    status, body = invoke({"mode": "targeted", "ids": "1", "stage": "normalize"})

    assert status == 502
    assert body == {"error": "AWS GetJobRuns: EntityNotFoundException (Job no-such-job not found.)"}
    assert "testing" not in json.dumps(body)
