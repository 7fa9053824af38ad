"""AWS Glue job: normalize raw/customers into normalized/customers and append outbox events.

    python glue_jobs/normalize.py --replay_mode since --date 2026-01-01
    aws glue start-job-run --job-name normalize \\
        --arguments '{"--replay_mode":"targeted","--ids":"1,2,3"}'
"""

import sys

from glue_replay.jobs import normalize_main

if __name__ == "__main__":
    sys.exit(normalize_main(sys.argv))
