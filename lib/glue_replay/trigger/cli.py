"""``glue-replay``: validate a replay request, then run it locally or start it on AWS Glue.

    glue-replay --mode targeted --ids 1,2,3                      # local Spark, ./warehouse
    glue-replay --entity orders --mode since --date 2026-01-01 --target glue --wait
    glue-replay --entity orders --mode targeted --ids-file export.csv --target glue
    glue-replay --mode full --target glue --yes
    glue-replay status REQUEST_ID [--entity orders]
    glue-replay runs [--last 50] [--request-id R] [--entity orders] [--stage normalize]

A request is for one pipeline (one entity): ``--entity`` names it, and may be left out when
exactly one pipeline is known — for ``--target local`` the installed ones (entry points
``glue_replay.pipelines``), for ``--target glue`` the deployment's (``--config``). The flags become
the request's canonical fields (``--mode`` is ``replay_mode``: Glue reserves ``--mode``) and are
validated once, by :func:`glue_replay.request.build_job_arguments` with the entity's own id rule,
exactly as the jobs validate them; a refusal names the CLI's flag. ``--target local`` runs the
stages in this process on one local Spark session (imported only then); ``--target glue`` starts
one workflow run (``--stage all``) or one job run with boto3 (see
:mod:`glue_replay.trigger.start`) and starts no JVM.

``status`` and ``runs`` read the runs ledger with delta-rs (:mod:`glue_replay.trigger.ledger`)
and show a ``running`` row whose attempt is over as ``abandoned``.

Exit codes: 0 ok; 1 failed (a run failed, the request is unknown to ``status``, the ledger cannot
be read); 2 invalid request, configuration or flags (nothing started); 3 a job is busy (nothing
started).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn, cast

from glue_replay.aws import describe_aws_error, is_aws_error, is_s3_uri
from glue_replay.errors import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    InvalidRequestError,
    PipelineDefinitionError,
)
from glue_replay.registry import choose_entity, installed_pipeline_names, installed_pipelines
from glue_replay.request import (
    DEFAULT_WAREHOUSE,
    REPLAY_MODES,
    JobArguments,
    ReplayMode,
    build_request,
)
from glue_replay.trigger import start as glue_start
from glue_replay.trigger.config import (
    DeploymentConfig,
    DeploymentConfigError,
    PipelineConfig,
    load_config,
)
from glue_replay.trigger.ledger import LEDGER_STAGES, LedgerUnavailableError, RunsFilter
from glue_replay.trigger.start import AwsClients, GlueTarget, JobBusyError, Stage
from glue_replay.trigger.status import DEFAULT_LAST, follow, show_runs, show_status

if TYPE_CHECKING:
    from glue_replay.jobs import Pipeline

PROG = "glue-replay"
EXIT_BUSY = 3
EXIT_INTERRUPTED = 130
DEFAULT_POLL_SECONDS = 30.0
#: Where ``--target local`` looks for pipelines, for messages.
INSTALLED = "this installation (entry points glue_replay.pipelines)"

#: Canonical request fields as the CLI spells them; any other field is ``--<field>``.
CLI_FLAGS = {
    "replay_mode": "--mode",
    "ids_file": "--ids-file",
    "id_column": "--id-column",
    "dry_run": "--dry-run",
    "request_id": "--request-id",
    "source_url": "--source",
    "entity": "--entity",
}


def cli_spelling(field: str) -> str:
    """How the CLI spells a request field: ``replay_mode`` -> ``--mode``, ``date`` -> ``--date``."""
    return CLI_FLAGS.get(field, f"--{field}")


def status_spelling(field: str) -> str:
    """``glue-replay status`` takes the request id as its argument ``REQUEST_ID``."""
    return "REQUEST_ID" if field == "request_id" else cli_spelling(field)


class _UsageError(Exception):
    """argparse's complaint, turned into one line and exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``glue-replay`` console script. Returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments[:1] == ["status"]:
            return _status_command(arguments[1:])
        if arguments[:1] == ["runs"]:
            return _runs_command(arguments[1:])
        return _replay_command(arguments)
    except _UsageError as exc:
        _fail(f"invalid request: {exc}")
        return EXIT_INVALID
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK


