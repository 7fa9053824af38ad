"""Where a deployment is: its Glue workflow and jobs, the id-upload prefix and the warehouse.

Terraform outputs exactly this as JSON (``cli_config``); the snake_case keys are the field names::

    {"workflow_name": "glue-replay-customers", "ingest_job": "glue-replay-ingest_rest_api",
     "normalize_job": "glue-replay-normalize", "uploads_uri": "s3://acme-replay-uploads/ids",
     "warehouse": "s3://acme-lake/glue-replay", "region": "eu-west-1"}

The file comes from ``--config FILE`` or the environment variable ``GLUE_REPLAY_CONFIG``; the
variables below override single keys (the Lambda is configured with them alone). Every key is
optional here: a command asks for the ones it needs (:meth:`DeploymentConfig.require`), so a
``--target local`` run needs no configuration at all. Unknown keys are ignored, so a newer
Terraform output keeps working with an older CLI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from glue_replay.errors import GlueReplayError

CONFIG_FILE_ENV = "GLUE_REPLAY_CONFIG"
#: Environment variables that override one key each.
ENV_OVERRIDES = {
    "workflow_name": "GLUE_REPLAY_WORKFLOW",
    "bau_workflow_name": "GLUE_REPLAY_BAU_WORKFLOW",
    "ingest_job": "GLUE_REPLAY_INGEST_JOB",
    "normalize_job": "GLUE_REPLAY_NORMALIZE_JOB",
    "uploads_uri": "GLUE_REPLAY_UPLOADS_URI",
    "warehouse": "GLUE_REPLAY_WAREHOUSE",
    "uploads_kms_key": "GLUE_REPLAY_UPLOADS_KMS_KEY",
}

ConfigKey = Literal[
    "workflow_name", "ingest_job", "normalize_job", "uploads_uri", "warehouse", "region"
]


class DeploymentConfigError(GlueReplayError):
    """The deployment configuration is missing, unreadable, or lacks a key a command needs."""


@dataclass(frozen=True)
class DeploymentConfig:
    """One deployment of the pipeline on AWS. ``None`` means "not configured".

    ``bau_workflow_name`` (optional): the scheduled BAU workflow, whose runs hold the jobs too;
    the busy check looks at it as well. ``uploads_kms_key`` (optional): uploaded id files are
    encrypted with SSE-S3 (AES256) unless a KMS key id or ARN is given here, then with SSE-KMS
    under that key.
    """

    workflow_name: str | None = None
    bau_workflow_name: str | None = None
    ingest_job: str | None = None
    normalize_job: str | None = None
    uploads_uri: str | None = None
    warehouse: str | None = None
    region: str | None = None
    uploads_kms_key: str | None = None
    #: Where the values came from, for error messages.
    origin: str = "no configuration"

    def require(self, key: ConfigKey) -> str:
        """The value of ``key``, or a :class:`DeploymentConfigError` saying how to set it."""
        value: str | None = getattr(self, key)
        if value:
            return value
        env = ENV_OVERRIDES.get(key)
        how = f"set {key!r} in --config FILE / ${CONFIG_FILE_ENV}" + (f" or ${env}" if env else "")
        raise DeploymentConfigError(f"{key} is not configured ({self.origin}); {how}")

    @property
    def uploads_location(self) -> tuple[str, str]:
        """``(bucket, key prefix)`` of ``uploads_uri`` (the prefix without slashes at its ends)."""
        uri = self.require("uploads_uri")
        if not uri.startswith("s3://") or not uri[5:].strip("/"):
            raise DeploymentConfigError(
                f"uploads_uri {uri!r} is not an S3 URI; accepted: s3://bucket/prefix"
            )
        bucket, _, prefix = uri[5:].partition("/")
        return bucket, prefix.strip("/")


_KEYS = tuple(f.name for f in fields(DeploymentConfig) if f.name != "origin")


def load_config(
    path: str | None = None, environ: Mapping[str, str] | None = None
) -> DeploymentConfig:
    """The configuration from ``path`` (else ``$GLUE_REPLAY_CONFIG``), then the env overrides."""
    env = os.environ if environ is None else environ
    location = path or env.get(CONFIG_FILE_ENV) or None
    values: dict[str, str | None] = dict.fromkeys(_KEYS)
    origins: list[str] = []
    if location:
        values.update(_read_file(location))
        origins.append(location)
    for key, variable in ENV_OVERRIDES.items():
        if env.get(variable):
            values[key] = env[variable]
            origins.append(f"${variable}")
    return DeploymentConfig(
        workflow_name=values["workflow_name"],
        bau_workflow_name=values["bau_workflow_name"],
        ingest_job=values["ingest_job"],
        normalize_job=values["normalize_job"],
        uploads_uri=values["uploads_uri"],
        warehouse=values["warehouse"],
        region=values["region"],
        uploads_kms_key=values["uploads_kms_key"],
        origin=", ".join(origins) or "no --config, no $GLUE_REPLAY_* variables",
    )


def _read_file(location: str) -> dict[str, str | None]:
    try:
        document = json.loads(Path(location).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeploymentConfigError(
            f"cannot read the configuration {location} ({exc.strerror})"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeploymentConfigError(
            f"the configuration {location} is not JSON ({exc}); "
            "accepted: the object Terraform outputs as cli_config"
        ) from None
    if not isinstance(document, dict):
        raise DeploymentConfigError(
            f"the configuration {location} is not a JSON object; "
            "accepted: the object Terraform outputs as cli_config"
        )
    values: dict[str, str | None] = {}
    for key in _KEYS:
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            raise DeploymentConfigError(
                f"{key} in {location} is {type(value).__name__}; accepted: a string or null"
            )
        values[key] = value or None
    return values
