"""Pipelines and the job entry points behind every ``glue_jobs/*.py``.

A :class:`Pipeline` binds an :class:`~glue_replay.entity.Entity` to the source it is ingested
from. A Glue job script is then a few lines::

    import sys
    from glue_replay import run_ingest_job
    from my_pipelines.orders import ORDERS

    if __name__ == "__main__":
        sys.exit(run_ingest_job(sys.argv, ORDERS))

Exit codes (DESIGN §4): 0 success; 2 invalid request (one line on stderr, nothing written);
1 failed run (tables consistent, the runs ledger says why). The request is parsed and validated
— with the entity's id rule — and the source is built before Spark starts, so a bad request is
refused in well under a second instead of after a JVM start.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from glue_replay.arguments import (
    MaintenanceArguments,
    parse_job_arguments,
    parse_maintenance_arguments,
)
from glue_replay.errors import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    GlueReplayError,
    InvalidRequestError,
    PipelineDefinitionError,
    RequestConflictError,
)
from glue_replay.identity import claim_request
from glue_replay.request import JobArguments

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from glue_replay.entity import Entity
    from glue_replay.pipelines.stage import Clock
    from glue_replay.sources.base import Source, SourceSettings
    from glue_replay.tables import RunRecord

__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "Pipeline",
    "run_ingest_job",
    "run_normalize_job",
    "run_publish_job",
]

SourceFactory = Callable[["SourceSettings"], "Source"]
StageRunner = Callable[["SparkSession", JobArguments], "RunRecord"]


@dataclass(frozen=True)
class Pipeline:
    """An entity and the source it is ingested from: what an ingest and a normalize job run.

    ``source`` builds the source from the deployment's settings (its URL, the secret holding
    its credentials, and the extra ``settings`` this pipeline declares, e.g. ``("jdbc_url",)``:
    the ingest job then accepts ``--jdbc_url``). It is called after the request is validated
    and before Spark starts, so a setting it refuses (:class:`InvalidRequestError`) is exit 2.
    """

    entity: Entity
    source: SourceFactory
    settings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.entity.name


def run_ingest_job(
    argv: Sequence[str],
    pipeline: Pipeline,
    *,
    spark: SparkSession | None = None,
    clock: Clock | None = None,
) -> int:
    """An ingest job: ``pipeline``'s source, read in the requested mode, into ``raw/<entity>``."""
    entity = pipeline.entity

    def prepare(args: JobArguments) -> StageRunner:
        from glue_replay.sources.base import SourceSettings

        source = pipeline.source(
            SourceSettings(args.source_url, args.source_token_secret, args.settings)
        )

        def stage(session: SparkSession, arguments: JobArguments) -> RunRecord:
            # Imported after validation: a bad request never pays for Spark's import.
            from glue_replay.pipelines.ingest import run_ingest
            from glue_replay.pipelines.stage import utc_now

            return run_ingest(session, arguments, entity, source, clock or utc_now)

        return stage

    return run_job(
        argv,
        entity,
        prepare,
        spark=spark,
        settings=pipeline.settings,
        clock=clock,
        stage_name="ingest",
    )


def run_normalize_job(
    argv: Sequence[str],
    pipeline: Pipeline | Entity,
    *,
    spark: SparkSession | None = None,
    clock: Clock | None = None,
) -> int:
    """A normalize job: ``raw/<entity>`` -> ``normalized/<entity>`` (MERGE) + outbox events."""
    entity = pipeline.entity if isinstance(pipeline, Pipeline) else pipeline

    def prepare(args: JobArguments) -> StageRunner:
        def stage(session: SparkSession, arguments: JobArguments) -> RunRecord:
            from glue_replay.pipelines.normalize import run_normalize
            from glue_replay.pipelines.stage import utc_now

            return run_normalize(session, arguments, entity, clock or utc_now)

        return stage

    return run_job(argv, entity, prepare, spark=spark, clock=clock, stage_name="normalize")


