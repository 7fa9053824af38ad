"""The whole deployment, for real: ``terraform apply`` of terraform/ against a local AWS endpoint,
a replay driven as an operator drives it, then ``terraform destroy``.

- **The endpoint**: ``moto_server`` on a free loopback port, over TLS with a certificate made for
  the run (the buckets refuse plain HTTP by policy, as they should). Terraform trusts the
  certificate through the provider's ``custom_ca_bundle``, boto3, the CLI and the jobs through
  ``AWS_CA_BUNDLE``, the jobs' JVM (S3A) through a trust store. moto 5.2.5 needs two fixes to
  read our bucket policies (tests/moto_launcher.py says which and why).
- **The apply**: the real AWS provider 5.100.0 (from the plugin mirror), the root module with its
  defaults (every bundled pipeline), the artifacts ``make package`` builds, and a test-only
  ``*_override.tf`` that gives the provider its CA bundle and path-style S3 (the endpoint itself
  comes from ``AWS_ENDPOINT_URL``). Every resource of the plan must be created.
- **The operator's replay**: ``glue-replay --target glue --config <terraform output cli_config>``
  starts a targeted replay of a 30,000-id CSV, which the CLI uploads to the uploads bucket. moto
  runs no Glue job, so the test then runs both jobs here as Glue would: each job's script from the
  artifacts bucket, with the job definition's arguments and the workflow run's ``--WORKFLOW_NAME``
  and ``--WORKFLOW_RUN_ID`` (the jobs read the request from the run's properties, the source
  token from its secret, and write the warehouse on S3 through S3A). ``glue-replay status`` then
  reports the request from the ledger in the bucket.
- **The Lambda**: its zip, as Terraform uploaded it, with its deployed environment, accepts a
  request and refuses a bad one.
- **The destroy** leaves nothing behind (KMS keys pending deletion count as destroyed).

Skipped, saying so, only where there is no Terraform binary.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable, QueryBuilder
from pyspark.sql import SparkSession

from checkout_lock import checkout_lock
from glue_replay_devtools.sample_api import SampleApiServer

pytest.register_assert_rewrite("moto_process")
from conftest import JOB_JVM_OPTIONS  # noqa: E402
from moto_process import (  # noqa: E402
    FAKE_AWS_ENVIRONMENT,
    REGION,
    TlsEndpoint,
    running_tls_moto_server,
)

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_MIRROR = Path("/opt/tf-plugins")
TERRAFORM = os.environ.get("TERRAFORM") or shutil.which("terraform")
pytestmark = pytest.mark.skipif(
    TERRAFORM is None, reason="no terraform binary: put it on the PATH or set TERRAFORM"
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
RECORDS = 40  # the sample API serves customers 1..40
#: Those normalized: all but 20 (an email without @) and 40 (a text updated_at), which the sample
#: API serves malformed (glue_replay_devtools.sample_api.malformed_ids(40)) and normalize
#: quarantines.
NORMALIZED_IDS = [str(n) for n in range(1, RECORDS + 1) if n not in (20, 40)]
TOKEN = "sample-api-token-for-the-deployment-test"
#: The operator's CSV: 30,000 ids, of which the source holds 1..40 (the rest are reported missing).
IDS = [str(n) for n in range(1, 30_001)]
SINK = f"kinesis:arn:aws:kinesis:{REGION}:123456789012:stream/events"


@dataclass
class Deployment:
    endpoint: TlsEndpoint
    workdir: Path
    env: dict[str, str]
    cli_config: Path
    planned: set[str]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint.url,
            verify=str(self.endpoint.ca_bundle),
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )

    def terraform(self, *args: str) -> subprocess.CompletedProcess[str]:
        return terraform(self.workdir, self.env, *args)


def terraform(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    result = subprocess.run(
        [TERRAFORM, args[0], "-no-color", *args[1:]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"terraform {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stderr[-6000:]}\n{result.stdout[-3000:]}"
        )
    return result


def lay_out_repository(repo: Path) -> None:
    """terraform/, glue_jobs/ and dist/ (built as `make package` builds it), as in a checkout."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import package
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    ignore = shutil.ignore_patterns(".terraform*", "*.tfstate*", "*.tfvars", "__pycache__")
    shutil.copytree(ROOT / "terraform", repo / "terraform", ignore=ignore)
    shutil.copytree(ROOT / "glue_jobs", repo / "glue_jobs", ignore=ignore)
    (repo / "dist").mkdir()
    with checkout_lock("package-build"):  # pip builds in the checkout: one build at a time
        package.build_wheel(repo / "dist")
    package.build_lambda_zip(repo / "dist")


