"""Test-only driver: a customers normalize job that dies by SIGKILL after its outbox commit.

    python tests/normalize_killed_before_merge.py 2026-06-01T14:02:00+00:00 \
        glue_jobs/normalize_customers.py --request_id bau-1 --warehouse ... --source_url ...

The first argument is the job's clock (a fixed UTC instant), the rest is the job's argv. The
job runs unchanged up to the point between its two writes, where the MERGE would start: there
the process sends itself SIGKILL, as a Glue worker lost at that moment would die. Nothing in the
library knows about this; the tests start it with ``subprocess`` and expect exit ``-SIGKILL``.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime

from glue_replay import run_normalize_job
from glue_replay.pipelines import normalize
from glue_replay_examples.customers import PIPELINE


def _die(*_: object, **__: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    now = datetime.fromisoformat(sys.argv[1])
    normalize._merge_latest = _die  # type: ignore[assignment]  # the kill point, test only
    sys.exit(run_normalize_job(sys.argv[2:], PIPELINE, clock=lambda: now))
