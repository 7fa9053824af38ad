"""The ``glue-replay`` CLI against Glue, S3 and STS in moto, and once locally on real Spark + Delta.

Each test reads back what Glue received — a workflow run's properties, a job run's arguments, an
uploaded object — and compares it with the exact value the jobs must see.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from moto import mock_aws
from moto.glue.models import glue_backends
from moto.moto_api import state_manager
from pyspark.sql import SparkSession

from glue_replay.request import REPLAY_FIELDS, IdRule, JobArguments, ReplayMode, ReplayRequest
from glue_replay.trigger import start as glue_start
from glue_replay.trigger.cli import main
from glue_replay.trigger.config import (
    DeploymentConfig,
    DeploymentConfigError,
    PipelineConfig,
    load_config,
)
from glue_replay.trigger.status import follow
from glue_replay_devtools.postgres import Login, PostgresServer, insert_orders, sample_orders
from glue_replay_devtools.sample_api import SampleApiServer

pytest.register_assert_rewrite("moto_deployment")  # its asserts explain failures as these do
pytest_plugins = ["postgres_fixture"]

from moto_deployment import (  # noqa: E402
    ACCOUNT,
    BAU_WORKFLOW,
    CALLER,
    CUSTOMERS,
    INGEST,
    NORMALIZE,
    ORDERS,
    REGION,
    UPLOADS_BUCKET,
    WORKFLOW,
    DeployedPipeline,
    aws_environment,
    create_deployment,
    pipelines_config,
)
from moto_deployment import Deployment as MotoDeployment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REQUEST_ID = re.compile(r"(?P<mode>full|since|targeted)-\d{8}T\d{6}-[0-9a-f]{8}")
#: Stands for the UTC date when the command runs (a suite may cross midnight between its start
#: and the test).
TODAY = "{today}"


@dataclass
class Deployment(MotoDeployment):
    """The moto deployment, with the CLI's config file for it (in ``tmp``)."""

    config: str
    tmp: Path

    def hold(self, job: str, state: str = "RUNNING") -> dict[str, Any]:
        """Start a run of ``job`` and keep it in ``state`` (moto would finish it at once)."""
        state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 10**9})
        run_id = self.glue.start_job_run(JobName=job)["JobRunId"]
        self.backend_run(job, run_id).status = state
        return dict(self.glue.get_job_run(JobName=job, RunId=run_id)["JobRun"])

    @staticmethod
    def backend_run(job: str, run_id: str) -> Any:
        runs = glue_backends[ACCOUNT][REGION].jobs[job].job_runs
        return next(r for r in runs if r.job_run_id == run_id)

    def glue_replay(self, *argv: str) -> int:
        return main([*argv, "--target", "glue", "--config", self.config])


def deploy(tmp_path: Path, *pipelines: DeployedPipeline) -> Deployment:
    """``pipelines`` in moto (inside an active ``mock_aws()``) and the CLI's config for them."""
    glue, s3 = create_deployment(*pipelines)
    config = tmp_path / "cli_config.json"
    config.write_text(
        json.dumps(
            {
                "region": REGION,
                "warehouse": str(tmp_path / "warehouse"),
                "uploads_uri": f"s3://{UPLOADS_BUCKET}/ids",
                "uploads_kms_key": None,
                "pipelines": pipelines_config(*pipelines),
            }
        )
    )
    return Deployment(glue, s3, str(config), tmp_path, pipelines=pipelines)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Deployment]:
    """A deployment of one pipeline (the customers example): ``--entity`` may be left out."""
    aws_environment(monkeypatch)
    with mock_aws():
        try:
            yield deploy(tmp_path, CUSTOMERS)
        finally:
            state_manager.unset_transition("glue::job_run")


@pytest.fixture
def two(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Deployment]:
    """A deployment of two pipelines, customers and orders: ``--entity`` is required."""
    aws_environment(monkeypatch)
    with mock_aws():
        try:
            yield deploy(tmp_path, CUSTOMERS, ORDERS)
        finally:
            state_manager.unset_transition("glue::job_run")


def request_id_of(stdout: str) -> str:
    match = re.match(r"request (\S+) for \w+: ", stdout)
    assert match, stdout
    return match.group(1)


# -- the cascade: one workflow run, the request in its run properties ---------------------------


