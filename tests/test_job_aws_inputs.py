"""Job inputs from AWS (moto): a Glue workflow run's properties and the source token secret."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import boto3
import pytest
from moto import mock_aws

from glue_replay import run_normalize_job
from glue_replay.arguments import parse_job_arguments, workflow_run_fields
from glue_replay.errors import GlueReplayError, InvalidRequestError
from glue_replay.request import ReplayMode, ReplayRequest
from glue_replay.secrets import read_secret_token
from glue_replay.sources.base import SourceSettings
from glue_replay_examples.customers import PIPELINE


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


def _workflow_run(properties: dict[str, str]) -> tuple[Any, str]:
    glue = boto3.client("glue")
    glue.create_workflow(Name="glue-replay")
    run_id = glue.start_workflow_run(Name="glue-replay", RunProperties=properties)["RunId"]
    return glue, run_id


def test_a_workflow_runs_replay_arguments_win_over_defaults_and_settings_stay(aws: None) -> None:
    glue, run_id = _workflow_run(
        {"replay_mode": "targeted", "ids": "7,8", "warehouse": "s3://elsewhere/wh"}
    )
    glue_argv = [
        "normalize.py", "--JOB_NAME", "normalize", "--JOB_RUN_ID", "jr_9",
        "--WORKFLOW_NAME", "glue-replay", "--WORKFLOW_RUN_ID", run_id,
        "--replay_mode", "", "--ids", "", "--warehouse", "s3://deployed/wh",
    ]  # fmt: skip
    args = parse_job_arguments(glue_argv, today=date(2026, 11, 27), glue_client=glue)
    assert args.request == ReplayRequest(ReplayMode.TARGETED, request_id=run_id, ids=("7", "8"))
    assert args.warehouse == "s3://deployed/wh"


def test_without_a_workflow_aws_is_not_called() -> None:
    assert workflow_run_fields({"JOB_RUN_ID": "jr_1"}, glue_client=object()) == {}


def test_an_answer_without_run_properties_is_a_run_with_none() -> None:
    class Glue:  # RunProperties is optional in GetWorkflowRunProperties' answer (botocore)
        def get_workflow_run_properties(self, Name: str, RunId: str) -> dict[str, Any]:  # noqa: N803
            return {"ResponseMetadata": {"HTTPStatusCode": 200}}

    context = {"WORKFLOW_NAME": "glue-replay", "WORKFLOW_RUN_ID": "wr_1"}
    assert workflow_run_fields(context, Glue()) == {}


def test_a_run_property_that_is_a_near_miss_is_refused(aws: None) -> None:
    glue, run_id = _workflow_run({"replay-mode": "full"})
    context = {"WORKFLOW_NAME": "glue-replay", "WORKFLOW_RUN_ID": run_id}
    with pytest.raises(InvalidRequestError, match=r"did you mean 'replay_mode'\?"):
        workflow_run_fields(context, glue)


def test_an_unreadable_workflow_run_is_a_clear_failure(aws: None) -> None:
    context = {"WORKFLOW_NAME": "missing", "WORKFLOW_RUN_ID": "wr_1"}
    with pytest.raises(GlueReplayError, match=r"workflow missing run wr_1: EntityNotFound"):
        workflow_run_fields(context, boto3.client("glue"))


def test_a_bad_run_property_is_refused_like_a_bad_argument(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_id = _workflow_run({"replay_mode": "sometimes"})
    argv = ["normalize.py", "--WORKFLOW_NAME", "glue-replay", "--WORKFLOW_RUN_ID", run_id]
    assert run_normalize_job(argv, PIPELINE) == 2
    assert capsys.readouterr().err.splitlines() == [
        "normalize: invalid request: --replay_mode: 'sometimes' is not a replay mode; "
        "accepted: full, since or targeted (omit --replay_mode for the BAU run)"
    ]


@pytest.mark.parametrize(
    ("secret", "token"),
    [("s3cr3t-token\n", "s3cr3t-token"), ('{"token": "s3cr3t-token"}', "s3cr3t-token")],
    ids=["plain", "json"],
)
def test_the_source_token_comes_from_secrets_manager(aws: None, secret: str, token: str) -> None:
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="glue-replay/source-token", SecretString=secret)["ARN"]
    assert read_secret_token("glue-replay/source-token", client) == token
    assert SourceSettings("http://x", arn, secrets_client=client).token() == token


def test_without_a_secret_the_token_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GLUE_REPLAY_SOURCE_TOKEN", "from-env")
    assert SourceSettings("http://x").token() == "from-env"
    monkeypatch.delenv("GLUE_REPLAY_SOURCE_TOKEN")
    assert SourceSettings("http://x").token() is None


def test_a_missing_secret_fails_without_echoing_anything_secret(aws: None) -> None:
    with pytest.raises(GlueReplayError) as raised:
        read_secret_token("nope", boto3.client("secretsmanager"))
    assert str(raised.value) == "could not read secret nope: ResourceNotFoundException"