# -- replay ------------------------------------------------------------------------------------


def replay_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Replay a pipeline: validate a request, run it locally or start it on "
        "AWS Glue. 'glue-replay status REQUEST_ID' shows where a request is.",
    )
    parser.add_argument(
        "--entity",
        help="the pipeline to replay (required when several are installed or configured)",
    )
    parser.add_argument(
        "--mode",
        choices=[m.value for m in REPLAY_MODES],
        help="what to replay (required: a replay is never a default)",
    )
    parser.add_argument("--date", help="since: the first UTC day, YYYY-MM-DD")
    parser.add_argument("--until", help="since: the exclusive end day, YYYY-MM-DD")
    parser.add_argument("--ids", help="targeted: comma-separated ids, e.g. 1,2,3")
    parser.add_argument(
        "--ids-file",
        help="targeted: a CSV whose first line names the id column ('id', or --id-column), "
        "or one id a line and no header (local path or s3://)",
    )
    parser.add_argument("--id-column", help="the id column's name in --ids-file (default id)")
    parser.add_argument("--stage", choices=glue_start.STAGES, default="all", help="default: all")
    parser.add_argument("--source", help="local: the source's base URL (ingest's --source_url)")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="local: one of the pipeline's own settings, e.g. jdbc_url=jdbc:postgresql://... "
        "(repeatable)",
    )
    parser.add_argument(
        "--target", choices=("local", "glue"), default="local", help="default: local"
    )
    parser.add_argument("--dry-run", action="store_true", help="report, write no data table")
    parser.add_argument("--wait", action="store_true", help="glue: follow the run to its end")
    parser.add_argument(
        "--poll-seconds",
        type=_seconds,
        default=DEFAULT_POLL_SECONDS,
        help=f"glue --wait: seconds between polls (default {DEFAULT_POLL_SECONDS:g})",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="glue: no confirmation prompt")
    parser.add_argument(
        "--warehouse", help=f"local: where the tables are (default {DEFAULT_WAREHOUSE})"
    )
    parser.add_argument("--request-id", help="the request's id (default: a new one)")
    parser.add_argument("--config", help="glue: deployment JSON (default $GLUE_REPLAY_CONFIG)")
    return parser


def _replay_command(arguments: list[str]) -> int:
    flags = replay_parser().parse_args(arguments)
    stage = cast(Stage, flags.stage)
    try:
        if flags.target == "local":
            return _replay_locally(flags, stage)
        return _replay_on_glue(flags, stage)
    except InvalidRequestError as exc:
        _fail(f"invalid request: {exc.render(cli_spelling)}")
        return EXIT_INVALID
    except DeploymentConfigError as exc:
        _fail(f"configuration: {exc}")
        return EXIT_INVALID
    except PipelineDefinitionError as exc:
        _fail(f"pipeline definition: {exc}")
        return EXIT_INVALID


def request_fields(flags: argparse.Namespace) -> dict[str, str | None]:
    """The flags as the request's canonical fields (``None``: not given)."""
    return {
        "replay_mode": flags.mode,
        "date": flags.date,
        "until": flags.until,
        "ids": flags.ids,
        "ids_file": flags.ids_file,
        "id_column": flags.id_column,
        "request_id": flags.request_id or glue_start.new_request_id(flags.mode),
        "dry_run": "true" if flags.dry_run else None,
    }


