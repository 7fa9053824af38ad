"""The one module that knows where Spark comes from, and the only one that imports awsglue.

On AWS Glue 5.1 (``--datalake-formats delta``) Spark, Delta and ``awsglue`` are provided: the
session is the GlueContext's. Locally we build a ``local[*]`` session with the same Delta
artifacts (``io.delta:delta-spark_2.12:3.3.2``, ``io.delta:delta-storage:3.3.2``) taken from the
cache that ``make setup`` fills (``scripts/fetch_jars.py``), or, failing that, resolved by Spark
from Maven Central. The PostgreSQL JDBC driver (``org.postgresql:postgresql:42.7.14``) of the
JDBC source joins them the same way (Glue ships its own driver, or takes one by ``--extra-jars``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from glue_replay.errors import GlueReplayError

log = logging.getLogger(__name__)

DELTA_PACKAGES = ("io.delta:delta-spark_2.12:3.3.2", "io.delta:delta-storage:3.3.2")
DELTA_JARS = ("delta-spark_2.12-3.3.2.jar", "delta-storage-3.3.2.jar")
#: JDBC drivers of a local session, beside the Delta jars (scripts/fetch_jars.py fetches them).
JDBC_DRIVER_PACKAGES = ("org.postgresql:postgresql:42.7.14",)
JDBC_DRIVER_JARS = ("postgresql-42.7.14.jar",)
JARS_DIR_ENV = "GLUE_REPLAY_JARS_DIR"

#: Settings every session gets, on Glue too: UTC everywhere, and Spark 3's strict datetime parser
#: (our transforms never rely on the legacy one).
SESSION_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
}

#: Static settings for a local session: Delta's extension and catalog, and sizes for a laptop.
LOCAL_SETTINGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.driver.memory": "2g",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}


def running_on_glue() -> bool:
    """True inside an AWS Glue job run (the ``awsglue`` package is only there)."""
    return importlib.util.find_spec("awsglue") is not None


def build_spark_session(
    app_name: str = "glue-replay", extra_settings: dict[str, str] | None = None
) -> SparkSession:
    """The session for a job: the GlueContext's on Glue, else a local Delta-enabled one."""
    started = time.monotonic()
    spark = _glue_session() if running_on_glue() else _local_session(app_name, extra_settings)
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)
    log.info("spark session ready in %.1fs", time.monotonic() - started)
    return spark


def _glue_session() -> SparkSession:
    from awsglue.context import GlueContext
    from pyspark.context import SparkContext

    glue_context: Any = GlueContext(SparkContext.getOrCreate())
    session: SparkSession = glue_context.spark_session
    return session


def _local_session(app_name: str, extra_settings: dict[str, str] | None) -> SparkSession:
    # Python hands timestamps to Spark in the process's local zone: make that UTC as well.
    os.environ["TZ"] = "UTC"
    time.tzset()
    builder = SparkSession.builder.master(os.environ.get("GLUE_REPLAY_SPARK_MASTER", "local[*]"))
    builder = builder.appName(app_name)
    # Python workers run this interpreter (the one glue_replay is installed in), not whatever
    # `python3` comes first on the PATH: sources fetch on the executors.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {**LOCAL_SETTINGS, **(extra_settings or {})}
    for key, value in settings.items():
        builder = builder.config(key, value)
    jars = find_delta_jars() or []
    packages: list[str] = []
    if not jars:
        log.warning("Delta jars not cached (run `make setup`); resolving them from Maven Central")
        packages += DELTA_PACKAGES
    for package, name in zip(JDBC_DRIVER_PACKAGES, JDBC_DRIVER_JARS, strict=True):
        cached = jars[0].parent / name if jars else None
        if cached is not None and cached.is_file():
            jars.append(cached)
        else:
            log.warning("%s not cached (run `make setup`); resolving it from Maven Central", name)
            packages.append(package)
    if jars:
        builder = builder.config("spark.jars", ",".join(str(jar) for jar in jars))
    if packages:
        builder = builder.config("spark.jars.packages", ",".join(packages))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def find_delta_jars() -> list[Path] | None:
    """The cached Delta jars: ``$GLUE_REPLAY_JARS_DIR``, ``./.cache/jars`` or the checkout's."""
    candidates = [
        os.environ.get(JARS_DIR_ENV),
        str(Path.cwd() / ".cache" / "jars"),
        str(Path(__file__).resolve().parents[3] / ".cache" / "jars"),
    ]
    for folder in filter(None, candidates):
        jars = [Path(folder) / name for name in DELTA_JARS]
        if all(jar.is_file() for jar in jars):
            return jars
    if os.environ.get(JARS_DIR_ENV):
        raise GlueReplayError(
            f"{JARS_DIR_ENV}={os.environ[JARS_DIR_ENV]} does not hold {', '.join(DELTA_JARS)}; "
            "run `make setup` or unset it"
        )
    return None
