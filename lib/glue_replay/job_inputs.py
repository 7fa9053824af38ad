"""What a job asks AWS for before it validates its request: its Glue workflow run's properties,
and the source API's token. No Spark here; boto3 is imported only when needed.

Why workflow run properties: a Glue trigger's actions carry fixed arguments, so the arguments of
one replay request cannot travel through the workflow's triggers. The replay trigger starts the
workflow with ``RunProperties`` instead, and every job of that run (ingest, then normalize)
reads them here and treats them as its replay arguments.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from glue_replay.errors import GlueReplayError
from glue_replay.request import REPLAY_ARGUMENTS, resolve_options

log = logging.getLogger(__name__)


def with_workflow_run_properties(argv: Sequence[str], glue_client: Any = None) -> list[str]:
    """``argv`` plus the replay arguments of the workflow run that started this job, if any.

    Glue passes ``--WORKFLOW_NAME`` and ``--WORKFLOW_RUN_ID`` to jobs a workflow starts. The run
    properties are appended as ``--name value`` so they win over the job's default arguments.
    Only replay arguments are taken: paths and secrets stay the deployment's.

        ["job.py", "--WORKFLOW_NAME", "wf", "--WORKFLOW_RUN_ID", "wr_1"] + {"replay_mode": "full"}
        -> ["job.py", "--WORKFLOW_NAME", "wf", "--WORKFLOW_RUN_ID", "wr_1", "--replay_mode", "full"]
    """
    found = resolve_options(argv[1:], ("WORKFLOW_NAME", "WORKFLOW_RUN_ID"))
    if "WORKFLOW_NAME" not in found or "WORKFLOW_RUN_ID" not in found:
        return list(argv)
    name, run_id = found["WORKFLOW_NAME"], found["WORKFLOW_RUN_ID"]
    client = glue_client if glue_client is not None else _client("glue")
    try:
        properties = client.get_workflow_run_properties(Name=name, RunId=run_id)["RunProperties"]
    except Exception as exc:
        raise GlueReplayError(
            f"could not read the run properties of workflow {name} run {run_id}: {_error_code(exc)}"
        ) from None
    extra: list[str] = []
    for key, value in sorted(properties.items()):
        if key in REPLAY_ARGUMENTS:
            extra += [f"--{key}", str(value)]
        else:
            log.warning("workflow run property %r is not a replay argument; ignored", key)
    return [*argv, *extra]


def read_source_token(secret: str, secrets_client: Any = None) -> str:
    """The token in Secrets Manager secret ``secret`` (a plain string, or JSON with ``token``)."""
    client = secrets_client if secrets_client is not None else _client("secretsmanager")
    try:
        value = client.get_secret_value(SecretId=secret)["SecretString"]
    except Exception as exc:
        raise GlueReplayError(f"could not read secret {secret}: {_error_code(exc)}") from None
    try:
        parsed = json.loads(value)
    except ValueError:
        return str(value).strip()
    if isinstance(parsed, dict) and isinstance(parsed.get("token"), str):
        return str(parsed["token"])
    raise GlueReplayError(f"secret {secret} is neither a plain token nor JSON with a 'token' key")


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service)


def _error_code(exc: Exception) -> str:
    """The AWS error code, never the message (it could echo a value)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__