def _replay_locally(flags: argparse.Namespace, stage: Stage) -> int:
    pipelines = installed_pipelines()
    entity = choose_entity(flags.entity, sorted(pipelines), INSTALLED)
    pipeline = pipelines[entity]
    fields = request_fields(flags)
    fields["warehouse"] = flags.warehouse or DEFAULT_WAREHOUSE
    fields["source_url"] = flags.source
    settings = _pipeline_settings(flags.setting, pipeline.settings)
    args = glue_start.validate(fields, ids=pipeline.entity.ids)
    stages: list[str] = ["ingest", "normalize"] if stage == "all" else [stage]
    _say(_request_line(entity, args))
    _say(f"running {' -> '.join(stages)} on local Spark, warehouse {args.warehouse}")
    job_argv = _local_job_argv(args, flags)
    job_argv += [f"--{name}={value}" for name, value in settings.items()]
    return _run_stages(pipeline, stages, job_argv, args)


def _pipeline_settings(given: list[str], declared: tuple[str, ...]) -> dict[str, str]:
    """``--setting NAME=VALUE`` flags as the pipeline's settings; only those it declares."""
    accepted = ", ".join(declared) if declared else "none: this pipeline declares no settings"
    settings: dict[str, str] = {}
    for item in given:
        name, has_value, value = item.partition("=")
        if not has_value or not value.strip():
            raise InvalidRequestError("setting", f"{item!r} is not NAME=VALUE", accepted)
        if name.strip() not in declared:
            raise InvalidRequestError(
                "setting", f"{name.strip()!r} is not a setting of this pipeline", accepted
            )
        settings[name.strip()] = value.strip()
    return settings


def _local_job_argv(args: JobArguments, flags: argparse.Namespace) -> list[str]:
    """The validated request as the jobs' arguments (``--name=value``: a value that starts with
    dashes stays a value). An ids file is passed on as a file, so the ledger names it."""
    request = args.request
    fields = request.as_fields()
    if request.ids_file:
        fields.pop("ids", None)
        fields["ids_file"] = request.ids_file
        if flags.id_column:
            fields["id_column"] = flags.id_column
    fields["requested_by"] = args.requested_by
    fields["warehouse"] = args.warehouse
    if flags.source is not None:
        fields["source_url"] = args.source_url
    return [f"--{name}={value}" for name, value in fields.items()]


def _run_stages(
    pipeline: Pipeline, stages: list[str], job_argv: list[str], args: JobArguments
) -> int:
    """Each stage through its job entry point, on one Spark session (as each Glue job would
    run, with the same arguments)."""
    from glue_replay import runtime
    from glue_replay.jobs import run_ingest_job, run_normalize_job

    runners = {"ingest": run_ingest_job, "normalize": run_normalize_job}
    request_id = args.request.request_id
    spark = runtime.build_spark_session("glue-replay-cli")
    for name in stages:
        code = runners[name]([f"{name}_{pipeline.name}", *job_argv], pipeline, spark=spark)
        if code != EXIT_OK:
            _fail(
                f"{name} ended with exit code {code}; see: "
                f"{PROG} status {request_id} --warehouse {args.warehouse}"
            )
            return code
    show_status(request_id, warehouse=args.warehouse, say=_say)
    return EXIT_OK