def test_a_targeted_replay_starts_one_workflow_run_carrying_the_request(
    aws: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert aws.glue_replay("--mode", "targeted", "--ids", " 7,3,7 ") == 0

    out = capsys.readouterr().out
    request_id = request_id_of(out)
    assert REQUEST_ID.fullmatch(request_id) and request_id.startswith("targeted-")
    [run] = aws.workflow_runs()
    assert run["WorkflowRunProperties"] == {
        "replay_mode": "targeted",
        "ids": "7,3",
        "request_id": request_id,
        "requested_by": CALLER,
    }
    assert set(run["WorkflowRunProperties"]) <= set(REPLAY_FIELDS)
    assert out.splitlines() == [
        f"request {request_id} for customers: targeted (2 ids)",
        "started on AWS Glue:",
        f"  workflow {WORKFLOW} run {run['WorkflowRunId']}",
        f"    jobs: {INGEST} -> {NORMALIZE} (normalize after ingest)",
        # moto runs no workflow and answers without a graph (tests/test_confirm_start.py)
        "  not confirmed: Glue answered with no workflow graph to watch",
        f"follow it: glue-replay status {request_id} --entity customers",
    ]
    # The workflow starts the jobs; the CLI starts none itself.
    assert aws.job_runs(INGEST) == [] and aws.job_runs(NORMALIZE) == []


def test_a_confirmed_full_backfill_carries_only_the_mode_and_who_asked(
    aws: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert aws.glue_replay("--mode", "full", "--yes", "--request-id", "backfill-2026") == 0

    [run] = aws.workflow_runs()
    assert run["WorkflowRunProperties"] == {
        "replay_mode": "full",
        "request_id": "backfill-2026",
        "requested_by": CALLER,
    }
    assert capsys.readouterr().out.startswith("request backfill-2026 for customers: full\n")


def test_one_stage_alone_is_a_job_run_with_the_jobs_argument_names(aws: Deployment) -> None:
    code = aws.glue_replay(
        "--mode", "since", "--date", "2026-01-01", "--until", "2026-02-01",
        "--stage", "ingest", "--dry-run", "--request-id", "fix-1842",
    )  # fmt: skip

    assert code == 0
    [run] = aws.job_runs(INGEST)
    assert run["Arguments"] == {
        "--replay_mode": "since",
        "--date": "2026-01-01",
        "--until": "2026-02-01",
        "--request_id": "fix-1842",
        "--dry_run": "true",
        "--requested_by": CALLER,
    }
    assert aws.job_runs(NORMALIZE) == [] and aws.workflow_runs() == []


def test_an_export_csv_gives_the_column_named_by_id_column(
    aws: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "customer_id,email,account\r\n12,a@x.io,900\r\n7,b@x.io,901\r\n12,c@x.io,9\r\n"
    )

    assert aws.glue_replay(
        "--mode", "targeted", "--ids-file", str(export), "--id-column", "customer_id",
        "--stage", "normalize",
    ) == 0  # fmt: skip
    assert aws.glue_replay(
        "--mode", "targeted", "--ids-file", str(export), "--id-column", "account",
        "--stage", "ingest",
    ) == 0  # fmt: skip

    [normalize] = aws.job_runs(NORMALIZE)
    assert normalize["Arguments"]["--ids"] == "12,7"
    [ingest] = aws.job_runs(INGEST)
    assert ingest["Arguments"]["--ids"] == "900,901,9"
    assert aws.uploads() == []
    assert capsys.readouterr().err == ""


def test_an_export_csv_without_its_id_column_named_is_refused_not_guessed(
    aws: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Until this change the CLI took the first column of such a file; the jobs' one reader
    # never guesses which column (or line) holds the ids, and the CLI now uses that reader.
    export = tmp_path / "export.csv"
    export.write_text("customer_id,email\n12,a@x.io\n7,b@x.io\n")

    assert aws.glue_replay("--mode", "targeted", "--ids-file", str(export)) == 2

    assert capsys.readouterr().err == (
        f"glue-replay: invalid request: --ids-file: {export} has no 'id' column (header: "
        "customer_id, email); accepted: a CSV whose first line is a header naming the id column, "
        "or one id a line with no header (name the column with --id-column)\n"
    )
    aws.assert_nothing_started()


def test_an_ids_file_on_s3_is_read_and_its_ids_sent(aws: Deployment) -> None:
    aws.s3.put_object(Bucket=UPLOADS_BUCKET, Key="incoming/ids.csv", Body=b"id\nC-1\nC-2\n")

    code = aws.glue_replay(
        "--mode", "targeted", "--ids-file", f"s3://{UPLOADS_BUCKET}/incoming/ids.csv",
        "--stage", "normalize", "--request-id", "s3-file",
    )  # fmt: skip

    assert code == 0
    [run] = aws.job_runs(NORMALIZE)
    assert run["Arguments"] == {
        "--replay_mode": "targeted",
        "--ids": "C-1,C-2",
        "--request_id": "s3-file",
        "--requested_by": CALLER,
    }


def write_export(path: Path, count: int) -> Path:
    """An export as a CRM produces it: a header row, the ids in the first column."""
    with path.open("w") as handle:
        handle.write("customer_id,email\n")
        handle.writelines(f"{i},user{i}@example.com\n" for i in range(1, count + 1))
    return path


def test_fifty_thousand_ids_are_uploaded_and_sent_as_an_ids_file(
    aws: Deployment, tmp_path: Path
) -> None:
    export = write_export(tmp_path / "customers.csv", 50_000)

    assert (
        aws.glue_replay(
            "--mode", "targeted", "--ids-file", str(export), "--id-column", "customer_id"
        )
        == 0
    )

    [run] = aws.workflow_runs()
    properties = run["WorkflowRunProperties"]
    request_id = properties["request_id"]
    key = f"ids/{request_id}/ids.csv"
    assert properties == {
        "replay_mode": "targeted",
        "ids_file": f"s3://{UPLOADS_BUCKET}/{key}",
        "request_id": request_id,
        "requested_by": CALLER,
    }
    assert aws.uploads() == [key]
    uploaded = aws.s3.get_object(Bucket=UPLOADS_BUCKET, Key=key)
    body = uploaded["Body"].read().decode()
    assert body.startswith("id\n1\n2\n3\n") and body.endswith("\n49999\n50000\n")
    assert body == "id\n" + "".join(f"{i}\n" for i in range(1, 50_001))
    assert uploaded["ServerSideEncryption"] == "AES256"
    assert uploaded["ContentType"] == "text/csv"


def test_the_inline_limit_is_characters_of_the_joined_list() -> None:
    at_the_limit = ["1234"] * 3999 + ["12345"]  # 3999 * 4 + 5 + 3999 commas = 20,000
    assert not glue_start.ids_too_long(at_the_limit)
    assert glue_start.ids_too_long(["1234"] * 3999 + ["123456"])


# -- busy jobs ------------------------------------------------------------------------------------


def test_a_busy_job_is_reported_with_its_run_and_nothing_starts(
    aws: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = aws.hold(INGEST, "RUNNING")
    export = write_export(tmp_path / "customers.csv", 50_000)  # would be uploaded if started

    assert (
        aws.glue_replay(
            "--mode", "targeted", "--ids-file", str(export), "--id-column", "customer_id"
        )
        == 3
    )

    since = holder["StartedOn"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"glue-replay: job {INGEST} is busy with run {holder['Id']} (RUNNING since {since})",
        "glue-replay: nothing started; try again when it has finished",
    ]
    assert captured.out == ""
    aws.assert_nothing_started(except_runs=1)


@pytest.mark.parametrize("workflow", [WORKFLOW, BAU_WORKFLOW])
@pytest.mark.parametrize("stage", ["all", "normalize"])
def test_a_running_workflow_makes_any_request_wait(
    aws: Deployment, capsys: pytest.CaptureFixture[str], workflow: str, stage: str
) -> None:
    # A workflow run between ingest and normalize holds neither job, but normalize is coming.
    workflow_run = aws.glue.start_workflow_run(Name=workflow)["RunId"]

    assert aws.glue_replay("--mode", "targeted", "--ids", "1", "--stage", stage) == 3

    err = capsys.readouterr().err
    assert err.startswith(
        f"glue-replay: workflow {workflow} is busy with run {workflow_run} (RUNNING since "
    )
    assert aws.job_runs(NORMALIZE) == []
    assert [r["WorkflowRunId"] for r in aws.workflow_runs()] == (
        [workflow_run] if workflow == WORKFLOW else []
    )


def test_a_run_that_slips_in_before_the_start_is_reported_as_busy(aws: Deployment) -> None:
    holder = aws.hold(NORMALIZE, "STARTING")
    config = load_config(aws.config)
    pipeline = config.pipeline(None)
    target = glue_start.GlueTarget.of(pipeline, "normalize")
    args = glue_start.validate(
        {"replay_mode": "targeted", "ids": "1", "request_id": "late"}, ids=pipeline.ids
    )

    # start_replay alone skips the busy check: Glue's ConcurrentRunsExceededException answers.
    with pytest.raises(glue_start.JobBusyError) as caught:
        glue_start.start_replay(aws.glue, aws.s3, config, target, args)

    assert caught.value.busy == glue_start.BusyRun(
        "job", NORMALIZE, holder["Id"], "STARTING", holder["StartedOn"]
    )
    assert [r["Id"] for r in aws.job_runs(NORMALIZE)] == [holder["Id"]]


# -- invalid requests: exit 2, one line naming the CLI's flag, nothing started --------------------

IDS_FILE_ACCEPTED = (
    "a CSV whose first line is a header naming the id column, or one id a line with no header"
)
BAD_REQUESTS = [
    ([], "--mode: is required (a replay is never a default); accepted: full, since or targeted"),
    (
        ["--mode", "bau"],
        "argument --mode: invalid choice: 'bau' (choose from 'full', 'since', 'targeted')",
    ),
    (
        ["--mode", "since"],
        "--date: is required with --mode since; accepted: a UTC date YYYY-MM-DD",
    ),
    (
        ["--mode", "since", "--date", "2026-13-01"],
        "--date: '2026-13-01' is not a calendar date; "
        "accepted: a UTC date YYYY-MM-DD, e.g. 2026-01-31",
    ),
    (
        ["--mode", "since", "--date", "2999-01-01"],
        f"--date: 2999-01-01 is in the future (today is {TODAY} UTC); "
        "accepted: a date on or before today",
    ),
    (
        ["--mode", "since", "--date", "2026-02-01", "--until", "2026-01-01"],
        "--until: 2026-01-01 is not after --date 2026-02-01; accepted: a date after --date "
        "(the window is [date, until))",
    ),
    (
        ["--mode", "full", "--until", "2026-01-01"],
        "--until: is only valid with --mode since (mode is full); "
        "accepted: --mode since --until YYYY-MM-DD, or no --until",
    ),
    (
        ["--mode", "full", "--ids", "1"],
        "--ids: is only valid with --mode targeted (mode is full); "
        "accepted: --mode targeted --ids ..., or no --ids",
    ),
    (
        ["--mode", "since", "--date", "2026-01-01", "--ids-file", "{tmp}/ids.csv"],
        "--ids-file: is only valid with --mode targeted (mode is since); "
        "accepted: --mode targeted --ids-file ..., or no --ids-file",
    ),
    (
        ["--mode", "targeted"],
        "--ids: --mode targeted needs ids; accepted: --ids 1,2,3 or --ids-file PATH|s3://bucket/key.csv",
    ),
    (
        ["--mode", "targeted", "--ids", "1,2;DROP TABLE raw"],
        "--ids: '2;DROP TABLE raw' is not a valid id; "
        "accepted: 1-64 letters, digits or _ . : -, starting with a letter or digit",
    ),
    (
        ["--mode", "targeted", "--ids", "1", "--ids-file", "{tmp}/ids.csv"],
        "--ids-file: was given together with --ids; accepted: either --ids or --ids-file, not both",
    ),
    (
        ["--mode", "targeted", "--ids-file", "{tmp}/missing.csv"],
        "--ids-file: no such file '{tmp}/missing.csv'; "
        "accepted: a readable local path or s3:// URI",
    ),
    (
        ["--mode", "targeted", "--ids-file", "{tmp}/ids.csv", "--id-column", "account"],
        "--ids-file: {tmp}/ids.csv has no 'account' column (header: customer_id, email); "
        f"accepted: {IDS_FILE_ACCEPTED} (name the column with --id-column)",
    ),
    (
        ["--mode", "targeted", "--ids-file", "{tmp}/ids.csv", "--id-column", "customer id"],
        "--id-column: 'customer id' is not a column name; accepted: a CSV header cell, e.g. id",
    ),
    (
        ["--mode", "targeted", "--ids", "1", "--id-column", "account"],
        "--id-column: is only valid with --ids-file; accepted: --ids-file FILE --id-column NAME",
    ),
    (
        ["--mode", "targeted", "--ids", "1", "--dry-run", "--request-id", "fix 1842"],
        "--request-id: 'fix 1842' is not a valid request id; "
        "accepted: 1-128 letters, digits or _ . : -, starting with a letter or digit",
    ),
    (
        ["--mode", "targeted", "--ids", "1", "--source", "http://127.0.0.1:8765"],
        "--source: is a deployment setting on Glue (non-overridable job argument); "
        "accepted: no --source with --target glue; it is set where the jobs are deployed",
    ),
    (
        ["--mode", "targeted", "--ids", "1", "--warehouse", "s3://elsewhere/lake"],
        "--warehouse: is a deployment setting on Glue (non-overridable job argument); "
        "accepted: no --warehouse with --target glue; it is set where the jobs are deployed",
    ),
    (
        ["--mode", "targeted", "--ids", "1", "--wait", "--poll-seconds", "-5"],
        "argument --poll-seconds: '-5' is not a number of seconds from 0 to 3600",
    ),
    (
        ["--mode", "targeted", "--ids", "1", "--stage", "publish"],
        "argument --stage: invalid choice: 'publish' (choose from 'ingest', 'normalize', 'all')",
    ),
    (
        ["--mode", "full"],
        "--yes: a full backfill on AWS Glue needs confirmation and there is no terminal to ask; "
        "accepted: --yes to start it without a prompt",
    ),
    (
        ["--entity", "orders", "--mode", "targeted", "--ids", "1"],
        "--entity: 'orders' is not a pipeline of the deployment ({config}); accepted: customers",
    ),
]


@pytest.mark.parametrize(("argv", "message"), BAD_REQUESTS)
def test_an_invalid_request_exits_2_naming_the_flag_and_starts_nothing(
    aws: Deployment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    (tmp_path / "ids.csv").write_text("customer_id,email\n1,a@x.io\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]

    before = datetime.now(UTC).date().isoformat()
    assert aws.glue_replay(*argv) == 2
    after = datetime.now(UTC).date().isoformat()

    captured = capsys.readouterr()
    expected = message.replace("{tmp}", str(tmp_path)).replace("{config}", aws.config)
    assert captured.err in {
        f"glue-replay: invalid request: {expected.replace(TODAY, today)}\n"
        for today in (before, after)
    }
    assert captured.out == ""
    aws.assert_nothing_started()


def test_a_deployment_without_pipelines_is_a_configuration_error(
    aws: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--mode", "targeted", "--ids", "1", "--target", "glue"]) == 2
    assert capsys.readouterr().err == (
        "glue-replay: configuration: pipelines is not configured (no --config, no "
        "$GLUE_REPLAY_CONFIG, no $GLUE_REPLAY_* variables); set 'pipelines' in --config FILE / "
        "$GLUE_REPLAY_CONFIG or $GLUE_REPLAY_PIPELINES\n"
    )
    aws.assert_nothing_started()


# -- several pipelines: every request names its entity, and is validated with its id rule ---------


def test_without_entity_a_deployment_of_two_pipelines_refuses_to_pick_one(
    two: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert two.glue_replay("--mode", "targeted", "--ids", "1") == 2

    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        f"glue-replay: invalid request: --entity: is required: the deployment ({two.config}) "
        "has 2 pipelines; accepted: --entity customers | orders\n",
    )
    two.assert_nothing_started()


def test_an_unknown_entity_is_refused_listing_the_known_ones(
    two: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert two.glue_replay("--entity", "invoices", "--mode", "full", "--yes") == 2

    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        f"glue-replay: invalid request: --entity: 'invoices' is not a pipeline of the deployment "
        f"({two.config}); accepted: customers, orders\n",
    )
    two.assert_nothing_started()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--ids", "ORD-1,12"],
            "--ids: '12' is not a valid id; accepted: ORD- and 1 to 12 digits, e.g. ORD-1042",
        ),
        (
            ["--ids-file", "{tmp}/orders.txt"],
            "--ids-file: {tmp}/orders.txt row 2: 'C-7' is not a valid id; "
            "accepted: ORD- and 1 to 12 digits, e.g. ORD-1042",
        ),
    ],
)
def test_ids_are_checked_with_the_entitys_own_rule_and_help(
    two: Deployment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    (tmp_path / "orders.txt").write_text("ORD-1\nC-7\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]

    assert two.glue_replay("--entity", "orders", "--mode", "targeted", *argv) == 2
    # The same ids are valid customer ids: the rule is the entity's, not a default.
    assert two.glue_replay("--entity", "customers", "--mode", "targeted", *argv) == 0

    captured = capsys.readouterr()
    assert (
        captured.err == f"glue-replay: invalid request: {message.replace('{tmp}', str(tmp_path))}\n"
    )
    assert two.workflow_runs(ORDERS.workflow_name) == []
    assert len(two.workflow_runs(CUSTOMERS.workflow_name)) == 1


def test_a_replay_of_one_entity_starts_its_own_workflow_and_waits_only_for_its_own_runs(
    two: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # The customers pipeline is busy: that holds none of the orders pipeline's jobs.
    customers_bau = two.glue.start_workflow_run(Name=CUSTOMERS.bau_workflow_name)["RunId"]

    code = two.glue_replay(
        "--entity", "orders", "--mode", "targeted", "--ids", "ORD-1042, ORD-7",
        "--request-id", "orders-fix-1",
    )  # fmt: skip

    assert code == 0
    [run] = two.workflow_runs(ORDERS.workflow_name)
    assert run["WorkflowRunProperties"] == {
        "replay_mode": "targeted",
        "ids": "ORD-1042,ORD-7",
        "request_id": "orders-fix-1",
        "requested_by": CALLER,
    }
    assert capsys.readouterr().out.splitlines() == [
        "request orders-fix-1 for orders: targeted (2 ids)",
        "started on AWS Glue:",
        f"  workflow {ORDERS.workflow_name} run {run['WorkflowRunId']}",
        f"    jobs: {ORDERS.ingest_job} -> {ORDERS.normalize_job} (normalize after ingest)",
        "  not confirmed: Glue answered with no workflow graph to watch",
        "follow it: glue-replay status orders-fix-1 --entity orders",
    ]
    assert two.workflow_runs(CUSTOMERS.workflow_name) == []
    assert [r["WorkflowRunId"] for r in two.workflow_runs(CUSTOMERS.bau_workflow_name)] == [
        customers_bau
    ]

    # The orders pipeline's own BAU run, though, makes an orders request wait.
    orders_bau = two.glue.start_workflow_run(Name=ORDERS.bau_workflow_name)["RunId"]
    assert two.glue_replay("--entity", "orders", "--mode", "targeted", "--ids", "ORD-8") == 3
    assert capsys.readouterr().err.startswith(
        f"glue-replay: workflow {ORDERS.bau_workflow_name} is busy with run {orders_bau} "
    )
    assert len(two.workflow_runs(ORDERS.workflow_name)) == 1


def test_status_looks_at_every_pipeline_or_at_one_entity(
    two: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        two.glue_replay(
            "--entity", "orders", "--mode", "targeted", "--ids", "ORD-1", "--stage", "ingest",
            "--request-id", "fix-o1",
        )
        == 0
    )  # fmt: skip
    capsys.readouterr()
    [job_run] = two.job_runs(ORDERS.ingest_job)
    ledger = f"ledger: no runs table at {two.tmp / 'warehouse' / 'runs'}"

    assert main(["status", "fix-o1", "--config", two.config]) == 0
    assert main(["status", "fix-o1", "--entity", "orders", "--config", two.config]) == 0
    assert main(["status", "fix-o1", "--entity", "customers", "--config", two.config]) == 1
    assert main(["status", "fix-o1", "--entity", "invoices", "--config", two.config]) == 2

    captured = capsys.readouterr()
    lines = [
        re.sub(r" started \S+ \S+, \d+s$", " started", line) for line in captured.out.splitlines()
    ]
    assert lines == [
        "request fix-o1",
        ledger,
        "glue:",
        f"  job {ORDERS.ingest_job} run {job_run['Id']} SUCCEEDED started",
        "request fix-o1 (entity orders)",
        ledger,
        "glue:",
        f"  job {ORDERS.ingest_job} run {job_run['Id']} SUCCEEDED started",
        "request fix-o1 (entity customers)",
        ledger,
        f"glue: no recent run of {WORKFLOW}, {INGEST}, {NORMALIZE} carries request fix-o1 "
        "(the latest 100 runs of each were searched)",
    ]
    assert captured.err.splitlines() == [
        "glue-replay: request fix-o1 is unknown to the ledger and to Glue",
        f"glue-replay: invalid request: --entity: 'invoices' is not a pipeline of the deployment "
        f"({two.config}); accepted: customers, orders",
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("answer", "code", "started"), [("y\n", 0, 1), ("\n", 2, 0), ("no\n", 2, 0)]
)
def test_a_full_backfill_on_a_terminal_asks_first(
    aws: Deployment,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    code: int,
    started: int,
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal(answer))

    assert aws.glue_replay("--mode", "full") == code

    err = capsys.readouterr().err
    question = (
        f"Start a FULL backfill of customers: workflow {WORKFLOW} ({INGEST} -> {NORMALIZE}) "
        "on AWS Glue? [y/N] "
    )
    assert err == question + ("" if started else "glue-replay: not confirmed; nothing started\n")
    assert len(aws.workflow_runs()) == started


# -- --wait and status ----------------------------------------------------------------------------


def test_wait_prints_each_state_change_and_exits_0_when_the_job_succeeds(
    aws: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every second look moves the run on: STARTING, RUNNING, SUCCEEDED.
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 2})

    code = aws.glue_replay(
        "--mode", "targeted", "--ids", "1", "--stage", "normalize", "--request-id", "w-1",
        "--wait", "--poll-seconds", "0",
    )  # fmt: skip

    assert code == 0
    [run] = aws.job_runs(NORMALIZE)
    lines = capsys.readouterr().out.splitlines()
    progress = [re.sub(r"^  \d\d:\d\d:\d\d  ", "", line) for line in lines[4:-3]]
    assert [re.sub(r" started .*", "", line) for line in progress] == [
        f"job {NORMALIZE} run {run['Id']} STARTING",
        f"job {NORMALIZE} run {run['Id']} RUNNING",
        f"job {NORMALIZE} run {run['Id']} SUCCEEDED",
    ]
    assert lines[-3:] == [
        "all jobs succeeded",
        "request w-1",
        f"ledger: no runs table at {aws.tmp / 'warehouse' / 'runs'}",
    ]


def test_wait_exits_1_when_the_job_fails(
    aws: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 10**9})

    def fail_the_run() -> None:  # what Glue does to the run while the CLI polls
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            runs = glue_backends[ACCOUNT][REGION].jobs[INGEST].job_runs
            if runs:
                runs[0].status = "FAILED"
                return
            time.sleep(0.01)

    failer = threading.Thread(target=fail_the_run)
    failer.start()
    code = aws.glue_replay(
        "--mode", "targeted", "--ids", "1", "--stage", "ingest", "--wait", "--poll-seconds", "0.01"
    )
    failer.join()

    assert code == 1
    out = capsys.readouterr().out
    assert re.search(rf"job {INGEST} run jr_\w+ FAILED started ", out)
    assert "the request did not succeed\n" in out


def test_follow_a_workflow_run_to_its_end(aws: Deployment) -> None:
    config = load_config(aws.config)
    pipeline = config.pipeline("customers")
    args = glue_start.validate(
        {"replay_mode": "targeted", "ids": "1", "request_id": "wf-1"}, ids=pipeline.ids
    )
    target = glue_start.GlueTarget.of(pipeline, "all")
    started = glue_start.start_replay(aws.glue, aws.s3, config, target, args)
    said: list[str] = []
    workflow_run = glue_backends[ACCOUNT][REGION].workflows[WORKFLOW].runs[started.workflow_run_id]

    def sleep(_: float) -> None:  # Glue finishes the run between two polls
        workflow_run.status = "COMPLETED"

    succeeded = follow(aws.glue, started, poll_seconds=0, say=said.append, sleep=sleep)

    assert succeeded is True
    assert [re.sub(r"^  \d\d:\d\d:\d\d  | started .*", "", line) for line in said] == [
        f"workflow {WORKFLOW} run {started.workflow_run_id} RUNNING",
        f"workflow {WORKFLOW} run {started.workflow_run_id} COMPLETED",
    ]


def test_status_finds_the_glue_runs_of_a_request(
    aws: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        aws.glue_replay(
            "--mode", "targeted", "--ids", "1", "--stage", "normalize", "--request-id", "fix-7"
        )
        == 0
    )
    assert aws.glue_replay("--mode", "targeted", "--ids", "2", "--request-id", "fix-8") == 0
    capsys.readouterr()
    [job_run] = aws.job_runs(NORMALIZE)
    [workflow_run] = aws.workflow_runs()

    assert main(["status", "fix-7", "--config", aws.config]) == 0
    assert main(["status", "fix-8", "--config", aws.config]) == 0

    lines = [
        re.sub(r" started \S+ \S+, \d+s$", " started", line)
        for line in capsys.readouterr().out.splitlines()
    ]
    assert lines == [
        "request fix-7",
        f"ledger: no runs table at {aws.tmp / 'warehouse' / 'runs'}",
        "glue:",
        f"  job {NORMALIZE} run {job_run['Id']} SUCCEEDED started",
        "request fix-8",
        f"ledger: no runs table at {aws.tmp / 'warehouse' / 'runs'}",
        "glue:",
        f"  workflow {WORKFLOW} run {workflow_run['WorkflowRunId']} RUNNING started",
    ]


def test_status_of_an_unknown_request_exits_1(
    aws: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "nope-1", "--config", aws.config]) == 1

    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "request nope-1",
        f"ledger: no runs table at {aws.tmp / 'warehouse' / 'runs'}",
        f"glue: no recent run of {WORKFLOW}, {INGEST}, {NORMALIZE} carries request nope-1 "
        "(the latest 100 runs of each were searched)",
    ]
    assert captured.err == "glue-replay: request nope-1 is unknown to the ledger and to Glue\n"


# -- configuration -----------------------------------------------------------------------------

ORDERS_ENTRY = {
    "ingest_job": "orders-in",
    "normalize_job": "orders-norm",
    "workflow_name": "orders-wf",
    "bau_workflow_name": None,
    "id_pattern": "ORD-[0-9]{1,12}",
    "id_help": "ORD- and 1 to 12 digits",
}


def test_the_config_file_is_terraforms_cli_config_and_the_environment_overrides_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "region": "eu-west-1",
                "warehouse": "s3://lake/wh",
                "uploads_uri": "s3://uploads/ids/",
                "uploads_kms_key": None,
                "pipelines": {"orders": ORDERS_ENTRY},
                "publish_job": "glue-replay-publish",
                "a_later_key": "from a newer Terraform",
            }
        )
    )
    environ = {
        "GLUE_REPLAY_CONFIG": str(path),
        "GLUE_REPLAY_WAREHOUSE": "s3://lake/wh-v2",
        "GLUE_REPLAY_UPLOADS_KMS_KEY": "alias/uploads",
    }

    config = load_config(None, environ)

    orders = PipelineConfig(
        entity="orders",
        ingest_job="orders-in",
        normalize_job="orders-norm",
        workflow_name="orders-wf",
        bau_workflow_name=None,
        id_pattern="ORD-[0-9]{1,12}",
        id_help="ORD- and 1 to 12 digits",
    )
    assert config == DeploymentConfig(
        region="eu-west-1",
        warehouse="s3://lake/wh-v2",
        uploads_uri="s3://uploads/ids/",
        uploads_kms_key="alias/uploads",
        pipelines={"orders": orders},
        publish_job="glue-replay-publish",
        origin=f"{path}, $GLUE_REPLAY_WAREHOUSE, $GLUE_REPLAY_UPLOADS_KMS_KEY",
    )
    assert config.uploads_location == ("uploads", "ids")
    assert config.pipeline(None) == orders
    assert orders.workflows == ("orders-wf",)


