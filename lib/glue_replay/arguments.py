"""A job's ``sys.argv`` (and its Glue workflow run's properties) as canonical request fields.

Glue passes job arguments as ``--name value`` mixed with its own (``--JOB_NAME``, ``--JOB_RUN_ID``,
``--TempDir``, ``--job-bookmark-option``, ...). :func:`fields_from_argv` reads them with the
semantics of ``awsglue.utils.getResolvedOptions`` — unknown arguments are ignored, the last
occurrence wins — with two differences that keep a replay from silently becoming something else:

* an argument that is not ours but is a near miss of one of ours (``--replay-mode``,
  ``--Replay_Mode``, ``--replay``, ``--dryrun``, ``--repaly_mode``) is refused with a "did you
  mean", where ``getResolvedOptions`` would ignore it (and run BAU) or resolve the abbreviation;
* Glue's own arguments are never refused, with or without a value.

No Spark and no boto3 at import: a bad request is refused in a fraction of a second.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from glue_replay.aws import aws_error_code
from glue_replay.errors import GlueReplayError, InvalidRequestError
from glue_replay.request import (
    DEFAULT_IDS,
    DEFAULT_WAREHOUSE,
    GLUE_CONTEXT_FIELDS,
    REPLAY_FIELDS,
    SETTING_FIELDS,
    IdRule,
    JobArguments,
    ReadS3Object,
    build_job_arguments,
    parse_bool,
    parse_warehouse,
)

log = logging.getLogger(__name__)

#: Arguments AWS Glue itself passes or documents ("special parameters"): never ours, never a
#: near miss of ours, whatever their case or value.
GLUE_OWN_ARGUMENTS = frozenset(
    {
        "JOB_NAME",
        "JOB_ID",
        "JOB_RUN_ID",
        "WORKFLOW_NAME",
        "WORKFLOW_RUN_ID",
        "SECURITY_CONFIGURATION",
        "TempDir",
        "mode",
        "job-language",
        "job-bookmark-option",
        "job-bookmark-from",
        "job-bookmark-to",
        "enable-metrics",
        "enable-observability-metrics",
        "enable-continuous-cloudwatch-log",
        "enable-continuous-log-filter",
        "continuous-log-logGroup",
        "continuous-log-logStreamPrefix",
        "continuous-log-conversionPattern",
        "enable-spark-ui",
        "spark-event-logs-path",
        "enable-glue-datacatalog",
        "enable-job-insights",
        "enable-auto-scaling",
        "enable-s3-parquet-optimized-committer",
        "enable-rename-algorithm-v2",
        "enable-lakeformation-fine-grained-access",
        "enable-data-lineage",
        "datalake-formats",
        "conf",
        "scriptLocation",
        "extra-py-files",
        "extra-jars",
        "extra-files",
        "user-jars-first",
        "additional-python-modules",
        "python-modules-installer-option",
        "disable-proxy-v2",
        "customer-driver-env-vars",
        "customer-executor-env-vars",
        "encryption-type",
        "auto-scale-within-microbatch",
        "redshift-tmp-dir",
        "debug",
        "job-type",
        "glue-version",
        "pip-install",
    }
)
_GLUE_OWN_FOLDED = frozenset(name.lower().replace("-", "_") for name in GLUE_OWN_ARGUMENTS)
#: How close (difflib's ratio) an unknown name must be to one of ours to be refused as a typo.
NEAR_MISS_CUTOFF = 0.75
#: Other words for our arguments, which a user may reach for (``--since 2026-11-01`` ignored
#: would turn a since replay into a refusal at best, or a full one's date into nothing).
SYNONYMS = {
    "since": "date",
    "from": "date",
    "start": "date",
    "start_date": "date",
    "since_date": "date",
    "to": "until",
    "end": "until",
    "end_date": "until",
    "until_date": "until",
    "id": "ids",
    "id_list": "ids",
    "ids_path": "ids_file",
    "ids_csv": "ids_file",
    "dry": "dry_run",
    "replay": "replay_mode",
    "replay_type": "replay_mode",
}


#: A stage job's maintenance run, not a request: ``--maintenance true`` maintains the tables the
#: job writes (``glue_replay.tables.layout.maintain_stage``), VACUUM too with
#: ``--vacuum_retention_days N``. Started by its own schedule, through the job itself, so that
#: each table keeps one writer at a time.
MAINTENANCE_FIELDS = ("maintenance", "vacuum_retention_days")
#: The shortest VACUUM retention a maintenance run accepts (``layout.MIN_VACUUM_RETENTION``).
MIN_VACUUM_RETENTION_DAYS = 7
#: Replay fields that describe a request: a maintenance run refuses them.
_REQUEST_FIELDS = ("replay_mode", "date", "until", "ids", "ids_file", "id_column", "dry_run")


def job_fields(settings: Sequence[str] = ()) -> tuple[str, ...]:
    """Every field a job reads from argv: replay fields, deployment settings, pipeline settings,
    and the maintenance run's."""
    return tuple(dict.fromkeys((*REPLAY_FIELDS, *SETTING_FIELDS, *MAINTENANCE_FIELDS, *settings)))


