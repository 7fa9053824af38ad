"""The replay trigger as an AWS Lambda function: a JSON event starts the cascade on Glue.

The event has the CLI's fields (all optional but ``mode``)::

    {"mode": "targeted", "ids": ["1", "2", "3"], "stage": "all", "dry_run": false,
     "request_id": "fix-1842", "requested_by": "jane"}

``mode`` is ``full``, ``since`` or ``targeted``; ``date``/``until`` are ``YYYY-MM-DD``; ``ids`` is
a list or a comma-separated string; ``ids_file`` an ``s3://`` CSV (the ``id`` column, or its only
column); ``stage`` is ``ingest``, ``normalize`` or ``all`` (default). A full backfill needs
``"confirm": true``. The request is validated by the jobs' own parser, exactly as the CLI does.

Responses (``body`` is a JSON string)::

    202 {"request_id": ..., "workflow_name": ..., "workflow_run_id": ...}   (or "job_run_ids")
    400 {"error": "invalid request: date: '2026-13-01' is not a calendar date; accepted: ..."}
    409 {"error": "job ... is busy with run jr_... (RUNNING since ...); nothing started",
         "busy": {"kind": "job", "name": ..., "run_id": ..., "state": ..., "started_on": ...}}
    500 {"error": "configuration: ..."}       502 {"error": "AWS StartWorkflowRun: ..."}

The deployment comes from the environment (``GLUE_REPLAY_WORKFLOW``, ``GLUE_REPLAY_INGEST_JOB``,
``GLUE_REPLAY_NORMALIZE_JOB``, ``GLUE_REPLAY_UPLOADS_URI``; see :mod:`~glue_replay.trigger.config`).
Nothing here imports Spark. Responses and logs carry ids and run ids, never credentials.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, cast

from glue_replay.errors import InvalidRequestError
from glue_replay.request import ReplayMode
from glue_replay.trigger import start as glue_start
from glue_replay.trigger.config import DeploymentConfig, DeploymentConfigError, load_config
from glue_replay.trigger.start import GlueTarget, JobBusyError, Stage, describe_client_error

log = logging.getLogger(__name__)

#: The event's fields; anything else is refused (a typo must not silently change a replay).
EVENT_FIELDS = (
    "mode",
    "date",
    "until",
    "ids",
    "ids_file",
    "stage",
    "dry_run",
    "request_id",
    "requested_by",
    "confirm",
)
REPLAY_MODES = tuple(m.value for m in ReplayMode if m.is_replay)
_STRING_FIELDS = ("mode", "date", "until", "ids_file", "request_id", "requested_by")
_JOB_ARGUMENT = re.compile(r"--(\w+)")


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Validate ``event``, check that the jobs are free, start the replay; see the module doc."""
    try:
        config = load_config()
    except DeploymentConfigError as exc:
        log.error("configuration: %s", exc)
        return _response(500, {"error": f"configuration: {exc}"})
    try:
        return _start(event, context, config)
    except InvalidRequestError as exc:
        message = f"invalid request: {event_message(exc)}"
        log.warning("%s", message)
        return _response(400, {"error": message})
    except DeploymentConfigError as exc:
        log.error("configuration: %s", exc)
        return _response(500, {"error": f"configuration: {exc}"})
    except JobBusyError as exc:
        return _busy(exc.busy)


def event_message(exc: InvalidRequestError) -> str:
    """The jobs' message with the event's field names (``--replay_mode`` -> ``mode``, ...)."""
    return _JOB_ARGUMENT.sub(
        lambda m: "mode" if m.group(1) == "replay_mode" else m.group(1), str(exc)
    )