def test_publish_job_is_optional_and_the_environment_may_set_it(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"pipelines": {"orders": ORDERS_ENTRY}, "publish_job": None}))

    assert load_config(str(path), {}).publish_job is None
    assert load_config(None, {}).publish_job is None
    overridden = load_config(str(path), {"GLUE_REPLAY_PUBLISH_JOB": "acme-publish"})
    assert overridden.publish_job == "acme-publish"
    assert overridden.origin == f"{path}, $GLUE_REPLAY_PUBLISH_JOB"


def test_the_lambdas_configuration_is_its_environment_alone() -> None:
    environ = {
        "GLUE_REPLAY_PIPELINES": json.dumps({"orders": ORDERS_ENTRY}),
        "GLUE_REPLAY_UPLOADS_URI": "s3://uploads",
        "GLUE_REPLAY_REGION": "us-east-2",
    }

    config = load_config(None, environ)

    assert (config.region, config.warehouse, config.uploads_uri, config.uploads_kms_key) == (
        "us-east-2",
        None,
        "s3://uploads",
        None,
    )
    assert config.publish_job is None, "absent: no publisher deployed"
    assert list(config.pipelines) == ["orders"]
    assert config.pipelines["orders"].ids == IdRule("ORD-[0-9]{1,12}", "ORD- and 1 to 12 digits")
    assert config.uploads_location == ("uploads", "")
    assert config.origin == "$GLUE_REPLAY_REGION, $GLUE_REPLAY_UPLOADS_URI, $GLUE_REPLAY_PIPELINES"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            "{not json",
            "the configuration {path} is not JSON (Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)); accepted: the object Terraform outputs as "
            "cli_config",
        ),
        (
            "[1, 2]",
            "the configuration {path} is a JSON array, not an object; "
            "accepted: the object Terraform outputs as cli_config",
        ),
        ({"region": 7}, "region in {path} is a JSON number; accepted: a string or null"),
        (
            {"publish_job": ["glue-replay-publish"]},
            "publish_job in {path} is a JSON array; accepted: a string or null",
        ),
        (
            {"pipelines": ["orders"]},
            "pipelines in {path} is a JSON array; accepted: an object of entity name -> "
            "{ingest_job, normalize_job, workflow_name, bau_workflow_name, id_pattern, id_help}",
        ),
        (
            {"pipelines": {"orders": "orders-wf"}},
            "pipelines.orders in {path} is a JSON string; accepted: an object with ingest_job, "
            "normalize_job, workflow_name, bau_workflow_name, id_pattern, id_help",
        ),
        (
            {"pipelines": {"orders": {k: v for k, v in ORDERS_ENTRY.items() if k != "id_help"}}},
            "pipelines.orders.id_help is missing in {path}; accepted: a non-empty string",
        ),
        (
            {"pipelines": {"orders": {**ORDERS_ENTRY, "bau_workflow_name": 3}}},
            "pipelines.orders.bau_workflow_name in {path} is a JSON number; "
            "accepted: a non-empty string or null",
        ),
        (
            {"pipelines": {"orders": {**ORDERS_ENTRY, "workflow_name": None}}},
            "pipelines.orders.workflow_name in {path} is a JSON null; accepted: a non-empty string",
        ),
        (
            {"pipelines": {"orders": {**ORDERS_ENTRY, "ingest_job": " "}}},
            "pipelines.orders.ingest_job in {path} is empty; accepted: a non-empty string",
        ),
        (
            {"pipelines": {"orders": {**ORDERS_ENTRY, "id_pattern": "ORD-[0-9"}}},
            "pipelines.orders.id_pattern in {path} is not a regular expression (unterminated "
            "character set at position 4): 'ORD-[0-9'; accepted: a Python regex that a whole id "
            "must match",
        ),
    ],
)
def test_a_broken_config_file_is_refused_naming_the_key_and_what_is_accepted(
    tmp_path: Path, document: Any, message: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))

    with pytest.raises(DeploymentConfigError) as refused:
        load_config(str(path), {})

    assert str(refused.value) == message.replace("{path}", str(path))