def _replay_on_glue(flags: argparse.Namespace, stage: Stage) -> int:
    given = (
        ("warehouse", flags.warehouse),
        ("source_url", flags.source),
        ("setting", flags.setting or None),
    )
    for field, value in given:
        if value is not None:
            raise InvalidRequestError(
                field,
                "is a deployment setting on Glue (non-overridable job argument)",
                f"no {cli_spelling(field)} with --target glue; it is set where the jobs are "
                "deployed",
            )
    config = load_config(flags.config)
    pipeline = config.pipeline(flags.entity)
    target = GlueTarget.of(pipeline, stage)
    aws = AwsClients(config.region)
    # Who asks goes into the request before its one validation (the ledger records it).
    fields = {**request_fields(flags), "requested_by": aws.caller()}
    args = glue_start.validate(fields, ids=pipeline.ids, read_s3_object=aws.read_s3_object)
    request = args.request
    if glue_start.ids_too_long(request.ids):
        _ = config.uploads_location  # refuse a missing uploads_uri before anything happens
    full = request.mode is ReplayMode.FULL
    if full and not flags.yes and not _stdin_is_a_tty():
        raise InvalidRequestError(
            "yes",
            "a full backfill on AWS Glue needs confirmation and there is no terminal to ask",
            "--yes to start it without a prompt",
        )
    try:
        busy = glue_start.find_busy_runs(aws.glue, target)
        if busy:
            return _report_busy(busy)
        if (
            full
            and not flags.yes
            and not _confirm(
                f"Start a FULL backfill of {target.entity}: {target.describe()} on AWS Glue"
                + (" (dry run)" if request.dry_run else "")
                + "? [y/N] "
            )
        ):
            _fail("not confirmed; nothing started")
            return EXIT_INVALID
        started = glue_start.start_replay(aws.glue, aws.s3, config, target, args)
    except JobBusyError as exc:
        return _report_busy([exc.busy], exc.outcome())
    except Exception as exc:
        if not is_aws_error(exc):
            raise
        _fail(f"failed: AWS {describe_aws_error(exc)}")
        return EXIT_FAILED

    _say(_request_line(target.entity, args))
    _say("started on AWS Glue:")
    for line in started.describe():
        _say(f"  {line}")
    _say(f"follow it: {PROG} status {request.request_id} --entity {target.entity}")
    if not flags.wait:
        return EXIT_OK
    return _wait(aws, config, started, flags.poll_seconds)


def _request_line(entity: str, args: JobArguments) -> str:
    request = args.request
    dry_run = " (dry run)" if request.dry_run else ""
    return f"request {request.request_id} for {entity}: {request.describe()}{dry_run}"


def _wait(
    aws: AwsClients, config: DeploymentConfig, started: glue_start.StartedReplay, poll: float
) -> int:
    try:
        succeeded = follow(aws.glue, started, poll_seconds=poll, say=_say)
    except KeyboardInterrupt:
        _fail(
            f"stopped waiting; the request goes on: "
            f"{PROG} status {started.request_id} --entity {started.target.entity}"
        )
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not is_aws_error(exc):
            raise
        _fail(f"failed to follow the run: AWS {describe_aws_error(exc)}")
        return EXIT_FAILED
    _say("all jobs succeeded" if succeeded else "the request did not succeed")
    if config.warehouse:
        show_status(
            started.request_id,
            warehouse=config.warehouse,
            region=config.region,
            say=_say,
            s3=aws.s3 if is_s3_uri(config.warehouse) else None,
            warn=_note,
        )
    return EXIT_OK if succeeded else EXIT_FAILED


def _report_busy(busy: Sequence[glue_start.BusyRun], outcome: str = "nothing started") -> int:
    for run in busy:
        _fail(run.describe())
    _fail(f"{outcome}; try again when it has finished")
    return EXIT_BUSY


# -- status ------------------------------------------------------------------------------------


def status_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} status",
        description="Where a request is: its runs-ledger rows and its Glue runs.",
    )
    parser.add_argument("request_id", metavar="REQUEST_ID")
    parser.add_argument(
        "--entity", help="only this pipeline's ledger rows and Glue runs (default: all)"
    )
    _add_deployment_flags(parser)
    return parser


def _status_command(arguments: list[str]) -> int:
    flags = status_parser().parse_args(arguments)
    try:
        build_request({"request_id": flags.request_id})  # the request id's one rule
        config, pipelines = _deployment(flags.config, flags.entity)
    except InvalidRequestError as exc:
        _fail(f"invalid request: {exc.render(status_spelling)}")
        return EXIT_INVALID
    except DeploymentConfigError as exc:
        _fail(f"configuration: {exc}")
        return EXIT_INVALID
    warehouse, glue, s3 = _ledger_access(flags.warehouse, config, pipelines)
    try:
        found = show_status(
            flags.request_id,
            warehouse=warehouse,
            say=_say,
            region=config.region,
            pipelines=pipelines,
            glue=glue,
            entity=flags.entity,
            s3=s3,
            warn=_note,
        )
    except Exception as exc:
        if not is_aws_error(exc):
            raise
        _fail(f"failed: AWS {describe_aws_error(exc)}")
        return EXIT_FAILED
    if not found:
        _fail(
            f"request {flags.request_id} is unknown to the ledger"
            + (" and to Glue" if pipelines else "")
        )
    return EXIT_OK if found else EXIT_FAILED


