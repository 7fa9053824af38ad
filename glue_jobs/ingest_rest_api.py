"""AWS Glue job: read customers from the REST API in the requested replay mode into raw/customers.

python glue_jobs/ingest_rest_api.py --replay_mode targeted --ids 1,2,3
aws glue start-job-run --job-name ingest_rest_api --arguments '{"--replay_mode":"full"}'
"""

import sys

from glue_replay.jobs import ingest_rest_api_main

if __name__ == "__main__":
    sys.exit(ingest_rest_api_main(sys.argv))
