"""AWS Glue job: the outbox of every installed pipeline to its sink, in order per record.

    python glue_jobs/publish_outbox.py --sink file:/tmp/published
    aws glue start-job-run --job-name glue-replay-publish \
        --arguments '{"--dead_letters":"retry","--dead_letter_ids":"e-1"}'
"""

import sys

from glue_replay import run_publish_job

if __name__ == "__main__":
    sys.exit(run_publish_job(sys.argv))
