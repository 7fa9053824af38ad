"""AWS Glue job: raw/orders into normalized/orders (MERGE) and order.* outbox events.

    python glue_jobs/normalize_orders.py --replay_mode since --date 2026-01-01
    aws glue start-job-run --job-name glue-replay-orders-normalize \
        --arguments '{"--replay_mode":"targeted","--ids":"1001,1002"}'
"""

import sys

from glue_replay import run_normalize_job
from glue_replay_examples.orders import PIPELINE

if __name__ == "__main__":
    sys.exit(run_normalize_job(sys.argv, PIPELINE))
