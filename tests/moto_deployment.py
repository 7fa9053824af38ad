"""The glue-replay deployment in moto that the CLI and Lambda tests run against.

A plain module (not a conftest): the tests import it as ``from moto_deployment import ...``, which
works because pytest's default ``prepend`` import mode puts ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from glue_replay.trigger.config import CONFIG_FILE_ENV, ENV_OVERRIDES

REGION = "eu-west-1"
ACCOUNT = "123456789012"
CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"  # what moto's STS says the caller is
WORKFLOW, INGEST, NORMALIZE = "glue-replay", "ingest_rest_api", "normalize"
BAU_WORKFLOW = "glue-replay-bau"
UPLOADS_BUCKET = "replay-uploads"


def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, and no deployment configuration from the developer's environment."""
    for name in [*ENV_OVERRIDES.values(), CONFIG_FILE_ENV]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def create_deployment() -> tuple[Any, Any]:
    """The uploads bucket, both jobs (max 1 concurrent run) and both workflows; ``(glue, s3)``.

    Call it inside an active ``mock_aws()``.
    """
    glue = boto3.client("glue", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(
        Bucket=UPLOADS_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    for job in (INGEST, NORMALIZE):
        glue.create_job(
            Name=job,
            Role=f"arn:aws:iam::{ACCOUNT}:role/glue-replay",
            Command={"Name": "glueetl", "ScriptLocation": f"s3://artifacts/{job}.py"},
            ExecutionProperty={"MaxConcurrentRuns": 1},
        )
    glue.create_workflow(Name=WORKFLOW)
    glue.create_workflow(Name=BAU_WORKFLOW)
    return glue, s3


@dataclass
class Deployment:
    """A deployment in moto: two jobs (max 1 concurrent run), the workflow, the uploads bucket.

    ``uploads_prefix``: where :meth:`uploads` looks in the uploads bucket (``None``: all of it).
    """

    glue: Any
    s3: Any
    uploads_prefix: str | None = field(default=None, kw_only=True)

    def workflow_runs(self) -> list[dict[str, Any]]:
        return list(self.glue.get_workflow_runs(Name=WORKFLOW)["Runs"])

    def job_runs(self, job: str) -> list[dict[str, Any]]:
        return list(self.glue.get_job_runs(JobName=job)["JobRuns"])

    def uploads(self) -> list[str]:
        prefix = {} if self.uploads_prefix is None else {"Prefix": self.uploads_prefix}
        listing = self.s3.list_objects_v2(Bucket=UPLOADS_BUCKET, **prefix)
        return [o["Key"] for o in listing.get("Contents", [])]

    def assert_nothing_started(self, *, except_runs: int = 0) -> None:
        assert self.workflow_runs() == []
        assert len(self.job_runs(INGEST)) + len(self.job_runs(NORMALIZE)) == except_runs
        assert self.uploads() == []
