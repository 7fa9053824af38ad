"""The replay trigger as an AWS Lambda function: a JSON event starts one pipeline's replay on Glue.

The event has the CLI's fields (all optional but ``mode``)::

    {"entity": "orders", "mode": "targeted", "ids": ["7", "3"], "stage": "all",
     "dry_run": false, "request_id": "fix-1842", "requested_by": "jane"}

``entity`` names the pipeline, and may be left out when the deployment has exactly one; ``mode``
is ``full``, ``since`` or ``targeted``; ``date``/``until`` are ``YYYY-MM-DD``; ``ids`` is a list
or a comma-separated string; ``ids_file`` an ``s3://`` CSV whose first line names the id column
(``id``, or ``id_column``), or one id a line; ``stage`` is ``ingest``, ``normalize`` or ``all``
(default). A full backfill needs ``"confirm": true``. The request is validated where every
request is (:func:`glue_replay.request.build_job_arguments`), with the entity's id rule, and
its errors name the event's fields (``mode``, ``ids_file``).

Responses (``body`` is a JSON string)::

    202 {"request_id": ..., "workflow_name": ..., "workflow_run_id": ...,   (or "job_run_ids")
         "confirmed": true, "confirmation": "glue-replay-orders-ingest run jr_... RUNNING"}
    400 {"error": "invalid request: date: '2026-13-01' is not a calendar date; accepted: ..."}
    409 {"error": "job ... is busy with run jr_... (RUNNING since ...); nothing started",
         "busy": {"kind": "job", "name": ..., "run_id": ..., "state": ..., "started_on": ...}}
        (also when a BAU run began between the busy check and the start: the workflow run was
        started, Glue refused its ingest run for concurrency, nothing ran; see
        :func:`~glue_replay.trigger.start.confirm_started`. "confirmed": false in a 202 means
        that no run of ingest showed up within the wait: follow the request with its status.)
    500 {"error": "configuration: ..."}       502 {"error": "AWS StartWorkflowRun: ..."}

The deployment comes from the environment: ``GLUE_REPLAY_PIPELINES`` (the pipelines as JSON),
``GLUE_REPLAY_UPLOADS_URI``, ``GLUE_REPLAY_WAREHOUSE``, ``GLUE_REPLAY_UPLOADS_KMS_KEY`` and
optionally ``GLUE_REPLAY_REGION`` (see :mod:`~glue_replay.trigger.config`). Nothing here imports
Spark. Responses and logs carry ids and run ids, never credentials.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from glue_replay.aws import describe_aws_error, is_aws_error
from glue_replay.errors import InvalidRequestError
from glue_replay.request import ReplayMode
from glue_replay.trigger import start as glue_start
from glue_replay.trigger.config import (
    DeploymentConfig,
    DeploymentConfigError,
    json_type,
    load_config,
)
from glue_replay.trigger.start import AwsClients, GlueTarget, JobBusyError, Stage

log = logging.getLogger(__name__)

#: The event's fields; anything else is refused (a typo must not silently change a replay).
EVENT_FIELDS = (
    "entity",
    "mode",
    "date",
    "until",
    "ids",
    "ids_file",
    "id_column",
    "stage",
    "dry_run",
    "request_id",
    "requested_by",
    "confirm",
)
#: Event field -> canonical field, where they differ.
_CANONICAL = {"mode": "replay_mode"}
_STRING_FIELDS = (
    "entity",
    "replay_mode",
    "date",
    "until",
    "ids_file",
    "id_column",
    "stage",
    "request_id",
    "requested_by",
)


def event_spelling(field: str) -> str:
    """How the event spells a canonical field: ``replay_mode`` -> ``mode``, others as they are."""
    return "mode" if field == "replay_mode" else field


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Validate ``event``, check that the jobs are free, start the replay; see the module doc."""
    try:
        config = load_config()
        return _start(event, context, config)
    except InvalidRequestError as exc:
        message = f"invalid request: {exc.render(event_spelling)}"
        log.warning("%s", message)
        return _response(400, {"error": message})
    except DeploymentConfigError as exc:
        log.error("configuration: %s", exc)
        return _response(500, {"error": f"configuration: {exc}"})
    except JobBusyError as exc:
        return _busy(exc.busy, exc.outcome())


