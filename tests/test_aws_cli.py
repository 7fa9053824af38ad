"""The real AWS CLI (``awscli`` from PyPI) against ``moto_server`` on loopback.

What an operator types — ``aws glue start-job-run --arguments '{...}'`` — goes through the AWS
CLI's own JSON handling to the Glue API; the run's arguments are then read back with
``aws glue get-job-run`` and handed to the job's parser the way Glue hands them to the script
(``sys.argv``: the script, Glue's own ``--JOB_NAME``/``--JOB_RUN_ID``, then every argument as
``--name value``). The ``glue-replay`` CLI itself is also run as a process against the same server:
to start a job run, and to read a runs ledger on S3 with delta-rs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from pyspark.sql import SparkSession

from glue_replay.arguments import parse_job_arguments
from glue_replay.errors import InvalidRequestError
from glue_replay.request import DEFAULT_SOURCE_URL, JobArguments, ReplayMode, ReplayRequest
from glue_replay.tables import RunRecord, RunsLedger, RunStatus
from glue_replay_examples.customers import CUSTOMER_IDS

pytest.register_assert_rewrite("moto_deployment")
from moto_deployment import CUSTOMERS, pipelines_config  # noqa: E402

BIN = Path(sys.executable).parent
REGION = "eu-west-1"
TODAY = date(2026, 11, 27)
ACCOUNT = "123456789012"
INGEST, NORMALIZE = CUSTOMERS.ingest_job, CUSTOMERS.normalize_job


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``moto_server`` for the module, on a free loopback port."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto_server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start (see {log.name})") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def aws_env(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment with fake credentials and no profile, config or credentials file."""
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GLUE_REPLAY_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
        HOME=str(home),
    )
    return env


