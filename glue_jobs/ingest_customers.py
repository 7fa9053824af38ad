"""AWS Glue job: the CRM's customers, read in the requested replay mode, into raw/customers.

    python glue_jobs/ingest_customers.py --replay_mode targeted --ids 1,2,3
    aws glue start-job-run --job-name glue-replay-customers-ingest \
        --arguments '{"--replay_mode":"full"}'
"""

import sys

from glue_replay import run_ingest_job
from glue_replay_examples.customers import PIPELINE

if __name__ == "__main__":
    sys.exit(run_ingest_job(sys.argv, PIPELINE))