def run_publish_job(
    argv: Sequence[str],
    pipelines: Sequence[Pipeline | Entity] | None = None,
    *,
    spark: SparkSession | None = None,
    clock: Clock | None = None,
) -> int:
    """The publish job: every pipeline's outbox (or ``--entities``) to its sink, in order.
    ``pipelines`` defaults to every installed one (:mod:`glue_replay.registry`).

    Exit 0 also when another publish run holds an entity's lease (that run catches up); 1 when
    a publish failed, or when events were dead-lettered and ``--fail_on_dead_letter true``.
    """
    from glue_replay.publishing import parse_publish_arguments

    job = Path(argv[0]).stem if argv else "publish_outbox"
    if pipelines is None:
        from glue_replay.registry import installed_pipelines

        try:
            pipelines = list(installed_pipelines().values())
        except PipelineDefinitionError as exc:
            print(f"{job}: pipeline definition: {exc}", file=sys.stderr, flush=True)
            return EXIT_INVALID
    entities = [p.entity if isinstance(p, Pipeline) else p for p in pipelines]
    names = [entity.name for entity in entities]
    if len(set(names)) != len(names):
        print(
            f"{job}: pipeline definition: two pipelines are named alike: {names}", file=sys.stderr
        )
        return EXIT_INVALID
    try:
        args = parse_publish_arguments(argv, names)
    except InvalidRequestError as exc:
        return _refuse(job, exc)
    _configure_logging()
    try:
        if spark is None:
            from glue_replay.runtime import build_spark_session

            spark = build_spark_session(f"glue-replay-{job}", warehouse=args.warehouse)
        from glue_replay.pipelines.publish import run_publish
        from glue_replay.pipelines.stage import utc_now

        run_publish(spark, args, entities, clock or utc_now)
    except InvalidRequestError as exc:
        return _refuse(job, exc)
    except GlueReplayError as exc:
        print(f"{job}: failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception as exc:  # the ledger has the failed run; the operator needs the trace
        traceback.print_exc()
        print(f"{job}: failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    return EXIT_OK


def run_job(
    argv: Sequence[str],
    entity: Entity,
    prepare: Callable[[JobArguments], StageRunner],
    *,
    spark: SparkSession | None = None,
    settings: Sequence[str] = (),
    clock: Clock | None = None,
    stage_name: str = "stage",
) -> int:
    """Validate ``argv`` completely (``entity``'s id rule; "today" is ``clock``'s), prepare the
    stage, claim the request id (or refuse it: :mod:`glue_replay.identity`), then run the stage
    on a (given or new) Spark session; returns the exit code. Everything before Spark starts.

    With ``--maintenance true`` the job runs no request: it maintains the tables its stage
    writes (:func:`run_maintenance`)."""
    job = Path(argv[0]).stem if argv else "glue-replay"
    today = clock().date() if clock is not None else None
    try:
        maintenance = parse_maintenance_arguments(argv, settings=settings)
    except InvalidRequestError as exc:
        return _refuse(job, exc)
    if maintenance is not None:
        return run_maintenance(job, maintenance, entity, stage_name, spark=spark, today=today)
    try:
        args = parse_job_arguments(argv, ids=entity.ids, settings=settings, today=today)
        stage = prepare(args)
        claim_request(
            args.warehouse,
            args.request,
            entity.name,
            stage_name,
            args.run_id,
            now=clock() if clock is not None else None,
        )
    except InvalidRequestError as exc:
        return _refuse(job, exc)
    except RequestConflictError as exc:
        print(f"{job}: invalid request: {exc}", file=sys.stderr, flush=True)
        return EXIT_INVALID
    except PipelineDefinitionError as exc:
        print(f"{job}: pipeline definition: {exc}", file=sys.stderr, flush=True)
        return EXIT_INVALID
    except GlueReplayError as exc:
        print(f"{job}: failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    _configure_logging()
    try:
        if spark is None:
            from glue_replay.runtime import build_spark_session

            spark = build_spark_session(f"glue-replay-{job}", warehouse=args.warehouse)
        stage(spark, args)
    except InvalidRequestError as exc:
        return _refuse(job, exc)
    except RequestConflictError as exc:
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


def run_maintenance(
    job: str,
    args: MaintenanceArguments,
    entity: Entity,
    stage_name: str,
    *,
    spark: SparkSession | None = None,
    today: date | None = None,
) -> int:
    """A maintenance run of ``stage_name``'s job: its tables of ``entity`` laid out again (raw's
    past days clustered by id, or normalized sorted by key; the quarantine and runs ledger
    compacted; VACUUM when asked), from the job itself so that each table keeps one writer.
    Not a request: nothing goes to the runs ledger but the compaction of it; what was done is
    printed, a line a table. Exit 0 when done, 1 when a step failed (each step is one Delta
    commit: a table is rearranged whole or not at all)."""
    _configure_logging()
    try:
        if spark is None:
            from glue_replay.runtime import build_spark_session

            spark = build_spark_session(f"glue-replay-{job}", warehouse=args.warehouse)
        from glue_replay.tables import Warehouse
        from glue_replay.tables.layout import maintain_stage

        print(f"{job}: maintenance of {entity.name} {stage_name} tables", flush=True)
        maintain_stage(
            spark,
            Warehouse(args.warehouse),
            entity,
            stage_name,
            today=today,
            vacuum_retention=args.vacuum_retention,
            say=lambda line: print(f"{job}: {line}", flush=True),
        )
    except GlueReplayError as exc:
        print(f"{job}: maintenance failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception as exc:  # the operator needs the trace
        traceback.print_exc()
        print(f"{job}: maintenance failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _refuse(job: str, exc: InvalidRequestError) -> int:
    print(f"{job}: invalid request: {exc}", file=sys.stderr, flush=True)
    return EXIT_INVALID


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
