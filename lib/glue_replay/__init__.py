"""glue-replay: replayable AWS Glue PySpark jobs, ingest -> normalize -> Delta outbox.

Importing the package starts no JVM: request parsing and validation run before Spark exists.
"""

__version__ = "0.1.0"
