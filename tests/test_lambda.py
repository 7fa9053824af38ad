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

from glue_replay.trigger.cli import main
from glue_replay.trigger.lambda_handler import handler

pytest.register_assert_rewrite("moto_deployment")  # its asserts explain failures as these do
from moto_deployment import (  # noqa: E402
    ACCOUNT,
    BAU_WORKFLOW,
    CUSTOMERS,
    INGEST,
    NORMALIZE,
    ORDERS,
    REGION,
    UPLOADS_BUCKET,
    WORKFLOW,
    DeployedPipeline,
    Deployment,
    aws_environment,
    create_deployment,
    pipelines_config,
)

#: Stands for the UTC date when the handler runs (a suite may cross midnight between its start
#: and the test).
TODAY = "{today}"
#: moto runs no workflow and answers GetWorkflowRun without a graph: the start is not confirmed
#: (tests/test_confirm_start.py tests the watch against Glue's answers).
UNCONFIRMED = {"confirmed": False, "confirmation": "Glue answered with no workflow graph to watch"}


@dataclass(frozen=True)
class Context:
    """The attributes of a Lambda context object the handler reads."""

    function_name: str = "glue-replay-trigger"
    aws_request_id: str = "c0ffee"


def configure(monkeypatch: pytest.MonkeyPatch, *pipelines: DeployedPipeline) -> None:
    """The Lambda is configured by its environment alone (Terraform sets these)."""
    for name, value in {
        "GLUE_REPLAY_PIPELINES": json.dumps(pipelines_config(*pipelines)),
        "GLUE_REPLAY_UPLOADS_URI": f"s3://{UPLOADS_BUCKET}/ids",
        "GLUE_REPLAY_WAREHOUSE": "s3://lake/glue-replay",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """A deployment of one pipeline (the customers example): ``entity`` may be left out."""
    aws_environment(monkeypatch)
    configure(monkeypatch, CUSTOMERS)
    with mock_aws():
        glue, s3 = create_deployment(CUSTOMERS)
        try:
            yield Deployment(glue, s3, uploads_prefix="ids/")
        finally:
            state_manager.unset_transition("glue::job_run")


@pytest.fixture
def two(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """A deployment of two pipelines, customers and orders: ``entity`` is required."""
    aws_environment(monkeypatch)
    configure(monkeypatch, CUSTOMERS, ORDERS)
    with mock_aws():
        glue, s3 = create_deployment(CUSTOMERS, ORDERS)
        yield Deployment(glue, s3, uploads_prefix="ids/", pipelines=(CUSTOMERS, ORDERS))


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
            **UNCONFIRMED,
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
        {
            "request_id": "bf-1",
            "workflow_name": WORKFLOW,
            "workflow_run_id": run["WorkflowRunId"],
            **UNCONFIRMED,
        },
    )
    assert run["WorkflowRunProperties"] == {
        "replay_mode": "full",
        "request_id": "bf-1",
        "requested_by": "lambda:glue-replay-trigger",
    }


def test_a_large_ids_file_on_s3_is_rewritten_to_the_uploads_prefix(aws: Deployment) -> None:
    # An export whose ids are in the column the event names (see request.ids_from_text).
    lines = ["email,customer_id", *(f"u{i}@x.io,C-{i:05d}" for i in range(1, 50_001))]
    aws.s3.put_object(
        Bucket=UPLOADS_BUCKET, Key="incoming/export.csv", Body="\r\n".join(lines).encode()
    )

    status, body = invoke(
        {
            "mode": "targeted",
            "ids_file": f"s3://{UPLOADS_BUCKET}/incoming/export.csv",
            "id_column": "customer_id",
        }
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
            **UNCONFIRMED,
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
    (["targeted"], "event: is a JSON array; accepted: a JSON object with the replay's fields"),
    (
        # Named as the event's own key: it is no request field (and "replay_mode" is the jobs').
        {"replay_mode": "full"},
        "event: 'replay_mode' is not a field of a replay request; accepted: entity, mode, date, "
        "until, ids, ids_file, id_column, stage, dry_run, request_id, requested_by, confirm",
    ),
    (
        {"mode": "bau"},
        "mode: 'bau' is the scheduled run, not a replay; accepted: full, since or targeted",
    ),
    (
        {"mode": "everything"},
        "mode: 'everything' is not a replay mode; accepted: full, since or targeted",
    ),
    ({"mode": 3}, "mode: is a JSON number, not a string; accepted: a JSON string"),
    (
        {"mode": "full", "entity": 7},
        "entity: is a JSON number, not a string; accepted: a JSON string",
    ),
    (
        {"entity": "orders", "mode": "targeted", "ids": "1"},
        "entity: 'orders' is not a pipeline of the deployment ($GLUE_REPLAY_WAREHOUSE, "
        "$GLUE_REPLAY_UPLOADS_URI, $GLUE_REPLAY_PIPELINES); accepted: customers",
    ),
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
        "ids: \"2' OR '1'='1\" is not a valid id; "
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
        f"ids_file: cannot read s3://{UPLOADS_BUCKET}/missing.csv (NoSuchKey); "
        "accepted: a readable s3:// object",
    ),
    (
        {"mode": "targeted", "ids": "1", "id_column": "account"},
        "id_column: is only valid with ids_file; accepted: ids_file FILE id_column NAME",
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
    before = datetime.now(UTC).date().isoformat()
    status, body = invoke(event)
    after = datetime.now(UTC).date().isoformat()

    assert status == 400
    assert body in [
        {"error": f"invalid request: {error.replace(TODAY, d)}"} for d in (before, after)
    ]
    aws.assert_nothing_started()


def test_a_lambda_without_its_configuration_answers_500(
    aws: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLUE_REPLAY_PIPELINES")

    status, body = invoke({"mode": "targeted", "ids": "1"})

    assert (status, body) == (
        500,
        {
            "error": "configuration: pipelines is not configured ($GLUE_REPLAY_WAREHOUSE, "
            "$GLUE_REPLAY_UPLOADS_URI); set 'pipelines' in --config FILE / $GLUE_REPLAY_CONFIG "
            "or $GLUE_REPLAY_PIPELINES"
        },
    )
    aws.assert_nothing_started()


def test_a_broken_pipelines_variable_answers_500_naming_the_key(
    aws: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLUE_REPLAY_PIPELINES", json.dumps({"customers": {"ingest_job": "in"}}))

    status, body = invoke({"mode": "targeted", "ids": "1"})

    assert (status, body) == (
        500,
        {
            "error": "configuration: pipelines.customers.normalize_job is missing in "
            "$GLUE_REPLAY_PIPELINES; accepted: a non-empty string"
        },
    )
    aws.assert_nothing_started()


def test_an_aws_error_answers_502_without_credentials_in_it(
    aws: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = {**CUSTOMERS.config(), "normalize_job": "no-such-job"}
    monkeypatch.setenv("GLUE_REPLAY_PIPELINES", json.dumps({"customers": pipeline}))

    status, body = invoke({"mode": "targeted", "ids": "1", "stage": "normalize"})

    assert status == 502
    assert body == {"error": "AWS GetJobRuns: EntityNotFoundException (Job no-such-job not found.)"}
    assert "testing" not in json.dumps(body)


# -- several pipelines: the event names its entity, validated with that entity's id rule ---------


def test_without_entity_a_deployment_of_two_pipelines_answers_400(two: Deployment) -> None:
    status, body = invoke({"mode": "targeted", "ids": "1"})

    assert (status, body) == (
        400,
        {
            "error": "invalid request: entity: is required: the deployment "
            "($GLUE_REPLAY_WAREHOUSE, $GLUE_REPLAY_UPLOADS_URI, $GLUE_REPLAY_PIPELINES) has 2 "
            "pipelines; accepted: entity customers | orders"
        },
    )
    two.assert_nothing_started()


def test_an_unknown_entity_answers_400_listing_the_known_ones(two: Deployment) -> None:
    status, body = invoke({"entity": "invoices", "mode": "full", "confirm": True})

    assert (status, body) == (
        400,
        {
            "error": "invalid request: entity: 'invoices' is not a pipeline of the deployment "
            "($GLUE_REPLAY_WAREHOUSE, $GLUE_REPLAY_UPLOADS_URI, $GLUE_REPLAY_PIPELINES); "
            "accepted: customers, orders"
        },
    )
    two.assert_nothing_started()


def test_ids_are_checked_with_the_entitys_own_rule_and_help(two: Deployment) -> None:
    refused = invoke({"entity": "orders", "mode": "targeted", "ids": ["ORD-1", "12"]})
    two.assert_nothing_started()
    accepted = invoke({"entity": "orders", "mode": "targeted", "ids": ["ORD-1", "ORD-12"]})

    assert refused == (
        400,
        {
            "error": "invalid request: ids: '12' is not a valid id; "
            "accepted: ORD- and 1 to 12 digits, e.g. ORD-1042"
        },
    )
    [run] = two.workflow_runs(ORDERS.workflow_name)
    request_id = run["WorkflowRunProperties"]["request_id"]
    assert accepted == (
        202,
        {
            "request_id": request_id,
            "workflow_name": ORDERS.workflow_name,
            "workflow_run_id": run["WorkflowRunId"],
            **UNCONFIRMED,
        },
    )
    assert run["WorkflowRunProperties"] == {
        "replay_mode": "targeted",
        "ids": "ORD-1,ORD-12",
        "request_id": request_id,
        "requested_by": "lambda:glue-replay-trigger",
    }
    assert two.workflow_runs(CUSTOMERS.workflow_name) == []


def test_a_busy_pipeline_holds_only_its_own_requests(two: Deployment) -> None:
    orders_bau = two.glue.start_workflow_run(Name=ORDERS.bau_workflow_name)["RunId"]

    busy_status, busy_body = invoke({"entity": "orders", "mode": "targeted", "ids": "ORD-1"})
    status, body = invoke(
        {"entity": "customers", "mode": "targeted", "ids": "1", "stage": "ingest"}
    )

    assert (busy_status, busy_body["busy"]["name"], busy_body["busy"]["run_id"]) == (
        409,
        ORDERS.bau_workflow_name,
        orders_bau,
    )
    [run] = two.job_runs(CUSTOMERS.ingest_job)
    assert (status, body) == (
        202,
        {"request_id": run["Arguments"]["--request_id"], "job_run_ids": {INGEST: run["Id"]}},
    )
    assert two.workflow_runs(ORDERS.workflow_name) == []


# -- the same error, in each boundary's spelling --------------------------------------------------


@pytest.mark.parametrize(
    ("event", "argv", "lambda_error", "cli_error"),
    [
        (
            {"mode": "full", "ids_file": f"s3://{UPLOADS_BUCKET}/ids.csv", "confirm": True},
            ["--mode", "full", "--ids-file", f"s3://{UPLOADS_BUCKET}/ids.csv", "--yes"],
            "ids_file: is only valid with mode targeted (mode is full); "
            "accepted: mode targeted ids_file ..., or no ids_file",
            "--ids-file: is only valid with --mode targeted (mode is full); "
            "accepted: --mode targeted --ids-file ..., or no --ids-file",
        ),
        (
            {"mode": "since", "date": "2026-02-01", "until": "2026-01-01", "dry_run": True},
            ["--mode", "since", "--date", "2026-02-01", "--until", "2026-01-01", "--dry-run"],
            "until: 2026-01-01 is not after date 2026-02-01; "
            "accepted: a date after date (the window is [date, until))",
            "--until: 2026-01-01 is not after --date 2026-02-01; "
            "accepted: a date after --date (the window is [date, until))",
        ),
        (
            {"mode": "targeted", "request_id": "fix 1842", "ids": "1"},
            ["--mode", "targeted", "--request-id", "fix 1842", "--ids", "1"],
            "request_id: 'fix 1842' is not a valid request id; "
            "accepted: 1-128 letters, digits or _ . : -, starting with a letter or digit",
            "--request-id: 'fix 1842' is not a valid request id; "
            "accepted: 1-128 letters, digits or _ . : -, starting with a letter or digit",
        ),
    ],
)
def test_the_lambda_and_the_cli_spell_the_same_error_their_own_way(
    aws: Deployment,
    capsys: pytest.CaptureFixture[str],
    event: dict[str, Any],
    argv: list[str],
    lambda_error: str,
    cli_error: str,
) -> None:
    # The CLI reads the same deployment, from the same environment the Lambda has.
    code = main([*argv, "--target", "glue"])
    status, body = invoke(event)

    assert (status, body) == (400, {"error": f"invalid request: {lambda_error}"})
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (
        2,
        "",
        f"glue-replay: invalid request: {cli_error}\n",
    )
    aws.assert_nothing_started()