def _add_deployment_flags(parser: argparse.ArgumentParser) -> None:
    """``--warehouse`` and ``--config``, as every ledger-reading command takes them."""
    parser.add_argument(
        "--warehouse", help="the tables' base (default: the config's, else ./warehouse)"
    )
    parser.add_argument("--config", help="deployment JSON (default $GLUE_REPLAY_CONFIG)")


def _ledger_access(
    given: str | None, config: DeploymentConfig, pipelines: list[PipelineConfig]
) -> tuple[str, Any, Any]:
    """The warehouse to read, and the Glue and S3 clients reading it needs (``None`` if not)."""
    warehouse = given or config.warehouse or DEFAULT_WAREHOUSE
    on_s3 = is_s3_uri(warehouse)
    aws = AwsClients(config.region) if pipelines or on_s3 else None
    glue = aws.glue if aws and pipelines else None
    return warehouse, glue, aws.s3 if aws and on_s3 else None


def _deployment(
    config_file: str | None, entity: str | None
) -> tuple[DeploymentConfig, list[PipelineConfig]]:
    """The configuration, and its pipelines (only ``entity``'s when given). Without configured
    pipelines, ``entity`` must be an installed one."""
    config = load_config(config_file)
    pipelines = list(config.pipelines.values())
    if entity and pipelines:
        pipelines = [config.pipeline(entity)]
    elif entity:
        choose_entity(entity, installed_pipeline_names(), INSTALLED)
    return config, pipelines


# -- runs --------------------------------------------------------------------------------------


def runs_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} runs",
        description="The runs ledger as a table, newest first: every job run of every request, "
        "with its status, counts and error.",
    )
    parser.add_argument(
        "--last",
        type=_positive_int,
        default=DEFAULT_LAST,
        metavar="N",
        help=f"the N newest rows (default {DEFAULT_LAST})",
    )
    parser.add_argument("--request-id", help="only this request's rows")
    parser.add_argument("--entity", help="only this pipeline's rows")
    parser.add_argument("--stage", choices=LEDGER_STAGES, help="only this stage's rows")
    _add_deployment_flags(parser)
    return parser


def _runs_command(arguments: list[str]) -> int:
    flags = runs_parser().parse_args(arguments)
    try:
        if flags.request_id is not None:
            build_request({"request_id": flags.request_id})  # the request id's one rule
        config, pipelines = _deployment(flags.config, flags.entity)
    except InvalidRequestError as exc:
        _fail(f"invalid request: {exc.render(cli_spelling)}")
        return EXIT_INVALID
    except DeploymentConfigError as exc:
        _fail(f"configuration: {exc}")
        return EXIT_INVALID
    warehouse, glue, s3 = _ledger_access(flags.warehouse, config, pipelines)
    runs_filter = RunsFilter(
        request_id=flags.request_id, entity=flags.entity, stage=flags.stage, last=flags.last
    )
    try:
        show_runs(
            runs_filter,
            warehouse=warehouse,
            say=_say,
            warn=_note,
            region=config.region,
            pipelines=pipelines,
            glue=glue,
            s3=s3,
        )
    except LedgerUnavailableError as exc:
        _fail(f"ledger: {exc}")
        return EXIT_FAILED
    return EXIT_OK


# -- helpers -----------------------------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 3600")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer (1, 2, 3, ...)")
    return value


def _stdin_is_a_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _confirm(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in {"y", "yes"}


def _say(line: str) -> None:
    print(line, flush=True)


def _note(line: str) -> None:
    print(f"{PROG}: note: {line}", file=sys.stderr, flush=True)


def _fail(line: str) -> None:
    print(f"{PROG}: {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
