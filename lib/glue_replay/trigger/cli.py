"""``glue-replay``: validate a replay request, then run it locally or start it on AWS Glue.

    glue-replay --mode targeted --ids 1,2,3                      # local Spark, ./warehouse
    glue-replay --mode since --date 2026-01-01 --target glue --wait
    glue-replay --mode targeted --ids-file export.csv --target glue
    glue-replay --mode full --target glue --yes
    glue-replay status REQUEST_ID

The flags are translated to the jobs' arguments (``--mode`` becomes ``--replay_mode``: Glue
reserves ``--mode``) and validated by the jobs' own parser, so the CLI accepts exactly what the
jobs accept; a refusal names the CLI's flag. ``--target local`` runs the stages in this process on
one local Spark session (imported only then); ``--target glue`` starts one workflow run (``--stage
all``) or one job run with boto3 (see :mod:`glue_replay.trigger.start`) and starts no JVM.

Exit codes: 0 ok; 1 failed (a run failed, or the request is unknown to ``status``); 2 invalid
request, configuration or flags (nothing started); 3 a job is busy (nothing started).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, cast

from glue_replay.errors import InvalidRequestError
from glue_replay.id_rules import CUSTOMER_IDS
from glue_replay.request import ReplayMode, load_ids_file
from glue_replay.trigger import start as glue_start
from glue_replay.trigger.config import DeploymentConfig, DeploymentConfigError, load_config
from glue_replay.trigger.start import GlueTarget, JobBusyError, Stage, describe_client_error
from glue_replay.trigger.status import follow, show_status

PROG = "glue-replay"
EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_BUSY = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
DEFAULT_LOCAL_WAREHOUSE = "./warehouse"
DEFAULT_POLL_SECONDS = 30.0

#: Job-argument names as the CLI spells them, for messages from the jobs' parser.
CLI_FLAG_NAMES = {
    "replay_mode": "--mode",
    "ids_file": "--ids-file",
    "dry_run": "--dry-run",
    "request_id": "--request-id",
    "source_url": "--source",
}
_JOB_ARGUMENT = re.compile(r"--(" + "|".join(CLI_FLAG_NAMES) + r")\b")

#: The local stages in cascade order: (stage, script name the jobs report under).
_LOCAL_SCRIPTS = {"ingest": "glue_jobs/ingest_rest_api.py", "normalize": "glue_jobs/normalize.py"}


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
        return _replay_command(arguments)
    except _UsageError as exc:
        _fail(f"invalid request: {exc}")
        return EXIT_INVALID
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK


def cli_message(exc: InvalidRequestError) -> str:
    """The jobs' message with the CLI's flag names (``--replay_mode`` -> ``--mode``, ...)."""
    return _JOB_ARGUMENT.sub(lambda m: CLI_FLAG_NAMES[m.group(1)], str(exc))


# -- replay ------------------------------------------------------------------------------------


def replay_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Replay the pipeline: validate a request, run it locally or start it on "
        "AWS Glue. 'glue-replay status REQUEST_ID' shows where a request is.",
    )
    parser.add_argument(
        "--mode",
        choices=("full", "since", "targeted"),
        help="what to replay (required: a replay is never a default)",
    )
    parser.add_argument("--date", help="since: the first UTC day, YYYY-MM-DD")
    parser.add_argument("--until", help="since: the exclusive end day, YYYY-MM-DD")
    parser.add_argument("--ids", help="targeted: comma-separated ids, e.g. 1,2,3")
    parser.add_argument(
        "--ids-file",
        help="targeted: a CSV with a header row (local path or s3://): its 'id' column, else "
        "its first column, or --id-column",
    )
    parser.add_argument("--id-column", help="the ids' column in --ids-file")
    parser.add_argument(
        "--stage", choices=("ingest", "normalize", "all"), default="all", help="default: all"
    )
    parser.add_argument("--source", help="local: the REST API's base URL (ingest's --source_url)")
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
        "--warehouse", help=f"local: where the tables are (default {DEFAULT_LOCAL_WAREHOUSE})"
    )
    parser.add_argument("--request-id", help="the request's id (default: a new one)")
    parser.add_argument("--config", help="glue: deployment JSON (default $GLUE_REPLAY_CONFIG)")
    return parser


def _replay_command(arguments: list[str]) -> int:
    flags = replay_parser().parse_args(arguments)
    stage = cast(Stage, flags.stage)
    try:
        if flags.mode is None:
            raise InvalidRequestError(
                "--mode", "is required (a replay is never a default)", "full, since or targeted"
            )
        if flags.id_column and not flags.ids_file:
            raise InvalidRequestError(
                "--id-column", "is only valid with --ids-file", "--ids-file FILE --id-column NAME"
            )
        if flags.target == "local":
            return _replay_locally(flags, stage)
        return _replay_on_glue(flags, stage)
    except InvalidRequestError as exc:
        _fail(f"invalid request: {cli_message(exc)}")
        return EXIT_INVALID
    except DeploymentConfigError as exc:
        _fail(f"configuration: {exc}")
        return EXIT_INVALID


def _job_options(
    flags: argparse.Namespace, read_s3_object: glue_start.ReadS3Object | None
) -> dict[str, str | None]:
    """The flags as job arguments (``None``: not given)."""
    options: dict[str, str | None] = {
        "replay_mode": flags.mode,
        "date": flags.date,
        "until": flags.until,
        "ids": flags.ids,
        "ids_file": flags.ids_file,
        "request_id": flags.request_id or glue_start.new_request_id(flags.mode),
        "dry_run": "true" if flags.dry_run else None,
    }
    if flags.ids_file and flags.mode == "targeted" and flags.ids is None:
        column = flags.id_column or _first_column_unless_id(flags.ids_file, read_s3_object)
        if column is not None:
            # The jobs read the 'id' (or only) column; another column is read here, sent inline.
            ids = load_ids_file(
                flags.ids_file,
                id_pattern=CUSTOMER_IDS.pattern,
                id_column=column,
                read_s3_object=read_s3_object,
            )
            options.update(ids=",".join(ids), ids_file=None)
    return options


def _replay_locally(flags: argparse.Namespace, stage: Stage) -> int:
    reader = None
    if str(flags.ids_file or "").startswith(("s3://", "s3a://")):
        reader = _AwsClients(None).read_s3_object
    options = _job_options(flags, reader)
    options["warehouse"] = flags.warehouse or DEFAULT_LOCAL_WAREHOUSE
    options["source_url"] = flags.source
    args = glue_start.validate(options, read_s3_object=reader)
    stages = ["ingest", "normalize"] if stage == "all" else [stage]
    request = args.request
    _say(
        f"request {request.request_id}: {request.describe()}"
        + (" (dry run)" if request.dry_run else "")
    )
    _say(f"running {' -> '.join(stages)} on local Spark, warehouse {args.warehouse}")
    # The job argv the parser accepted, with the ids file replaced by its ids when they came from
    # another column: each stage validates it again, as every job does.
    job_argv = [f"--{k}={v}" for k, v in options.items() if v is not None]

    from glue_replay import jobs, runtime

    mains: dict[str, Callable[..., int]] = {
        "ingest": jobs.ingest_rest_api_main,
        "normalize": jobs.normalize_main,
    }
    spark = runtime.build_spark_session("glue-replay-cli")
    for name in stages:
        code = mains[name]([_LOCAL_SCRIPTS[name], *job_argv], spark=spark)
        if code != EXIT_OK:
            _fail(
                f"{name} ended with exit code {code}; see: "
                f"{PROG} status {request.request_id} --warehouse {args.warehouse}"
            )
            return code
    show_status(
        request.request_id,
        warehouse=args.warehouse,
        config=DeploymentConfig(),
        glue=None,
        say=_say,
    )
    return EXIT_OK


def _replay_on_glue(flags: argparse.Namespace, stage: Stage) -> int:
    for flag, value in (("--warehouse", flags.warehouse), ("--source", flags.source)):
        if value is not None:
            raise InvalidRequestError(
                flag,
                "is a deployment setting on Glue (non-overridable job argument)",
                f"no {flag} with --target glue; it is set where the jobs are deployed",
            )
    config = load_config(flags.config)
    aws = _AwsClients(config.region)
    options = _job_options(flags, aws.read_s3_object)
    # Validated before any AWS call but an id file's read; then again with the caller's name,
    # which the ledger records (the second pass reads the ids from memory).
    glue_start.validate(options, read_s3_object=aws.read_s3_object)
    target = GlueTarget.of(config, stage)
    options["requested_by"] = aws.caller()
    args = glue_start.validate(options, read_s3_object=aws.read_s3_object)
    request = args.request
    if glue_start.ids_too_long(request.ids):
        _ = config.uploads_location  # refuse a missing uploads_uri before anything happens
    full = request.mode is ReplayMode.FULL
    if full and not flags.yes and not _stdin_is_a_tty():
        raise InvalidRequestError(
            "--yes",
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
                f"Start a FULL backfill of {target.describe()} on AWS Glue"
                + (" (dry run)" if request.dry_run else "")
                + "? [y/N] "
            )
        ):
            _fail("not confirmed; nothing started")
            return EXIT_INVALID
        started = glue_start.start_replay(aws.glue, aws.s3, config, args, stage)
    except JobBusyError as exc:
        return _report_busy([exc.busy])
    except Exception as exc:
        if not _is_aws_error(exc):
            raise
        _fail(f"failed: AWS {describe_client_error(exc)}")
        return EXIT_FAILED

    _say(
        f"request {request.request_id}: {request.describe()}"
        + (" (dry run)" if request.dry_run else "")
    )
    _say("started on AWS Glue:")
    for line in started.describe():
        _say(f"  {line}")
    _say(f"follow it: {PROG} status {request.request_id}")
    if not flags.wait:
        return EXIT_OK
    return _wait(aws, config, started, flags.poll_seconds)


def _wait(
    aws: _AwsClients, config: DeploymentConfig, started: glue_start.StartedReplay, poll: float
) -> int:
    try:
        succeeded = follow(aws.glue, started, poll_seconds=poll, say=_say)
    except KeyboardInterrupt:
        _fail(f"stopped waiting; the request goes on: {PROG} status {started.request_id}")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not _is_aws_error(exc):
            raise
        _fail(f"failed to follow the run: AWS {describe_client_error(exc)}")
        return EXIT_FAILED
    _say("all jobs succeeded" if succeeded else "the request did not succeed")
    if config.warehouse:
        show_status(
            started.request_id, warehouse=config.warehouse, config=config, glue=None, say=_say
        )
    return EXIT_OK if succeeded else EXIT_FAILED


def _report_busy(busy: Sequence[glue_start.BusyRun]) -> int:
    for run in busy:
        _fail(run.describe())
    _fail("nothing started; try again when it has finished")
    return EXIT_BUSY


# -- status ------------------------------------------------------------------------------------


def status_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} status",
        description="Where a request is: its runs-ledger rows and its Glue runs.",
    )
    parser.add_argument("request_id", metavar="REQUEST_ID")
    parser.add_argument(
        "--warehouse", help="the tables' base (default: the config's, else ./warehouse)"
    )
    parser.add_argument("--config", help="deployment JSON (default $GLUE_REPLAY_CONFIG)")
    return parser


def _status_command(arguments: list[str]) -> int:
    flags = status_parser().parse_args(arguments)
    try:
        # The jobs' own check of a request id (it goes into the ledger query).
        glue_start.validate({"request_id": flags.request_id})
        config = load_config(flags.config)
    except InvalidRequestError as exc:
        _fail(f"invalid request: {cli_message(exc).replace('--request-id', 'REQUEST_ID')}")
        return EXIT_INVALID
    except DeploymentConfigError as exc:
        _fail(f"configuration: {exc}")
        return EXIT_INVALID
    warehouse = flags.warehouse or config.warehouse or DEFAULT_LOCAL_WAREHOUSE
    glue: Any | None = None
    if config.workflow_name or config.ingest_job or config.normalize_job:
        glue = _AwsClients(config.region).glue
    try:
        found = show_status(
            flags.request_id, warehouse=warehouse, config=config, glue=glue, say=_say
        )
    except Exception as exc:
        if not _is_aws_error(exc):
            raise
        _fail(f"failed: AWS {describe_client_error(exc)}")
        return EXIT_FAILED
    if not found:
        _fail(
            f"request {flags.request_id} is unknown to the ledger"
            + (" and to Glue" if glue else "")
        )
    return EXIT_OK if found else EXIT_FAILED


# -- AWS ---------------------------------------------------------------------------------------


class _AwsClients:
    """The boto3 clients of one command, created when first used."""

    def __init__(self, region: str | None) -> None:
        import boto3

        self._session = boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = {}
        self._objects: dict[tuple[str, str], bytes] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)
        return self._clients[service]

    @property
    def glue(self) -> Any:
        return self.client("glue")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    def read_s3_object(self, bucket: str, key: str) -> bytes:
        """An object's bytes, read once per command (the header peek and the parser share it)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if (bucket, key) not in self._objects:
            try:
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except (ClientError, BotoCoreError) as exc:
                raise InvalidRequestError(
                    "--ids_file",
                    f"cannot read s3://{bucket}/{key} ({describe_client_error(exc)})",
                    "a readable s3:// object",
                ) from None
            self._objects[bucket, key] = bytes(body)
        return self._objects[bucket, key]

    def caller(self) -> str | None:
        """Who is asking, for the ledger: the caller's IAM ARN (the login name if unknown)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            arn = str(self.client("sts").get_caller_identity()["Arn"])
        except (ClientError, BotoCoreError):
            return None
        # The ledger takes up to 128 characters: keep the ARN's most specific part.
        return arn if len(arn) <= 128 else arn.rsplit(":", 1)[-1][-128:]


def _is_aws_error(exc: Exception) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, (ClientError, BotoCoreError))


# -- helpers -----------------------------------------------------------------------------------


def _first_column_unless_id(
    location: str, read_s3_object: glue_start.ReadS3Object | None
) -> str | None:
    """The header's first column when the CSV has several and none is ``id``; else ``None``
    (the jobs' own rule applies: the ``id`` column, or the only one). Unreadable files are left
    to the parser, which says why."""
    try:
        if location.startswith(("s3://", "s3a://")):
            if read_s3_object is None:
                return None
            bucket, _, key = location.split("://", 1)[1].partition("/")
            head = read_s3_object(bucket, key)[:65536].decode("utf-8-sig", errors="replace")
        else:
            with Path(location).open(encoding="utf-8-sig", errors="replace", newline="") as handle:
                head = handle.read(65536)
    except (OSError, InvalidRequestError, ValueError):
        return None
    header = next(csv.reader(io.StringIO(head, newline=None)), [])
    names = [cell.strip() for cell in header]
    if len(names) < 2 or "id" in (n.lower() for n in names) or not names[0]:
        return None
    return names[0]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 3600")
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


def _fail(line: str) -> None:
    print(f"{PROG}: {line}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
