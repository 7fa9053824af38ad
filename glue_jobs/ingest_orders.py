"""AWS Glue job: the shop's orders, read from PostgreSQL in the requested replay mode, into
raw/orders.

    GLUE_REPLAY_JDBC_USER=... GLUE_REPLAY_JDBC_PASSWORD=... python glue_jobs/ingest_orders.py \
        --jdbc_url jdbc:postgresql://127.0.0.1:5432/shop --replay_mode targeted --ids 1001,1002
    aws glue start-job-run --job-name glue-replay-orders-ingest \
        --arguments '{"--replay_mode":"full"}'
"""

import sys

from glue_replay import run_ingest_job
from glue_replay_examples.orders import PIPELINE

if __name__ == "__main__":
    sys.exit(run_ingest_job(sys.argv, PIPELINE))
