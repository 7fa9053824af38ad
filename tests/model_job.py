"""Test-only driver for the model-based test: one job of a bundled pipeline, in a process of
its own, that may die by SIGKILL at a chosen point.

    python tests/model_job.py 2026-06-01T14:02:00+00:00 before_merge customers normalize \
        glue_jobs/normalize_customers.py --request_id r-7 --warehouse ... --source_url ...

Arguments: the job's clock (a fixed UTC instant), the kill point, the pipeline, the stage, then
the job's argv. Kill points (nothing in the library knows about them):

- ``none``: run unchanged (the model kills it from outside on a timer, or lets it finish);
- ``second_batch``: ingest dies as its second batch starts (after the first batch's commit);
- ``before_merge``: normalize dies between its outbox commit and the MERGE into normalized;
- ``before_finish``: the job dies after all its writes, as it records its success in the ledger;
- ``after_delivery``: publish dies once its first batch is delivered and dead-lettered, before
  the batch is recorded (ledger, checkpoint).

The stage ``publish`` runs ``run_publish_job`` over both bundled pipelines.

A kill point the run never reaches lets it finish: the model reads the exit code either way.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime
from typing import Any

from glue_replay import run_ingest_job, run_normalize_job, run_publish_job
from glue_replay.pipelines import ingest, normalize, publish
from glue_replay.tables.runs import RunsLedger, RunStatus
from glue_replay_examples import customers, orders

PIPELINES = {"customers": customers.PIPELINE, "orders": orders.PIPELINE}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str) -> None:
    if point == "second_batch":
        original = ingest._ingest_batch
        calls = [0]

        def second(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == 2:
                _die()
            return original(*args, **kwargs)

        ingest._ingest_batch = second  # type: ignore[assignment]
    elif point == "before_merge":
        normalize._merge_latest = lambda *args, **kwargs: _die()  # type: ignore[assignment]
    elif point == "before_finish":
        finish = RunsLedger.finish

        def finish_or_die(self: RunsLedger, run: Any) -> None:
            if run.status is RunStatus.SUCCEEDED:
                _die()
            finish(self, run)

        RunsLedger.finish = finish_or_die  # type: ignore[method-assign]
    elif point == "after_delivery":
        publish._account = lambda *args, **kwargs: _die()  # type: ignore[assignment]
    elif point != "none":
        raise SystemExit(f"unknown kill point {point!r}")


if __name__ == "__main__":
    now = datetime.fromisoformat(sys.argv[1])
    point, pipeline, stage, argv = sys.argv[2], PIPELINES[sys.argv[3]], sys.argv[4], sys.argv[5:]
    _arm(point)
    if stage == "publish":
        sys.exit(run_publish_job(argv, list(PIPELINES.values()), clock=lambda: now))
    run = run_ingest_job if stage == "ingest" else run_normalize_job
    sys.exit(run(argv, pipeline, clock=lambda: now))