def _start(event: Any, context: Any, config: DeploymentConfig) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    fields = _event_fields(event)
    stage = _stage(fields.get("stage"))
    mode = fields.get("mode")
    if mode is None:
        raise InvalidRequestError(
            "mode", "is required (a replay is never a default)", "full, since or targeted"
        )
    if str(mode).lower() == ReplayMode.BAU.value:
        raise InvalidRequestError(
            "mode", "'bau' is the scheduled run, not a replay", "full, since or targeted"
        )
    if str(mode).lower() not in REPLAY_MODES:
        # The CLI's --mode choices; the jobs' parser would also offer BAU, which is no replay.
        raise InvalidRequestError(
            "mode", f"{mode!r} is not a replay mode", "full, since or targeted"
        )
    target = GlueTarget.of(config, stage)
    clients = _Clients(config.region)
    try:
        args = glue_start.validate(
            {
                "replay_mode": cast(str, mode),
                "date": fields.get("date"),
                "until": fields.get("until"),
                "ids": _ids(fields.get("ids")),
                "ids_file": fields.get("ids_file"),
                "request_id": fields.get("request_id") or glue_start.new_request_id(str(mode)),
                "dry_run": _dry_run(fields.get("dry_run")),
                "requested_by": fields.get("requested_by") or _function_name(context),
            },
            read_s3_object=clients.read_s3_object,
            environ={},
        )
        request = args.request
        if request.mode is ReplayMode.FULL and fields.get("confirm") is not True:
            raise InvalidRequestError(
                "confirm",
                "a full backfill must be confirmed",
                '"confirm": true in the event',
            )
        busy = glue_start.find_busy_runs(clients.glue, target)
        if busy:
            return _busy(busy[0])
        started = glue_start.start_replay(clients.glue, clients.s3, config, args, stage)
    except (ClientError, BotoCoreError) as exc:
        message = f"AWS {describe_client_error(exc)}"
        log.error("%s", message)
        return _response(502, {"error": message})
    log.info(
        "started request %s (%s, stage %s, requested by %s): %s",
        request.request_id,
        request.describe(),
        stage,
        args.requested_by,
        "; ".join(started.describe()),
    )
    return _response(202, started.as_response())


def _event_fields(event: Any) -> dict[str, Any]:
    if isinstance(event, str | bytes):
        try:
            event = json.loads(event)
        except ValueError:
            raise InvalidRequestError("event", "is not JSON", "a JSON object") from None
    if not isinstance(event, Mapping):
        raise InvalidRequestError(
            "event", f"is a {type(event).__name__}", "a JSON object with the replay's fields"
        )
    unknown = sorted(str(k) for k in event if k not in EVENT_FIELDS)
    if unknown:
        raise InvalidRequestError(
            unknown[0], "is not a field of a replay request", ", ".join(EVENT_FIELDS)
        )
    fields = {k: v for k, v in event.items() if v is not None}
    for name in _STRING_FIELDS:
        if name in fields and not isinstance(fields[name], str):
            raise InvalidRequestError(
                name, f"is a {type(fields[name]).__name__}, not a string", "a JSON string"
            )
    return fields


def _stage(value: Any) -> Stage:
    if value is None:
        return "all"
    if value not in glue_start.STAGES:
        raise InvalidRequestError(
            "stage", f"{value!r} is not a stage", ", ".join(glue_start.STAGES) + " (default all)"
        )
    return cast(Stage, value)


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
        return value  # "true"/"false"; the jobs' parser refuses anything else
    raise InvalidRequestError("dry_run", f"{value!r} is not a boolean", "true or false")


def _function_name(context: Any) -> str:
    name = getattr(context, "function_name", None)
    return f"lambda:{name}" if isinstance(name, str) and name else "lambda"


def _busy(busy: glue_start.BusyRun) -> dict[str, Any]:
    message = f"{busy.describe()}; nothing started"
    log.warning("%s", message)
    return _response(409, {"error": message, "busy": busy.as_dict()})


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, sort_keys=True),
    }


class _Clients:
    def __init__(self, region: str | None) -> None:
        import boto3

        session = boto3.session.Session(region_name=region)
        self.glue = session.client("glue")
        self.s3 = session.client("s3")

    def read_s3_object(self, bucket: str, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            raise InvalidRequestError(
                "--ids_file",
                f"cannot read s3://{bucket}/{key} ({describe_client_error(exc)})",
                "an s3:// object the trigger may read",
            ) from None