@dataclass(frozen=True)
class MaintenanceArguments:
    """A maintenance run's arguments: where the tables are, and VACUUM's retention if asked."""

    warehouse: str
    vacuum_retention: timedelta | None = None


def parse_maintenance_arguments(
    argv: Sequence[str], *, settings: Sequence[str] = ()
) -> MaintenanceArguments | None:
    """A job's ``sys.argv`` -> the maintenance run it asks for, or ``None`` for a request.

    ``--maintenance true`` takes no request field (a replay mode, dates, ids, a dry run):
    maintenance and a replay are never mixed. ``--vacuum_retention_days`` is refused without
    it, and below :data:`MIN_VACUUM_RETENTION_DAYS`.

        ["job.py", "--maintenance", "true"] -> MaintenanceArguments("./warehouse", None)
        ["job.py", "--replay_mode", "full"] -> None
    """
    found = fields_from_argv(argv[1:], job_fields(settings))
    values = {k: v.strip() for k, v in found.items() if v is not None and v.strip()}
    retention = values.get("vacuum_retention_days")
    if not parse_bool("maintenance", values.get("maintenance", "false")):
        if retention is not None:
            raise InvalidRequestError(
                "vacuum_retention_days", "is only for a maintenance run", "--maintenance true"
            )
        return None
    for name in _REQUEST_FIELDS:
        if name in values:
            raise InvalidRequestError(
                name,
                "a maintenance run (--maintenance true) takes no request",
                "--maintenance true [--vacuum_retention_days N] and deployment settings",
            )
    vacuum = None
    if retention is not None:
        if not retention.isdigit() or int(retention) < MIN_VACUUM_RETENTION_DAYS:
            raise InvalidRequestError(
                "vacuum_retention_days",
                f"{retention!r} is not a number of days VACUUM may keep",
                f"a whole number of days, at least {MIN_VACUUM_RETENTION_DAYS}",
            )
        vacuum = timedelta(days=int(retention))
    return MaintenanceArguments(parse_warehouse(values.get("warehouse", DEFAULT_WAREHOUSE)), vacuum)


def near_miss(name: str, ours: Collection[str]) -> str | None:
    """The field of ``ours`` that argument ``name`` (not ours) looks like a typo of, if any.

    Wrong case or ``-`` for ``_`` (``--Replay-Mode``), underscores dropped (``--dryrun``), a
    prefix (``--replay``, which ``getResolvedOptions`` would resolve), a small typo
    (``--repaly_mode``). Glue's own arguments are never a near miss.

        near_miss("replay-mode", REPLAY_FIELDS) -> "replay_mode"
        near_miss("enable-metrics", REPLAY_FIELDS) -> None
    """
    if name in GLUE_OWN_ARGUMENTS:
        return None
    folded = name.lower().replace("-", "_")
    if folded in _GLUE_OWN_FOLDED:
        return None
    for field in ours:
        if folded == field or folded.replace("_", "") == field.replace("_", ""):
            return field
    synonym = SYNONYMS.get(folded)
    if synonym in ours:
        return synonym
    if len(folded) >= 2:
        for field in ours:
            if field.startswith(folded):
                return field
    close = difflib.get_close_matches(folded, list(ours), n=1, cutoff=NEAR_MISS_CUTOFF)
    return close[0] if close else None


