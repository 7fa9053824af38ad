"""`make bench-ingest`: both ingest benchmarks in one run, each in its own Spark driver.

1. ``scripts/bench_rest.py``: a REST full backfill from the sample API (latency per request),
   fetched in parallel on the executors vs one request at a time, also with 429s;
2. ``scripts/bench_jdbc.py``: a JDBC full read of 1,000,000 orders from a throwaway PostgreSQL,
   partitioned vs one partition.

Each prints its own table (records/s and the ratio, measured in the same run); the results of
a run on the reference machine are in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent


def main() -> int:
    for script in ("bench_rest.py", "bench_jdbc.py"):
        print(f"\n=== {script} ===", flush=True)
        code = subprocess.run([sys.executable, str(SCRIPTS / script)], check=False).returncode
        if code != 0:
            print(f"bench_ingest: {script} exited with {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
