"""AWS Glue job: raw/customers into normalized/customers (MERGE) and customer.* outbox events.

    python glue_jobs/normalize_customers.py --replay_mode since --date 2026-01-01
    aws glue start-job-run --job-name glue-replay-customers-normalize \
        --arguments '{"--replay_mode":"targeted","--ids":"1,2,3"}'
"""

import sys

from glue_replay import run_normalize_job
from glue_replay_examples.customers import PIPELINE

if __name__ == "__main__":
    sys.exit(run_normalize_job(sys.argv, PIPELINE))