def test_a_broken_pipelines_variable_is_refused_naming_it() -> None:
    with pytest.raises(DeploymentConfigError) as refused:
        load_config(None, {"GLUE_REPLAY_PIPELINES": '{"orders": {"ingest_job": "in"}}'})

    assert str(refused.value) == (
        "pipelines.orders.normalize_job is missing in $GLUE_REPLAY_PIPELINES; "
        "accepted: a non-empty string"
    )


# -- the operator commands start no JVM ----------------------------------------------------------


def test_no_trigger_module_imports_spark() -> None:
    code = (
        "import sys\n"
        "import glue_replay.trigger.cli, glue_replay.trigger.lambda_handler\n"
        "import glue_replay.trigger.status, glue_replay.trigger.start, glue_replay.trigger.config\n"
        "import glue_replay.trigger.ledger\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pyspark', 'py4j', 'delta'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout == "[]\n"


def test_an_invalid_request_is_refused_by_the_console_script_before_any_jvm(
    tmp_path: Path,
) -> None:
    # No Java in this environment: a CLI that started Spark before refusing would fail instead.
    env = dict(os.environ, JAVA_HOME="/nonexistent-java-home")
    env["PATH"] = os.pathsep.join(
        folder for folder in env["PATH"].split(os.pathsep) if not (Path(folder) / "java").exists()
    )
    result = subprocess.run(
        [sys.executable, "-m", "glue_replay.trigger.cli", "--entity", "customers",
         "--mode", "since", "--date", "yesterday"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "glue-replay: invalid request: --date: 'yesterday' is not a date; "
        "accepted: a UTC date YYYY-MM-DD, e.g. 2026-01-31\n",
    )
    assert list(tmp_path.iterdir()) == []


# -- --target local: the stages in-process on real Spark + Delta ---------------------------------


def test_a_local_replay_runs_both_stages_and_status_reads_its_ledger(
    spark: SparkSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws_environment(monkeypatch)
    # The suite's one JVM: the CLI builds its session through this function.
    monkeypatch.setattr("glue_replay.runtime.build_spark_session", lambda *_, **__: spark)
    warehouse = str(tmp_path / "warehouse")
    export = tmp_path / "export.csv"
    export.write_text("email,customer_id\na@x.io,1\nb@x.io,2\nc@x.io,999\nd@x.io,1\n")

    with SampleApiServer(records=60) as api:
        code = main(
            [
                "--entity", "customers", "--mode", "targeted",
                "--ids-file", str(export), "--id-column", "customer_id",
                "--warehouse", warehouse, "--source", api.url,
            ]
        )  # fmt: skip

    assert code == 0
    out = capsys.readouterr().out
    request_id = request_id_of(out)
    assert REQUEST_ID.fullmatch(request_id)
    assert out.splitlines()[:2] == [
        f"request {request_id} for customers: targeted (3 ids from {export})",
        f"running ingest -> normalize on local Spark, warehouse {warehouse}",
    ]
    outbox = spark.read.format("delta").load(f"{warehouse}/outbox/customers")
    assert_df_equality(
        outbox.select("aggregate_id", "event_type", "request_id", "replay_mode"),
        spark.createDataFrame(
            [
                ("1", "customer.created", request_id, "targeted"),
                ("2", "customer.created", request_id, "targeted"),
            ],
            "aggregate_id string, event_type string, request_id string, replay_mode string",
        ),
        ignore_row_order=True,
        ignore_nullable=True,
    )

    assert main(["status", request_id, "--warehouse", warehouse]) == 0

    ledger_line = (
        # unchanged: once the ledger has the column (issue 8); a table without it shows none.
        r"  (?P<stage>\w+) +customers  succeeded  read 2, written 2, (?:unchanged \d+, )?"
        r"outboxed (?P<outboxed>\d), "
        r"quarantined 0, missing ids 1  run local-[0-9a-f]{12} "
        r"\(started \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ, took (?:\d+m )?\d+s\)"
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [f"request {request_id}", f"ledger {warehouse}/runs:"]
    found = [re.fullmatch(ledger_line, line) for line in lines[2:]]
    assert [(m["stage"], m["outboxed"]) for m in found if m] == [
        ("ingest", "0"),
        ("normalize", "2"),
    ]
    assert lines[4:] == [
        "delivered: customers not published yet (the next publish run delivers its 2 events)"
    ]


def test_a_local_replay_of_an_entity_that_is_not_installed_lists_the_installed_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = tmp_path / "warehouse"

    code = main(["--entity", "invoices", "--mode", "full", "--warehouse", str(warehouse)])

    assert code == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        "glue-replay: invalid request: --entity: 'invoices' is not a pipeline of this "
        "installation (entry points glue_replay.pipelines); accepted: customers, orders\n",
    )
    assert not warehouse.exists()


def test_the_replay_arguments_are_what_the_jobs_read() -> None:
    args = JobArguments(
        request=ReplayRequest(
            ReplayMode.SINCE, "r-1", since=datetime(2026, 1, 1).date(), dry_run=True
        ),
        requested_by="jane",
    )
    properties = glue_start.replay_properties(args)
    assert properties == {
        "replay_mode": "since",
        "date": "2026-01-01",
        "request_id": "r-1",
        "dry_run": "true",
        "requested_by": "jane",
    }
    assert set(properties) <= set(REPLAY_FIELDS)
    assert glue_start.as_job_arguments(properties)["--replay_mode"] == "since"


def test_a_local_replay_passes_the_pipelines_own_settings(
    spark: SparkSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres: PostgresServer,
    jdbc_login: Login,
) -> None:
    monkeypatch.setattr("glue_replay.runtime.build_spark_session", lambda *_, **__: spark)
    postgres.run_sql("TRUNCATE order_lines, orders;")
    orders = sample_orders(3, now=datetime(2026, 11, 20, tzinfo=UTC))
    insert_orders(postgres, orders)
    warehouse = tmp_path / "warehouse"

    code = main(
        [
            "--entity", "orders", "--mode", "targeted", "--ids", "1001,1002",
            "--stage", "ingest", "--warehouse", str(warehouse),
            "--setting", f"jdbc_url={postgres.jdbc_url}",
        ]
    )  # fmt: skip

    assert code == 0, capsys.readouterr().err
    raw = spark.read.format("delta").load(str(warehouse / "raw" / "orders"))
    assert_df_equality(
        raw.select("id"),
        spark.createDataFrame([("1001",), ("1002",)], "id string"),
        ignore_row_order=True,
        ignore_nullable=True,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--entity", "customers", "--setting", "jdbc_url=jdbc:postgresql://db/shop"],
            "--setting: 'jdbc_url' is not a setting of this pipeline; "
            "accepted: none: this pipeline declares no settings",
        ),
        (
            ["--entity", "orders", "--setting", "jdbc-url=jdbc:postgresql://db/shop"],
            "--setting: 'jdbc-url' is not a setting of this pipeline; accepted: jdbc_url",
        ),
        (
            ["--entity", "orders", "--setting", "jdbc_url"],
            "--setting: 'jdbc_url' is not NAME=VALUE; accepted: jdbc_url",
        ),
    ],
)
def test_a_local_setting_the_pipeline_does_not_declare_is_refused(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = tmp_path / "warehouse"
    code = main([*argv, "--mode", "full", "--warehouse", str(warehouse)])
    assert (code, capsys.readouterr().err) == (2, f"glue-replay: invalid request: {message}\n")
    assert not warehouse.exists()
