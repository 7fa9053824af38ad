"""Where Spark comes from: a local Delta-enabled session, or the GlueContext's on AWS Glue."""

from glue_replay.runtime.spark import build_spark_session, running_on_glue

__all__ = ["build_spark_session", "running_on_glue"]
