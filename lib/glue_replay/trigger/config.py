"""Where a deployment is: its pipelines (jobs, workflows, id rule), uploads prefix and warehouse.

Terraform outputs exactly this as JSON (``cli_config``); the snake_case keys are the field names::

    {"region": "eu-west-1",
     "warehouse": "s3://acme-lake/glue-replay",
     "uploads_uri": "s3://acme-replay-uploads/ids",
     "uploads_kms_key": null,
     "pipelines": {
       "orders": {"ingest_job": "glue-replay-orders-ingest",
                  "normalize_job": "glue-replay-orders-normalize",
                  "workflow_name": "glue-replay-orders-replay",
                  "bau_workflow_name": "glue-replay-orders-bau",
                  "id_pattern": "ORD-[0-9]{1,12}",
                  "id_help": "ORD- and 1-12 digits"}},
     "publish_job": "glue-replay-publish"}

The file comes from ``--config FILE`` or the environment variable ``GLUE_REPLAY_CONFIG``; the
variables of :data:`ENV_VARIABLES` override one key each (the Lambda is configured with them
alone: ``GLUE_REPLAY_PIPELINES`` holds the ``pipelines`` object as JSON). Every top-level key is
optional here: a command asks for what it needs (:meth:`DeploymentConfig.require`,
:meth:`DeploymentConfig.pipeline`), so ``--target local`` needs no configuration at all. A
pipeline entry has all six keys (``bau_workflow_name`` may be null). ``publish_job`` is the
publisher's Glue job, one for every pipeline; absent or null means no publisher is deployed.
Unknown keys are ignored, so a newer Terraform output keeps working with an older CLI.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from glue_replay.aws import parse_s3_uri
from glue_replay.errors import GlueReplayError
from glue_replay.registry import choose_entity
from glue_replay.request import IdRule

CONFIG_FILE_ENV = "GLUE_REPLAY_CONFIG"
#: The top-level keys, and the environment variable that sets (or overrides) each.
ENV_VARIABLES = {
    "region": "GLUE_REPLAY_REGION",
    "warehouse": "GLUE_REPLAY_WAREHOUSE",
    "uploads_uri": "GLUE_REPLAY_UPLOADS_URI",
    "uploads_kms_key": "GLUE_REPLAY_UPLOADS_KMS_KEY",
    "pipelines": "GLUE_REPLAY_PIPELINES",
    "publish_job": "GLUE_REPLAY_PUBLISH_JOB",
}
CONFIG_KEYS = tuple(ENV_VARIABLES)
#: The keys of one pipeline entry; all must be present, only ``bau_workflow_name`` may be null.
PIPELINE_KEYS = (
    "ingest_job",
    "normalize_job",
    "workflow_name",
    "bau_workflow_name",
    "id_pattern",
    "id_help",
)
_NULLABLE_PIPELINE_KEYS = frozenset({"bau_workflow_name"})
_ACCEPTED_CONFIG = "the object Terraform outputs as cli_config"
_ACCEPTED_PIPELINES = "an object of entity name -> {" + ", ".join(PIPELINE_KEYS) + "}"

ConfigKey = Literal["warehouse", "uploads_uri", "region"]


class DeploymentConfigError(GlueReplayError):
    """The deployment configuration is missing, unreadable, or lacks a key a command needs."""


@dataclass(frozen=True)
class PipelineConfig:
    """One deployed pipeline: its two jobs, its replay and BAU workflows, its id rule.

    ``bau_workflow_name`` is ``None`` when the pipeline has no scheduled BAU workflow.
    """

    entity: str
    ingest_job: str
    normalize_job: str
    workflow_name: str
    bau_workflow_name: str | None
    id_pattern: str
    id_help: str

    @property
    def ids(self) -> IdRule:
        """The entity's id rule, as deployed: requests are validated with it."""
        return IdRule(self.id_pattern, self.id_help)

    @property
    def workflows(self) -> tuple[str, ...]:
        """The replay workflow, then the BAU workflow if there is one."""
        return tuple(w for w in (self.workflow_name, self.bau_workflow_name) if w)


@dataclass(frozen=True)
class DeploymentConfig:
    """One deployment of glue-replay on AWS. ``None`` (or no pipelines) means "not configured".

    ``uploads_kms_key`` (optional): uploaded id files are encrypted with SSE-S3 (AES256) unless a
    KMS key id or ARN is given here, then with SSE-KMS under that key.
    ``publish_job`` (optional): the publisher's Glue job; ``None`` when none is deployed.
    """

    region: str | None = None
    warehouse: str | None = None
    uploads_uri: str | None = None
    uploads_kms_key: str | None = None
    pipelines: Mapping[str, PipelineConfig] = field(default_factory=lambda: MappingProxyType({}))
    publish_job: str | None = None
    #: Where the values came from, for error messages.
    origin: str = "no configuration"

    def require(self, key: ConfigKey) -> str:
        """The value of ``key``, or a :class:`DeploymentConfigError` saying how to set it."""
        value: str | None = getattr(self, key)
        if value:
            return value
        raise DeploymentConfigError(f"{key} is not configured ({self.origin}); {_how_to_set(key)}")

    def pipeline(self, entity: str | None) -> PipelineConfig:
        """The pipeline of ``entity``, or the only one when ``entity`` is ``None``.

        Raises :class:`DeploymentConfigError` when no pipeline is configured, and
        :class:`~glue_replay.errors.InvalidRequestError` (field ``entity``) when ``entity`` is
        unknown, or missing while several pipelines are configured.
        """
        if not self.pipelines:
            raise DeploymentConfigError(
                f"pipelines is not configured ({self.origin}); {_how_to_set('pipelines')}"
            )
        name = choose_entity(entity, sorted(self.pipelines), f"the deployment ({self.origin})")
        return self.pipelines[name]

    @property
    def uploads_location(self) -> tuple[str, str]:
        """``(bucket, key prefix)`` of ``uploads_uri`` (the prefix without slashes at its ends)."""
        uri = self.require("uploads_uri")
        parsed = parse_s3_uri(uri.rstrip("/")) if uri.lower().startswith("s3://") else None
        if parsed is None:
            raise DeploymentConfigError(
                f"uploads_uri {uri!r} is not an S3 URI ({self.origin}); accepted: s3://bucket/prefix"
            )
        bucket, prefix = parsed
        return bucket, prefix.strip("/")