def _start(event: Any, context: Any, config: DeploymentConfig) -> dict[str, Any]:
    fields = _event_fields(event)
    stage = _stage(fields.pop("stage", None))
    confirmed = fields.pop("confirm", None) is True
    pipeline = config.pipeline(fields.pop("entity", None))
    target = GlueTarget.of(pipeline, stage)
    mode = fields.get("replay_mode")
    fields["ids"] = _ids(fields.get("ids"))
    fields["dry_run"] = _dry_run(fields.get("dry_run"))
    fields["request_id"] = fields.get("request_id") or glue_start.new_request_id(str(mode))
    fields["requested_by"] = fields.get("requested_by") or _function_name(context)
    clients = AwsClients(config.region)
    try:
        args = glue_start.validate(
            fields, ids=pipeline.ids, read_s3_object=clients.read_s3_object, environ={}
        )
        request = args.request
        if request.mode is ReplayMode.FULL and not confirmed:
            raise InvalidRequestError(
                "confirm", "a full backfill must be confirmed", '"confirm": true in the event'
            )
        busy = glue_start.find_busy_runs(clients.glue, target)
        if busy:
            return _busy(busy[0])
        started = glue_start.start_replay(clients.glue, clients.s3, config, target, args)
    except Exception as exc:
        if not is_aws_error(exc):
            raise
        message = f"AWS {describe_aws_error(exc)}"
        log.error("%s", message)
        return _response(502, {"error": message})
    log.info(
        "started request %s of %s (%s, stage %s, requested by %s): %s",
        request.request_id,
        target.entity,
        request.describe(),
        stage,
        args.requested_by,
        "; ".join(started.describe()),
    )
    return _response(202, started.as_response())


def _event_fields(event: Any) -> dict[str, Any]:
    """The event's set fields under their canonical names, the string ones checked as strings."""
    if isinstance(event, str | bytes):
        try:
            event = json.loads(event)
        except ValueError:
            raise InvalidRequestError("event", "is not JSON", "a JSON object") from None
    if not isinstance(event, Mapping):
        raise InvalidRequestError(
            "event", f"is a JSON {json_type(event)}", "a JSON object with the replay's fields"
        )
    unknown = sorted(str(k) for k in event if k not in EVENT_FIELDS)
    if unknown:
        raise InvalidRequestError(
            "event", f"{unknown[0]!r} is not a field of a replay request", ", ".join(EVENT_FIELDS)
        )
    fields = {_CANONICAL.get(str(k), str(k)): v for k, v in event.items() if v is not None}
    for name in _STRING_FIELDS:
        if name in fields and not isinstance(fields[name], str):
            raise InvalidRequestError(
                name, f"is a JSON {json_type(fields[name])}, not a string", "a JSON string"
            )
    return fields


def _stage(value: str | None) -> Stage:
    if value is None:
        return "all"
    for stage in glue_start.STAGES:
        if value == stage:
            return stage
    raise InvalidRequestError(
        "stage", f"{value!r} is not a stage", ", ".join(glue_start.STAGES) + " (default all)"
    )


def _ids(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)) for v in value
    ):
        return ",".join(str(v) for v in value)
    raise InvalidRequestError(
        "ids", "is neither a list of ids nor a string", '["1", "2"] or "1,2" (strings or integers)'
    )


def _dry_run(value: Any) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return "true"
    if isinstance(value, str):
        return value  # "true"/"false"; the request's validation refuses anything else
    raise InvalidRequestError("dry_run", f"{value!r} is not a boolean", "true or false")


def _function_name(context: Any) -> str:
    name = getattr(context, "function_name", None)
    return f"lambda:{name}" if isinstance(name, str) and name else "lambda"


def _busy(busy: glue_start.BusyRun, outcome: str = "nothing started") -> dict[str, Any]:
    message = f"{busy.describe()}; {outcome}"
    log.warning("%s", message)
    return _response(409, {"error": message, "busy": busy.as_dict()})


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, sort_keys=True),
    }
