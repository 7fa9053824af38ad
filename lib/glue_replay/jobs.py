"""The job entry points behind ``glue_jobs/*.py``: parse, build Spark, run one stage, exit code.

Exit codes (DESIGN §4): 0 success; 2 invalid request (one line on stderr, nothing written);
1 failed run (tables consistent, the runs ledger says why).

The request is parsed and validated before Spark is imported, so a bad request is refused in a
fraction of a second instead of after a JVM start.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from glue_replay.errors import GlueReplayError, InvalidRequestError, RequestConflictError
from glue_replay.id_rules import CUSTOMER_IDS, DEFAULT_IDS, IdRule
from glue_replay.job_inputs import read_source_token, with_workflow_run_properties
from glue_replay.request import REPLAY_ARGUMENTS, JobArguments, parse_job_arguments

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from glue_replay.pipelines.stage import Clock
    from glue_replay.tables import RunRecord

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
#: The REST source's bearer token, when the API needs one (never a job argument).
SOURCE_TOKEN_ENV = "GLUE_REPLAY_SOURCE_TOKEN"  # noqa: S105 - a variable name

Stage = Callable[["SparkSession", JobArguments], "RunRecord"]


@dataclass(frozen=True)
class JobSpec:
    """A Glue job of this library: its script and the arguments it reads.

    ``settings`` are deployment settings (paths, the secret's name): fixed per deployment and
    non-overridable on Glue, unlike the replay arguments.
    """

    name: str
    script: str
    settings: tuple[str, ...]

    @property
    def arguments(self) -> tuple[str, ...]:
        return REPLAY_ARGUMENTS + self.settings


JOBS = (
    JobSpec(
        "ingest_rest_api",
        "glue_jobs/ingest_rest_api.py",
        ("warehouse", "source_url", "source_token_secret"),
    ),
    JobSpec("normalize", "glue_jobs/normalize.py", ("warehouse",)),
)


def ingest_rest_api_main(
    argv: Sequence[str], *, spark: SparkSession | None = None, clock: Clock | None = None
) -> int:
    """``glue_jobs/ingest_rest_api.py``: the REST API's customers -> ``raw/customers``."""

    def stage(session: SparkSession, args: JobArguments) -> RunRecord:
        # Imported after validation: a bad request never pays for Spark's import.
        from glue_replay.pipelines.ingest import run_ingest
        from glue_replay.pipelines.stage import utc_now
        from glue_replay.sources.rest import RestApiSource

        token = (
            read_source_token(args.source_token_secret)
            if args.source_token_secret
            else os.environ.get(SOURCE_TOKEN_ENV)
        )
        source = RestApiSource(args.source_url, token=token)
        return run_ingest(session, args, source, clock or utc_now)

    return run_job(argv, stage, spark=spark, ids=CUSTOMER_IDS)


def normalize_main(
    argv: Sequence[str], *, spark: SparkSession | None = None, clock: Clock | None = None
) -> int:
    """``glue_jobs/normalize.py``: ``raw/customers`` -> ``normalized/customers`` + ``outbox``."""

    def stage(session: SparkSession, args: JobArguments) -> RunRecord:
        from glue_replay.entities import CUSTOMERS
        from glue_replay.pipelines.normalize import run_normalize
        from glue_replay.pipelines.stage import utc_now

        return run_normalize(session, args, CUSTOMERS, clock or utc_now)

    return run_job(argv, stage, spark=spark, ids=CUSTOMER_IDS)


def run_job(
    argv: Sequence[str],
    stage: Stage,
    *,
    spark: SparkSession | None = None,
    ids: IdRule = DEFAULT_IDS,
) -> int:
    """Validate ``argv`` completely, then run ``stage`` on a (given or new) Spark session."""
    job = Path(argv[0]).stem if argv else "glue-replay"
    try:
        argv = with_workflow_run_properties(argv)
        args = parse_job_arguments(argv, id_pattern=ids.pattern, id_pattern_help=ids.help)
    except InvalidRequestError as exc:
        print(f"{job}: invalid request: {exc}", file=sys.stderr, flush=True)
        return EXIT_INVALID
    except GlueReplayError as exc:
        print(f"{job}: failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    _configure_logging()
    try:
        if spark is None:
            from glue_replay.runtime import build_spark_session

            spark = build_spark_session(f"glue-replay-{job}")
        stage(spark, args)
    except (InvalidRequestError, RequestConflictError) as exc:
        print(f"{job}: invalid request: {exc}", file=sys.stderr, flush=True)
        return EXIT_INVALID
    except GlueReplayError as exc:
        print(f"{job}: failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception as exc:  # the ledger has the failed run; the operator needs the trace
        traceback.print_exc()
        print(f"{job}: failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    return EXIT_OK


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
