"""Test-only driver: job invocations run in order, in one process and one Spark session.

    python tests/jobs_driver.py JOBS.json [--results RESULTS.jsonl] [--conf KEY=VALUE ...]
        [--warehouse URI]
    python tests/jobs_driver.py - [...]     # invocations as JSON lines on stdin, one at a time

For what a job's JVM must have from its start (a trust store in ``SPARK_SUBMIT_OPTS``, an
endpoint in the AWS environment: the tests against S3 on ``moto_server`` over TLS) and for
several jobs that should pay for one JVM start (~30 s here), not one each. The session is built
with ``glue_replay.runtime.build_spark_session`` when the first invocation runs (for that
invocation's ``--warehouse``), or at once with the driver's own ``--warehouse`` (its JVM then
starts while the caller prepares the first job), with the ``--conf`` settings on top. Every job
gets it as the ``spark`` of ``run_ingest_job``/``run_normalize_job``/``run_publish_job``: the
jobs run as their ``glue_jobs/*.py`` scripts would, but for the session being shared.

``JOBS.json`` is a list of invocations; with ``-``, each line of stdin is one, and its result is
written as soon as it ends (the test can change the source, move its clock or upload a file
between two jobs, then send the next line; EOF ends the driver). An invocation::

    {"pipeline": "customers",           # an installed pipeline (glue_replay.registry)
     "stage": "normalize",              # ingest | normalize | publish
     "argv": ["--replay_mode", "full", "--warehouse", "s3://lake/wh", "--request_id", "r-1",
              "--JOB_RUN_ID", "jr_1", "--WORKFLOW_NAME", "wf", "--WORKFLOW_RUN_ID", "wr_1"],
     "clock": "2026-06-01T12:01:00+00:00",  # optional: the job's clock, a fixed UTC instant
     "script": "glue_jobs/normalize_customers.py",  # optional: argv[0] (default: as deployed)
     "die_at": "glue_replay.pipelines.normalize:_merge_latest"}  # optional, see below

``argv`` is what Glue passes after the script's name: the replay arguments and Glue's own
(``--JOB_RUN_ID``, ``--WORKFLOW_NAME``/``--WORKFLOW_RUN_ID``: a job started by a workflow reads
the workflow run's properties with boto3, which finds its endpoint and CA bundle in the usual
AWS environment, e.g. ``AWS_ENDPOINT_URL``, ``AWS_CA_BUNDLE``). ``publish`` runs every installed
pipeline's publisher (``pipeline`` is then ignored). ``die_at`` names a function,
``module:attribute``, that kills the process by SIGKILL when the job calls it, as a lost Glue
worker dies at that point (nothing in the library knows about it); the caller sees the process
end by ``-SIGKILL`` with the results of the invocations before it already written.

Each result is one JSON line on stdout (and appended to ``--results``, flushed, when given)::

    {"index": 0, "pipeline": "customers", "stage": "normalize", "exit_code": 0, "seconds": 7.1}

Everything else the jobs and Spark print goes to stderr, so stdout holds results only. The
driver exits 0 when it ran every invocation (whatever their exit codes), 2 for a bad invocation.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

STAGES = ("ingest", "normalize", "publish")
EXIT_BAD_INVOCATION = 2


class BadInvocationError(Exception):
    """An invocation the driver cannot run (exit 2)."""


class Results(Protocol):
    """Where results go, a line each."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


def _invocations(source: str) -> Iterator[dict[str, Any]]:
    if source == "-":
        for line in sys.stdin:
            if line.strip():
                yield _checked(json.loads(line))
        return
    with Path(source).open(encoding="utf-8") as jobs:
        listed = json.load(jobs)
    if not isinstance(listed, list):
        raise BadInvocationError(f"{source} holds {type(listed).__name__}, not a list")
    yield from [_checked(invocation) for invocation in listed]  # all checked before any runs


def _checked(invocation: Any) -> dict[str, Any]:
    if not isinstance(invocation, dict):
        raise BadInvocationError(f"an invocation is a JSON object, not {invocation!r}")
    unknown = set(invocation) - {"pipeline", "stage", "argv", "clock", "script", "die_at"}
    argv = invocation.get("argv")
    if (
        unknown
        or invocation.get("stage") not in STAGES
        or not isinstance(argv, list)
        or not all(isinstance(a, str) for a in argv)
    ):
        raise BadInvocationError(
            f"bad invocation {invocation!r}: needs stage ({'|'.join(STAGES)}), "
            "argv (a list of strings), pipeline; optional clock, script, die_at"
            + (f"; unknown {sorted(unknown)}" if unknown else "")
        )
    return invocation


