"""What the Spark UI calls a stage run's queries: each phase of a run labels the jobs it starts.

Spark names a job, and the SQL query it runs for, after the thread's job description when one is
set, else after the line of code that started it. A run labels its phases with
:func:`labelled`, so the Spark UI (and Glue's Spark UI and event logs) shows
``normalize invoices bau-2026-11-30: MERGE into normalized`` rather than ``collect at
runs.py:153``, and a profile can add up a run's queries by phase::

    with labelled(spark, "normalize invoices bau-1: MERGE into normalized"):
        merge.execute()      # its jobs and SQL executions carry that description

The description is a property of the calling thread (threads it starts inherit it), restored when
the block exits, so phases nest and a session shared by threads keeps each thread's own label.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

#: The local property Spark reads a job's (and a SQL execution's) description from.
JOB_DESCRIPTION = "spark.job.description"


@contextmanager
def labelled(spark: SparkSession, description: str) -> Iterator[None]:
    """Describe the jobs the block starts as ``description``; the previous label comes back after.

    with labelled(spark, "a"): with labelled(spark, "b"): ...   -> jobs "b", then "a" again
    """
    context = spark.sparkContext
    before = context.getLocalProperty(JOB_DESCRIPTION)
    context.setLocalProperty(JOB_DESCRIPTION, description)
    try:
        yield
    finally:
        context.setLocalProperty(JOB_DESCRIPTION, before)  # type: ignore[arg-type]