def load_config(
    path: str | None = None, environ: Mapping[str, str] | None = None
) -> DeploymentConfig:
    """The configuration from ``path`` (else ``$GLUE_REPLAY_CONFIG``), then the variables of
    :data:`ENV_VARIABLES`, each overriding its key."""
    env = os.environ if environ is None else environ
    location = path or env.get(CONFIG_FILE_ENV) or None
    values: dict[str, Any] = {}
    origins: list[str] = []
    if location:
        values.update(_read_file(location))
        origins.append(location)
    for key, variable in ENV_VARIABLES.items():
        raw = env.get(variable)
        if not raw:
            continue
        origins.append(f"${variable}")
        if key == "pipelines":
            values[key] = _parse_pipelines(_json(raw, f"${variable}"), f"${variable}")
        else:
            values[key] = raw
    return DeploymentConfig(
        region=values.get("region"),
        warehouse=values.get("warehouse"),
        uploads_uri=values.get("uploads_uri"),
        uploads_kms_key=values.get("uploads_kms_key"),
        pipelines=MappingProxyType(values.get("pipelines", {})),
        publish_job=values.get("publish_job"),
        origin=", ".join(origins)
        or f"no --config, no ${CONFIG_FILE_ENV}, no $GLUE_REPLAY_* variables",
    )


def _how_to_set(key: str) -> str:
    return f"set {key!r} in --config FILE / ${CONFIG_FILE_ENV} or ${ENV_VARIABLES[key]}"


def _read_file(location: str) -> dict[str, Any]:
    try:
        text = Path(location).read_text(encoding="utf-8")
    except OSError as exc:
        raise DeploymentConfigError(
            f"cannot read the configuration {location} ({exc.strerror})"
        ) from None
    except UnicodeDecodeError:
        raise DeploymentConfigError(
            f"the configuration {location} is not UTF-8 text; accepted: {_ACCEPTED_CONFIG}"
        ) from None
    document = _json(text, f"the configuration {location}")
    if not isinstance(document, dict):
        raise DeploymentConfigError(
            f"the configuration {location} is a JSON {json_type(document)}, not an object; "
            f"accepted: {_ACCEPTED_CONFIG}"
        )
    values: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value = document.get(key)
        if key == "pipelines":
            if value is not None:
                values[key] = _parse_pipelines(value, location)
        elif value is not None and not isinstance(value, str):
            raise DeploymentConfigError(
                f"{key} in {location} is a JSON {json_type(value)}; accepted: a string or null"
            )
        elif value:
            values[key] = value
    return values


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeploymentConfigError(
            f"{what} is not JSON ({exc}); accepted: {_ACCEPTED_CONFIG}"
        ) from None


def _parse_pipelines(value: Any, origin: str) -> dict[str, PipelineConfig]:
    if not isinstance(value, dict):
        raise DeploymentConfigError(
            f"pipelines in {origin} is a JSON {json_type(value)}; accepted: {_ACCEPTED_PIPELINES}"
        )
    return {
        entity: _parse_pipeline(entity, entry, origin) for entity, entry in sorted(value.items())
    }


def _parse_pipeline(entity: str, entry: Any, origin: str) -> PipelineConfig:
    where = f"pipelines.{entity}"
    if not entity.strip():
        raise DeploymentConfigError(
            f"pipelines in {origin} has an empty entity name; accepted: {_ACCEPTED_PIPELINES}"
        )
    if not isinstance(entry, dict):
        raise DeploymentConfigError(
            f"{where} in {origin} is a JSON {json_type(entry)}; "
            f"accepted: an object with {', '.join(PIPELINE_KEYS)}"
        )
    values: dict[str, str | None] = {}
    for key in PIPELINE_KEYS:
        nullable = key in _NULLABLE_PIPELINE_KEYS
        accepted = "a non-empty string" + (" or null" if nullable else "")
        if key not in entry:
            raise DeploymentConfigError(
                f"{where}.{key} is missing in {origin}; accepted: {accepted}"
            )
        value = entry[key]
        if value is None and nullable:
            values[key] = None
        elif not isinstance(value, str) or not value.strip():
            shown = f"a JSON {json_type(value)}" if not isinstance(value, str) else "empty"
            raise DeploymentConfigError(
                f"{where}.{key} in {origin} is {shown}; accepted: {accepted}"
            )
        else:
            values[key] = value
    pattern = str(values["id_pattern"])
    try:
        re.compile(pattern)
    except re.error as exc:
        raise DeploymentConfigError(
            f"{where}.id_pattern in {origin} is not a regular expression ({exc}): {pattern!r}; "
            "accepted: a Python regex that a whole id must match"
        ) from None
    return PipelineConfig(
        entity=entity,
        ingest_job=str(values["ingest_job"]),
        normalize_job=str(values["normalize_job"]),
        workflow_name=str(values["workflow_name"]),
        bau_workflow_name=values["bau_workflow_name"],
        id_pattern=pattern,
        id_help=str(values["id_help"]),
    )


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages: ``null``, ``number``, ``array``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