def fields_from_argv(argv: Sequence[str], ours: Collection[str]) -> dict[str, str]:
    """``argv`` (without the script) -> ``{field: value}`` for ``ours`` and Glue's context.

    ``--name value`` and ``--name=value``; the last occurrence wins. One of ours without a
    value is refused; Glue's own are taken when they have a value and ignored otherwise;
    anything else is skipped with its value, unless it is a :func:`near_miss` of ours.
    """
    wanted = set(ours)
    found: dict[str, str] = {}
    position = 0
    while position < len(argv):
        item = argv[position]
        position += 1
        if not item.startswith("--") or item == "--":
            continue
        name, has_value, value = item[2:].partition("=")
        has_next_value = position < len(argv) and not argv[position].startswith("--")
        if name in wanted:
            if not has_value:
                if not has_next_value:
                    raise InvalidRequestError(name, "given without a value", "--name value")
                value = argv[position]
                position += 1
            found[name] = value
        elif name in GLUE_CONTEXT_FIELDS:
            if has_value:
                found[name] = value
            elif has_next_value:
                found[name] = argv[position]
                position += 1
        else:
            guess = near_miss(name, ours)
            if guess is not None:
                raise InvalidRequestError(
                    guess,
                    f"--{name} is not an argument of this job; did you mean --{guess}?",
                    ", ".join(f"--{field}" for field in ours),
                )
    return found


def parse_job_arguments(
    argv: Sequence[str],
    *,
    ids: IdRule = DEFAULT_IDS,
    settings: Sequence[str] = (),
    today: date | None = None,
    environ: Mapping[str, str] | None = None,
    read_s3_object: ReadS3Object | None = None,
    glue_client: Any = None,
) -> JobArguments:
    """Parse and completely validate a job's ``sys.argv`` (``argv[0]`` is the script).

    A job started by a Glue workflow also takes its workflow run's properties as replay
    fields (they win over the job's default arguments); paths and secrets stay the
    deployment's. Raises :class:`InvalidRequestError` naming the first field that is wrong.
    """
    ours = job_fields(settings)
    fields = fields_from_argv(argv[1:], ours)
    fields.update(workflow_run_fields(fields, glue_client))
    return build_job_arguments(
        fields,
        ids=ids,
        settings=settings,
        today=today,
        environ=environ,
        read_s3_object=read_s3_object,
    )


def workflow_run_fields(context: Mapping[str, str], glue_client: Any = None) -> dict[str, str]:
    """The replay fields of the Glue workflow run that started this job, if any.

    Glue passes ``--WORKFLOW_NAME`` and ``--WORKFLOW_RUN_ID`` to jobs a workflow starts; the
    replay trigger puts the request in the run's properties. Only replay fields are taken; a
    property that is a near miss of one is refused like a mistyped argument, any other is
    logged and ignored.

        {"WORKFLOW_NAME": "wf", "WORKFLOW_RUN_ID": "wr_1"} + properties {"replay_mode": "full"}
        -> {"replay_mode": "full"}
    """
    name, run_id = context.get("WORKFLOW_NAME"), context.get("WORKFLOW_RUN_ID")
    if not name or not run_id:
        return {}
    client = glue_client
    if client is None:
        import boto3

        client = boto3.client("glue")
    try:
        answer = client.get_workflow_run_properties(Name=name, RunId=run_id)
        # RunProperties is optional in Glue's answer: a run started with none may omit it.
        properties = answer.get("RunProperties") or {}
    except Exception as exc:
        raise GlueReplayError(
            f"could not read the run properties of workflow {name} run {run_id}: "
            f"{aws_error_code(exc)}"
        ) from None
    fields: dict[str, str] = {}
    for key, value in sorted(properties.items()):
        if key in REPLAY_FIELDS:
            fields[key] = str(value)
            continue
        guess = near_miss(key, REPLAY_FIELDS)
        if guess is not None:
            raise InvalidRequestError(
                guess,
                f"workflow run property {key!r} is not a replay field; did you mean {guess!r}?",
                ", ".join(REPLAY_FIELDS),
            )
        log.warning("workflow run property %r is not a replay field; ignored", key)
    return fields