def _clock(text: str | None) -> Callable[[], datetime] | None:
    if text is None:
        return None
    instant = datetime.fromisoformat(text)
    instant = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    return lambda: instant


def _armed(die_at: str | None) -> Callable[[], None]:
    """Replace ``module:attribute`` with a SIGKILL; return how to put it back."""
    if die_at is None:
        return lambda: None
    module_name, _, attribute = die_at.partition(":")
    module = importlib.import_module(module_name)
    original = getattr(module, attribute)

    def die(*_: object, **__: object) -> None:
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(module, attribute, die)
    return lambda: setattr(module, attribute, original)


def _warehouse(argv: list[str]) -> str | None:
    for index, argument in enumerate(argv[:-1]):
        if argument == "--warehouse":
            return argv[index + 1]
    return None


def run(
    invocations: Iterator[dict[str, Any]],
    settings: dict[str, str],
    out: Results,
    warehouse: str | None = None,
) -> None:
    """Run each invocation as it comes, in one Spark session: built now for ``warehouse`` when
    it is given, else for the first invocation."""
    from glue_replay import run_ingest_job, run_normalize_job, run_publish_job
    from glue_replay.registry import installed_pipelines
    from glue_replay.runtime import build_spark_session

    pipelines = installed_pipelines()
    spark: SparkSession | None = None
    if warehouse is not None:
        spark = build_spark_session(
            "glue-replay-jobs-driver", extra_settings=settings, warehouse=warehouse
        )
    try:
        for index, invocation in enumerate(invocations):
            stage, name = invocation["stage"], invocation.get("pipeline")
            pipeline = pipelines.get(name) if isinstance(name, str) else None
            if stage != "publish" and pipeline is None:
                raise BadInvocationError(f"no pipeline {name!r} (installed: {sorted(pipelines)})")
            if spark is None:
                spark = build_spark_session(
                    "glue-replay-jobs-driver",
                    extra_settings=settings,
                    warehouse=_warehouse(invocation["argv"]),
                )
            script = "publish_outbox" if stage == "publish" else f"{stage}_{name}"
            argv = [invocation.get("script") or f"glue_jobs/{script}.py", *invocation["argv"]]
            clock = _clock(invocation.get("clock"))
            disarm = _armed(invocation.get("die_at"))
            started = time.monotonic()
            try:
                if stage == "publish":
                    code = run_publish_job(argv, None, spark=spark, clock=clock)
                else:
                    job = run_ingest_job if stage == "ingest" else run_normalize_job
                    assert pipeline is not None
                    code = job(argv, pipeline, spark=spark, clock=clock)
            finally:
                disarm()
            result = {
                "index": index,
                "pipeline": name,
                "stage": stage,
                "exit_code": code,
                "seconds": round(time.monotonic() - started, 1),
            }
            out.write(json.dumps(result) + "\n")
            out.flush()
    finally:
        if spark is not None:
            spark.stop()


class _Tee:
    """Results to stdout and, when asked, to a file, each line flushed at once."""

    def __init__(self, stdout: IO[str], results: IO[str] | None) -> None:
        self.targets = [stdout, *([results] if results is not None else [])]

    def write(self, text: str) -> None:
        for target in self.targets:
            target.write(text)

    def flush(self) -> None:
        for target in self.targets:
            target.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jobs", help="a JSON file listing invocations, or - for JSON lines")
    parser.add_argument("--results", help="also append each result (a JSON line) to this file")
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting"
    )
    parser.add_argument(
        "--warehouse", help="start the Spark session now, for this warehouse (default: lazily)"
    )
    options = parser.parse_args()
    settings = dict(item.split("=", 1) for item in options.conf)
    # stdout carries results only: whatever else writes to fd 1 (the jobs' summaries, the JVM
    # started below, Python workers) goes to stderr from here on.
    stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with ExitStack() as stack:
        results = (
            stack.enter_context(Path(options.results).open("a", encoding="utf-8"))
            if options.results
            else None
        )
        try:
            run(_invocations(options.jobs), settings, _Tee(stdout, results), options.warehouse)
        except BadInvocationError as exc:
            print(f"jobs_driver: {exc}", file=sys.stderr)
            sys.exit(EXIT_BAD_INVOCATION)


if __name__ == "__main__":
    main()
