"""Starting replays: the ``glue-replay`` CLI, the Lambda handler, ``glue-replay status`` and
``glue-replay runs``.

Nothing here imports Spark at import time: the Lambda has no Spark, and the operator commands
answer without starting a JVM. Only ``glue-replay --target local`` imports the jobs (and Spark),
lazily, to run the stages in-process.

Every command is for one pipeline (one entity): its jobs and workflows, and its own id rule.

- :mod:`~glue_replay.trigger.config`: where the deployment is (pipelines, buckets)
- :mod:`~glue_replay.trigger.start`: validate a request, check for busy jobs, start it on Glue
- :mod:`~glue_replay.trigger.cli`: the ``glue-replay`` console script
- :mod:`~glue_replay.trigger.lambda_handler`: the same, as a Lambda ``handler(event, context)``
- :mod:`~glue_replay.trigger.status`: where a request is, from the runs ledger and the Glue API;
  the ledger as a table (``runs``)
- :mod:`~glue_replay.trigger.ledger`: the runs ledger's tables, read with delta-rs (no JVM)
"""