@pytest.fixture(scope="module")
def glue(endpoint: str) -> Any:
    client = boto3.client(
        "glue",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for job, script in ((INGEST, "ingest_customers"), (NORMALIZE, "normalize_customers")):
        client.create_job(
            Name=job,
            Role=f"arn:aws:iam::{ACCOUNT}:role/glue-replay",
            Command={"Name": "glueetl", "ScriptLocation": f"s3://artifacts/glue_jobs/{script}.py"},
            # As Terraform deploys them: paths are non-overridable, replay arguments are not set.
            NonOverridableArguments={"--warehouse": "s3://lake/glue-replay"},
            ExecutionProperty={"MaxConcurrentRuns": 1},
        )
    for workflow in (CUSTOMERS.workflow_name, CUSTOMERS.bau_workflow_name):
        client.create_workflow(Name=workflow)
    return client


def aws(env: dict[str, str], endpoint: str, *arguments: str) -> Any:
    """Run the real ``aws`` command; its JSON output."""
    result = subprocess.run(
        [str(BIN / "aws"), *arguments, "--endpoint-url", endpoint, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def argv_as_glue_passes_it(job: str, run: dict[str, Any]) -> list[str]:
    """``sys.argv`` of a Glue job run: the script, Glue's own arguments, then the run's."""
    argv = ["/tmp/glue_jobs/script.py", "--JOB_NAME", job, "--JOB_RUN_ID", run["Id"]]
    for name, value in run.get("Arguments", {}).items():
        argv += [name, value]
    return argv


def parse_as_the_job(argv: list[str]) -> JobArguments:
    return parse_job_arguments(argv, ids=CUSTOMER_IDS, today=TODAY, environ={"USER": "glue"})


def test_a_run_started_with_the_aws_cli_parses_as_the_job_expects(
    endpoint: str, aws_env: dict[str, str], glue: Any
) -> None:
    started = aws(
        aws_env,
        endpoint,
        "glue",
        "start-job-run",
        "--job-name",
        NORMALIZE,
        "--arguments",
        '{"--replay_mode":"targeted","--ids":"1,2,3"}',
    )
    run = aws(
        aws_env,
        endpoint,
        "glue",
        "get-job-run",
        "--job-name",
        NORMALIZE,
        "--run-id",
        started["JobRunId"],
    )["JobRun"]

    assert run["Arguments"] == {
        "--replay_mode": "targeted",
        "--ids": "1,2,3",
        "--warehouse": "s3://lake/glue-replay",
    }
    assert parse_as_the_job(argv_as_glue_passes_it(NORMALIZE, run)) == JobArguments(
        request=ReplayRequest(
            mode=ReplayMode.TARGETED,
            # No --request_id: the run's id is the request's, so a Glue retry continues it.
            request_id=started["JobRunId"],
            ids=("1", "2", "3"),
        ),
        warehouse="s3://lake/glue-replay",
        source_url=DEFAULT_SOURCE_URL,
        job_name=NORMALIZE,
        run_id=started["JobRunId"],
        requested_by="glue",
    )


def test_glues_reserved_mode_argument_is_refused_naming_replay_mode(
    endpoint: str, aws_env: dict[str, str], glue: Any
) -> None:
    started = aws(
        aws_env,
        endpoint,
        "glue",
        "start-job-run",
        "--job-name",
        INGEST,
        "--arguments",
        '{"--mode":"full"}',
    )
    run = aws(
        aws_env,
        endpoint,
        "glue",
        "get-job-run",
        "--job-name",
        INGEST,
        "--run-id",
        started["JobRunId"],
    )["JobRun"]

    with pytest.raises(InvalidRequestError) as refused:
        parse_as_the_job(argv_as_glue_passes_it(INGEST, run))

    assert refused.value.field == "replay_mode"
    assert str(refused.value) == (
        "--replay_mode: --mode full was given, but --mode is reserved by AWS Glue; "
        "accepted: --replay_mode full"
    )


def test_the_glue_replay_cli_starts_what_the_job_parses_back(
    endpoint: str, aws_env: dict[str, str], glue: Any, tmp_path: Path
) -> None:
    config = tmp_path / "cli_config.json"
    config.write_text(json.dumps({"region": REGION, "pipelines": pipelines_config(CUSTOMERS)}))
    # botocore (and so the glue-replay CLI) honours AWS_ENDPOINT_URL: no code path for tests.
    env = {**aws_env, "AWS_ENDPOINT_URL": endpoint}

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "glue_replay.trigger.cli",
            "--mode",
            "since",
            "--date",
            "2026-01-01",
            "--until",
            "2026-02-01",
            "--stage",
            "ingest",
            "--target",
            "glue",
            "--config",
            str(config),
            "--request-id",
            "fix-1842",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    runs = aws(aws_env, endpoint, "glue", "get-job-runs", "--job-name", INGEST)
    [run] = [r for r in runs["JobRuns"] if r["Arguments"].get("--request_id") == "fix-1842"]
    assert result.stdout.splitlines() == [
        "request fix-1842 for customers: since 2026-01-01 until 2026-02-01",
        "started on AWS Glue:",
        f"  job {INGEST} run {run['Id']}",
        "follow it: glue-replay status fix-1842 --entity customers",
    ]
    assert parse_as_the_job(argv_as_glue_passes_it(INGEST, run)) == JobArguments(
        request=ReplayRequest(
            mode=ReplayMode.SINCE,
            request_id="fix-1842",
            since=date(2026, 1, 1),
            until=date(2026, 2, 1),
        ),
        warehouse="s3://lake/glue-replay",
        source_url=DEFAULT_SOURCE_URL,
        job_name=INGEST,
        run_id=run["Id"],
        requested_by=f"arn:aws:sts::{ACCOUNT}:user/moto",
    )


def test_status_reads_a_ledger_on_s3_with_delta_rs(
    endpoint: str, aws_env: dict[str, str], glue: Any, spark: SparkSession, tmp_path: Path
) -> None:
    # A ledger row as a failed Glue run leaves it, written by the jobs' own ledger code in the
    # normalize job's own table, then put on (moto's) S3 as the job would have written it there.
    local = tmp_path / "runs"
    RunsLedger(spark, str(local / "normalize" / "customers")).start(
        RunRecord(
            run_id="jr_9",
            request_id="fix-9",
            job_name=NORMALIZE,
            stage="normalize",
            entity="customers",
            replay_mode="targeted",
            status=RunStatus.FAILED,
            requested_by="jane",
            arguments="{}",
            request_fingerprint="f",
            id_count=3,
            window_start=None,
            window_end=None,
            started_at=datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
            finished_at=datetime(2026, 11, 27, 10, 2, 5, tzinfo=UTC),
            rows_read=3,
            missing_ids=["999"],
            error="SourceError: the API answered 503",
        )
    )
    s3 = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": REGION})
    for path in local.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "lake", f"glue-replay/runs/{path.relative_to(local)}")
    config = tmp_path / "cli_config.json"
    config.write_text(
        json.dumps(
            {
                "region": REGION,
                "warehouse": "s3://lake/glue-replay",
                "pipelines": pipelines_config(CUSTOMERS),
            }
        )
    )
    # delta-rs takes the endpoint from the environment too; plain HTTP only for loopback here.
    env = {**aws_env, "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "glue_replay.trigger.cli",
            "status",
            "fix-9",
            "--config",
            str(config),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "request fix-9",
        "ledger s3://lake/glue-replay/runs:",
        "  normalize  customers  failed     read 3, written 0, unchanged 0, outboxed 0, "
        "quarantined 0, "
        "missing ids 1  run jr_9 (started 2026-11-27 10:00:00Z, took 2m 05s)  "
        "error: SourceError: the API answered 503",
        f"glue: no recent run of {CUSTOMERS.workflow_name}, {INGEST}, {NORMALIZE} carries "
        "request fix-9 (the latest 100 runs of each were searched)",
    ]
