"""The glue-replay deployment in moto that the CLI and Lambda tests run against.

A plain module (not a conftest): the tests import it as ``from moto_deployment import ...``, which
works because pytest's default ``prepend`` import mode puts ``tests/`` on ``sys.path``.

Each deployed pipeline has its two jobs (max 1 concurrent run), its replay and BAU workflows and
its id rule, named as Terraform names them; the configuration the CLI and the Lambda read is
built from the same :class:`DeployedPipeline` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from glue_replay.trigger.config import CONFIG_FILE_ENV, ENV_VARIABLES
from glue_replay_examples.customers import CUSTOMER_IDS

REGION = "eu-west-1"
ACCOUNT = "123456789012"
CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"  # what moto's STS says the caller is
UPLOADS_BUCKET = "replay-uploads"


@dataclass(frozen=True)
class DeployedPipeline:
    """One pipeline as deployed: its entity, its id rule, and the Glue names derived from it."""

    entity: str
    id_pattern: str
    id_help: str

    @property
    def ingest_job(self) -> str:
        return f"glue-replay-{self.entity}-ingest"

    @property
    def normalize_job(self) -> str:
        return f"glue-replay-{self.entity}-normalize"

    @property
    def workflow_name(self) -> str:
        return f"glue-replay-{self.entity}-replay"

    @property
    def bau_workflow_name(self) -> str:
        return f"glue-replay-{self.entity}-bau"

    def config(self) -> dict[str, str]:
        """Its entry in the configuration's ``pipelines`` map."""
        return {
            "ingest_job": self.ingest_job,
            "normalize_job": self.normalize_job,
            "workflow_name": self.workflow_name,
            "bau_workflow_name": self.bau_workflow_name,
            "id_pattern": self.id_pattern,
            "id_help": self.id_help,
        }


#: The bundled example's pipeline, with the example entity's own id rule.
CUSTOMERS = DeployedPipeline("customers", CUSTOMER_IDS.pattern, CUSTOMER_IDS.help)
#: A second pipeline whose ids look nothing like the first's.
ORDERS = DeployedPipeline("orders", r"ORD-[0-9]{1,12}", "ORD- and 1 to 12 digits, e.g. ORD-1042")
WORKFLOW, BAU_WORKFLOW = CUSTOMERS.workflow_name, CUSTOMERS.bau_workflow_name
INGEST, NORMALIZE = CUSTOMERS.ingest_job, CUSTOMERS.normalize_job


def pipelines_config(*pipelines: DeployedPipeline) -> dict[str, dict[str, str]]:
    """The configuration's ``pipelines`` map of ``pipelines``."""
    return {p.entity: p.config() for p in pipelines}


def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, and no deployment configuration from the developer's environment."""
    for name in [*ENV_VARIABLES.values(), CONFIG_FILE_ENV]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def create_deployment(*pipelines: DeployedPipeline) -> tuple[Any, Any]:
    """The uploads bucket, and each pipeline's jobs and workflows; ``(glue, s3)``.

    Call it inside an active ``mock_aws()``.
    """
    glue = boto3.client("glue", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(
        Bucket=UPLOADS_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    for pipeline in pipelines:
        for job in (pipeline.ingest_job, pipeline.normalize_job):
            glue.create_job(
                Name=job,
                Role=f"arn:aws:iam::{ACCOUNT}:role/glue-replay",
                Command={"Name": "glueetl", "ScriptLocation": f"s3://artifacts/{job}.py"},
                ExecutionProperty={"MaxConcurrentRuns": 1},
            )
        glue.create_workflow(Name=pipeline.workflow_name)
        glue.create_workflow(Name=pipeline.bau_workflow_name)
    return glue, s3


@dataclass
class Deployment:
    """A deployment in moto: its pipelines, their jobs and workflows, the uploads bucket.

    ``uploads_prefix``: where :meth:`uploads` looks in the uploads bucket (``None``: all of it).
    """

    glue: Any
    s3: Any
    uploads_prefix: str | None = field(default=None, kw_only=True)
    pipelines: tuple[DeployedPipeline, ...] = field(default=(CUSTOMERS,), kw_only=True)

    def workflow_runs(self, workflow: str = WORKFLOW) -> list[dict[str, Any]]:
        return list(self.glue.get_workflow_runs(Name=workflow)["Runs"])

    def job_runs(self, job: str) -> list[dict[str, Any]]:
        return list(self.glue.get_job_runs(JobName=job)["JobRuns"])

    def uploads(self) -> list[str]:
        prefix = {} if self.uploads_prefix is None else {"Prefix": self.uploads_prefix}
        listing = self.s3.list_objects_v2(Bucket=UPLOADS_BUCKET, **prefix)
        return [o["Key"] for o in listing.get("Contents", [])]

    def assert_nothing_started(self, *, except_runs: int = 0) -> None:
        """No replay workflow run and no upload; ``except_runs`` job runs in all (the tests'
        own runs that hold a job)."""
        assert [self.workflow_runs(p.workflow_name) for p in self.pipelines] == [
            [] for _ in self.pipelines
        ]
        jobs = [job for p in self.pipelines for job in (p.ingest_job, p.normalize_job)]
        assert sum(len(self.job_runs(job)) for job in jobs) == except_runs
        assert self.uploads() == []