@pytest.fixture(scope="module")
def api() -> Iterator[SampleApiServer]:
    with SampleApiServer(records=RECORDS, now=NOW, token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, api: SampleApiServer
) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("deployment")
    repo = base / "repo"
    lay_out_repository(repo)
    workdir = repo / "terraform"
    cli_rc = base / "terraform.tfrc"
    mirror = f'filesystem_mirror {{\n    path = "{PLUGIN_MIRROR}"\n  }}'
    cli_rc.write_text(
        f"provider_installation {{\n  {mirror}\n}}\n" if PLUGIN_MIRROR.is_dir() else "",
        encoding="utf-8",
    )
    with running_tls_moto_server(base) as endpoint, pytest.MonkeyPatch.context() as patch:
        # delta-rs in this process (the tables' checks) trusts the platform's roots, which
        # SSL_CERT_FILE replaces: the run's certificate alone.
        patch.setenv("SSL_CERT_FILE", str(endpoint.ca_bundle))
        env = {
            **os.environ,
            **FAKE_AWS_ENVIRONMENT,
            "AWS_ENDPOINT_URL": endpoint.url,
            "AWS_CA_BUNDLE": str(endpoint.ca_bundle),
            "SSL_CERT_FILE": str(endpoint.ca_bundle),  # delta-rs (the CLI's status) trusts it
            "TF_CLI_CONFIG_FILE": configured_cli_file() or str(cli_rc),
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
        }
        # Test-only: the provider trusts the run's certificate and addresses buckets by path.
        (workdir / "local_endpoint_override.tf").write_text(
            'provider "aws" {\n'
            f'  custom_ca_bundle  = "{endpoint.ca_bundle}"\n'
            "  s3_use_path_style = true\n"
            "}\n",
            encoding="utf-8",
        )
        terraform(workdir, env, "init", "-input=false")
        # Every bundled pipeline as var.pipelines defaults it; customers reads the sample API.
        pipelines = json.loads(
            json.loads(
                subprocess.run(
                    [TERRAFORM, "console", "-var", f"publish_sink={SINK}"],  # type: ignore[list-item]
                    cwd=workdir,
                    env=env,
                    input="jsonencode(var.pipelines)\n",
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
            )
        )
        pipelines["customers"]["source_url"] = api.url
        (workdir / "deployment-test.auto.tfvars.json").write_text(
            json.dumps(
                {
                    "region": REGION,
                    "publish_sink": SINK,
                    "pipelines": pipelines,
                    "force_destroy": True,  # the warehouse holds the replay's tables by then
                }
            ),
            encoding="utf-8",
        )
        terraform(workdir, env, "plan", "-out=deployment.tfplan")
        plan = json.loads(terraform(workdir, env, "show", "-json", "deployment.tfplan").stdout)
        planned = {
            change["address"]
            for change in plan["resource_changes"]
            if change["mode"] == "managed" and "create" in change["change"]["actions"]
        }
        terraform(workdir, env, "apply", "-parallelism=20", "deployment.tfplan")
        cli_config = base / "glue-replay.json"
        cli_config.write_text(
            terraform(workdir, env, "output", "-json", "cli_config").stdout, encoding="utf-8"
        )
        deployed = Deployment(endpoint, workdir, env, cli_config, planned)
        try:
            yield deployed
        finally:
            # A test that failed before the destroy test must not leave the state behind.
            if (workdir / "terraform.tfstate").exists() and not deployed_destroyed(workdir):
                subprocess.run(
                    [TERRAFORM, "destroy", "-auto-approve", "-no-color"],  # type: ignore[list-item]
                    cwd=workdir,
                    env=env,
                    capture_output=True,
                    check=False,
                    timeout=900,
                )


def configured_cli_file() -> str | None:
    """``$TF_CLI_CONFIG_FILE`` when it names a file (as test_terraform.py reads it)."""
    configured = os.environ.get("TF_CLI_CONFIG_FILE")
    return configured if configured and Path(configured).is_file() else None


def deployed_destroyed(workdir: Path) -> bool:
    state = json.loads((workdir / "terraform.tfstate").read_text(encoding="utf-8"))
    return not state.get("resources")


# --- the tests, in the order an operator goes --------------------------------------------------


def test_every_resource_of_the_plan_is_created(deployment: Deployment) -> None:
    state = json.loads(deployment.terraform("show", "-json").stdout)
    created = set(managed_addresses(state["values"]["root_module"]))
    assert deployment.planned == created, "not created: " + ", ".join(
        sorted(deployment.planned - created)
    )
    assert len(created) > 80  # the whole root module, not a part of it


def managed_addresses(module: dict[str, Any]) -> Iterator[str]:
    for resource in module.get("resources", []):
        if resource["mode"] == "managed":
            yield resource["address"]
    for child in module.get("child_modules", []):
        yield from managed_addresses(child)


def test_the_cli_starts_a_targeted_replay_whose_jobs_run_as_glue_runs_them(
    deployment: Deployment, spark: SparkSession, tmp_path: Path
) -> None:
    config = json.loads(deployment.cli_config.read_text(encoding="utf-8"))
    customers = config["pipelines"]["customers"]
    ids_file = tmp_path / "customers-to-fix.csv"
    ids_file.write_text("id\n" + "\n".join(IDS) + "\n", encoding="utf-8")

    started = run_cli(
        deployment,
        "--target", "glue", "--config", str(deployment.cli_config), "--entity", "customers",
        "--mode", "targeted", "--ids-file", str(ids_file), "--request-id", "fix-30k",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    uploads = f"{config['uploads_uri']}/fix-30k/ids.csv"
    assert f"ids uploaded to {uploads}" in started.stdout

    glue = deployment.client("glue")
    [run] = glue.get_workflow_runs(Name=customers["workflow_name"])["Runs"]
    assert run["WorkflowRunProperties"] == {
        "replay_mode": "targeted",
        "ids_file": uploads,
        "request_id": "fix-30k",
        "requested_by": run["WorkflowRunProperties"]["requested_by"],
    }
    bucket, key = uploads.removeprefix("s3://").split("/", 1)
    uploaded = deployment.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert [row["id"] for row in csv.DictReader(io.StringIO(uploaded))] == IDS

    # The source token the operator puts in the pipeline's secret (Terraform creates it empty).
    ingest = glue.get_job(JobName=customers["ingest_job"])["Job"]
    deployment.client("secretsmanager").put_secret_value(
        SecretId=ingest["NonOverridableArguments"]["--source_token_secret"], SecretString=TOKEN
    )
    exit_codes = run_as_glue(
        deployment,
        tmp_path,
        "customers",
        [customers["ingest_job"], customers["normalize_job"]],
        workflow=customers["workflow_name"],
        run_id=run["WorkflowRunId"],
    )
    assert exit_codes == [0, 0]

    warehouse = config["warehouse"]
    # Every id the source holds, normalized and emitted by this request; none of the others.
    schema = "id string, request_id string"
    expected = spark.createDataFrame([(id_, "fix-30k") for id_ in NORMALIZED_IDS], schema)
    for table, key in (("normalized/customers", "id"), ("outbox/customers", "aggregate_id")):
        rows = delta_rows(deployment, f"{warehouse}/{table}", [key, "request_id"])
        assert_df_equality(spark.createDataFrame(rows, schema), expected, ignore_row_order=True)
    status = run_cli(
        deployment, "status", "fix-30k", "--entity", "customers",
        "--config", str(deployment.cli_config),
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    # The ledger's two rows, as the jobs wrote them in the bucket: every count, run ids as Glue's.
    ledger = sorted(
        " ".join(line.split()) for line in status.stdout.splitlines() if " run jr_" in line
    )
    expected = [
        rf"{stage} customers succeeded read 40, written {written}, (unchanged 0, )?"
        rf"outboxed {outboxed}, quarantined {quarantined}, missing ids 29960 run jr_{number} "
        for number, stage, written, outboxed, quarantined in (
            (1, "ingest", 40, 0, 0),
            (2, "normalize", 38, 38, 2),
        )
    ]
    assert len(ledger) == 2 and all(
        re.match(pattern, line) for pattern, line in zip(expected, ledger, strict=True)
    ), status.stdout


def test_the_deployed_lambda_accepts_a_request_and_refuses_a_bad_one(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The zip Terraform uploaded, unpacked as Lambda does, with the function's environment."""
    function = deployment.client("lambda").get_function(FunctionName="glue-replay-trigger")
    configuration = function["Configuration"]
    assert (configuration["Runtime"], configuration["Handler"]) == (
        "python3.11",
        "glue_replay.trigger.lambda_handler.handler",
    )
    s3, bucket = deployment.client("s3"), artifacts_bucket(deployment)
    [key] = [
        listed["Key"]
        for listed in s3.list_objects_v2(Bucket=bucket)["Contents"]
        if listed["Key"].endswith("glue_replay_lambda.zip")
    ]
    package = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    task = tmp_path / "task"  # what Lambda puts at /var/task
    zipfile.ZipFile(io.BytesIO(package)).extractall(task)
    environment = configuration["Environment"]["Variables"]

    accepted = invoke(deployment, task, environment, {"entity": "orders", "mode": "targeted",
                                                      "ids": ["1042", "7"]})  # fmt: skip
    assert accepted["module"].startswith(str(task))  # the zip's code, not the checkout's
    assert accepted["statusCode"] == 202, accepted
    answer = json.loads(accepted["body"])
    orders = json.loads(deployment.cli_config.read_text(encoding="utf-8"))["pipelines"]["orders"]
    [run] = deployment.client("glue").get_workflow_runs(Name=orders["workflow_name"])["Runs"]
    assert answer["workflow_run_id"] == run["WorkflowRunId"]
    assert run["WorkflowRunProperties"]["ids"] == "1042,7"

    refused = invoke(deployment, task, environment, {"entity": "orders", "mode": "targeted",
                                                     "ids": ["ORD-7"]})  # fmt: skip
    assert refused["statusCode"] == 400, refused
    assert json.loads(refused["body"])["error"].startswith("invalid request: ids: ")
    assert (
        len(deployment.client("glue").get_workflow_runs(Name=orders["workflow_name"])["Runs"]) == 1
    )


def test_destroy_leaves_nothing_behind(deployment: Deployment) -> None:
    deployment.terraform("destroy", "-auto-approve", "-parallelism=20")
    assert deployed_destroyed(deployment.workdir)
    client = deployment.client
    left = {
        "buckets": [b["Name"] for b in client("s3").list_buckets()["Buckets"]],
        "glue jobs": client("glue").list_jobs()["JobNames"],
        "glue workflows": client("glue").list_workflows()["Workflows"],
        "glue triggers": client("glue").list_triggers()["TriggerNames"],
        "glue security configurations": [
            c["Name"]
            for c in client("glue").get_security_configurations()["SecurityConfigurations"]
        ],
        "roles": [r["RoleName"] for r in client("iam").list_roles()["Roles"]],
        "functions": [f["FunctionName"] for f in client("lambda").list_functions()["Functions"]],
        "secrets": [s["Name"] for s in client("secretsmanager").list_secrets()["SecretList"]],
        "tables": client("dynamodb").list_tables()["TableNames"],
        "queues": client("sqs").list_queues().get("QueueUrls", []),
        "topics": [t["TopicArn"] for t in client("sns").list_topics()["Topics"]],
        "rules": [r["Name"] for r in client("events").list_rules()["Rules"]],
        "alarms": [a["AlarmName"] for a in client("cloudwatch").describe_alarms()["MetricAlarms"]],
        "log groups": [
            g["logGroupName"] for g in client("logs").describe_log_groups()["logGroups"]
        ],
        "kms aliases": [
            a["AliasName"]
            for a in client("kms").list_aliases()["Aliases"]
            if not a["AliasName"].startswith("alias/aws/")
        ],
        "kms keys not pending deletion": [
            key["KeyId"]
            for key in client("kms").list_keys()["Keys"]
            if client("kms").describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"]
            != "PendingDeletion"
        ],
    }
    assert {kind: names for kind, names in left.items() if names} == {}


# --- helpers -------------------------------------------------------------------------------------


def run_cli(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "glue-replay"), *args],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run_as_glue(
    deployment: Deployment,
    folder: Path,
    pipeline: str,
    jobs: list[str],
    *,
    workflow: str,
    run_id: str,
) -> list[int]:
    """Run ``jobs`` in turn as Glue runs them in a workflow run: each with its deployed script and
    its definition's arguments (defaults, then non-overridable ones), plus Glue's own
    ``--JOB_NAME``, ``--JOB_RUN_ID``, ``--WORKFLOW_NAME`` and ``--WORKFLOW_RUN_ID``; in one process
    with one Spark session (tests/jobs_driver.py). Returns their exit codes."""
    glue, s3 = deployment.client("glue"), deployment.client("s3")
    invocations = []
    for number, name in enumerate(jobs, start=1):
        job = glue.get_job(JobName=name)["Job"]
        bucket, key = job["Command"]["ScriptLocation"].removeprefix("s3://").split("/", 1)
        script = folder / Path(key).name
        script.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert script.read_bytes() == (ROOT / key).read_bytes(), f"{name} runs {key} as deployed"
        arguments = {**job.get("DefaultArguments", {}), **job.get("NonOverridableArguments", {})}
        arguments |= {
            "--JOB_NAME": name,
            "--JOB_RUN_ID": f"jr_{number}",
            "--WORKFLOW_NAME": workflow,
            "--WORKFLOW_RUN_ID": run_id,
        }
        stage = name.rsplit("-", 1)[1]
        argv = [item for pair in arguments.items() for item in pair]
        invocations.append(
            {"pipeline": pipeline, "stage": stage, "argv": argv, "script": str(script)}
        )
    jobs_file = folder / "jobs.json"
    jobs_file.write_text(json.dumps(invocations), encoding="utf-8")
    env = deployment.env | {
        "SPARK_SUBMIT_OPTS": f"{JOB_JVM_OPTIONS} {deployment.endpoint.java_options()}"
    }
    with (folder / "jobs_driver.log").open("w") as log:
        driver = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "jobs_driver.py"), str(jobs_file)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True, timeout=900,
            check=False,
        )  # fmt: skip
    tail = (folder / "jobs_driver.log").read_text()[-6000:]
    assert driver.returncode == 0, tail
    results = [json.loads(line) for line in driver.stdout.splitlines()]
    codes = [int(result["exit_code"]) for result in results]
    assert len(codes) == len(jobs) and not any(codes), tail
    return codes


def delta_rows(deployment: Deployment, uri: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """A Delta table in the bucket as delta-rs reads it (the CLI's reader), over TLS."""
    options = {
        "AWS_ENDPOINT_URL": deployment.endpoint.url,
        "AWS_REGION": REGION,
        **{k: v for k, v in FAKE_AWS_ENVIRONMENT.items() if k.startswith("AWS_") and "KEY" in k},
        "AWS_SESSION_TOKEN": FAKE_AWS_ENVIRONMENT["AWS_SESSION_TOKEN"],
    }
    query = QueryBuilder().register("t", DeltaTable(uri, storage_options=options))
    table = query.execute(f"SELECT {', '.join(columns)} FROM t").read_all()
    return list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


def artifacts_bucket(deployment: Deployment) -> str:
    names = [b["Name"] for b in deployment.client("s3").list_buckets()["Buckets"]]
    return next(name for name in names if "-artifacts-" in name)


def invoke(
    deployment: Deployment, task: Path, environment: dict[str, str], event: dict[str, Any]
) -> dict[str, Any]:
    """The handler in a Python of its own, with only the zip on its path before the runtime's
    (boto3 comes with the Lambda runtime), and the function's environment."""
    code = (
        "import json, sys\n"
        "import glue_replay\n"
        "from glue_replay.trigger.lambda_handler import handler\n"
        "answer = handler(json.loads(sys.argv[1]), None)\n"
        "print(json.dumps({**answer, 'module': glue_replay.__file__}))\n"
    )
    env = {**deployment.env, **environment, "PYTHONPATH": str(task)}
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(event)],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=task,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return answer
