"""The one module that knows where Spark comes from, and the only one that imports awsglue.

On AWS Glue 5.1 (``--datalake-formats delta``) Spark, Delta and ``awsglue`` are provided: the
session is the GlueContext's. Locally we build a ``local[*]`` session with the same Delta
artifacts (``io.delta:delta-spark_2.12:3.3.2``, ``io.delta:delta-storage:3.3.2``) taken from the
cache that ``make setup`` fills (``scripts/fetch_jars.py``), or, failing that, resolved by Spark
from Maven Central. With pyspark 4.1 installed (AWS Glue 6.0's line, ``make test-spark4``), it
takes Glue 6.0's instead (``io.delta:delta-spark_2.13:4.2.0``, ``io.delta:delta-storage:4.2.0``,
cached in ``.cache/jars-spark4``): see :data:`DELTA_BY_SPARK_LINE`. The PostgreSQL JDBC driver
(``org.postgresql:postgresql:42.7.14``) of the JDBC source joins them the same way (Glue ships
its own driver, or takes one by ``--extra-jars``).

**A warehouse on S3.** On Glue 5.1, ``s3://`` is read and written through Hadoop's S3A file
system with the job role's credentials; the GlueContext's session is used as it is and nothing
below applies. A local session does the same: it puts the S3A connector of the Hadoop that its
pyspark bundles on the classpath and maps both ``s3://`` and ``s3a://`` to ``S3AFileSystem``
(:data:`S3A_BY_SPARK_LINE`). For pyspark 3.5.6 (Hadoop 3.3.4) that is
``org.apache.hadoop:hadoop-aws:3.3.4`` and the AWS SDK v1 it was built against,
``com.amazonaws:aws-java-sdk-bundle:1.12.262``, cached by ``make setup``; for pyspark 4.1.1
(Hadoop 3.4.2), ``org.apache.hadoop:hadoop-aws:3.4.2`` and the AWS SDK v2 it was built against,
``software.amazon.awssdk:bundle:2.29.52``, cached in ``.cache/jars-spark4``. It honours the
standard AWS environment, as boto3 and the AWS CLI do:

- ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL`` (an S3-compatible endpoint: MinIO,
  LocalStack, moto): ``fs.s3a.endpoint``, with path-style access, and TLS as the URL's scheme
  says (unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true``);
- ``AWS_REGION``, else ``AWS_DEFAULT_REGION``: ``fs.s3a.endpoint.region``;
- credentials: S3A's own keys if set (``fs.s3a.access.key``, ``.secret.key``, ``.session.token``),
  then the AWS SDK's default chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
  ``AWS_SESSION_TOKEN``, web identity, ``AWS_PROFILE`` and ``~/.aws``, container and instance
  credentials): SDK v1's ``DefaultAWSCredentialsProviderChain`` with S3A 3.3.4, SDK v2's
  ``DefaultCredentialsProvider`` with S3A 3.4.2. S3A's own default lists read the environment
  but no profile.

Credentials are never copied into the Spark or Hadoop configuration: the SDK reads them where
they are, so no secret reaches a log line, an exception or a printed configuration. A session
whose warehouse is on S3 refuses to start without its line's cached S3A jars (``make setup``);
any other session only warns that ``s3://`` paths will not work.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyspark
from pyspark.sql import SparkSession

from glue_replay.errors import GlueReplayError

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class DeltaArtifacts:
    """The Delta artifacts of one Spark line, and the folder under the checkout caching them."""

    scala: str
    delta: str
    cache: str

    @property
    def packages(self) -> tuple[str, str]:
        return (
            f"io.delta:delta-spark_{self.scala}:{self.delta}",
            f"io.delta:delta-storage:{self.delta}",
        )

    @property
    def jars(self) -> tuple[str, str]:
        return (f"delta-spark_{self.scala}-{self.delta}.jar", f"delta-storage-{self.delta}.jar")


#: The Delta artifacts of a local session, by the installed pyspark's major.minor: AWS Glue 5.1's
#: line (Spark 3.5.6) and AWS Glue 6.0's (Spark 4.1.1). scripts/fetch_jars.py mirrors this table.
DELTA_BY_SPARK_LINE = {
    "3.5": DeltaArtifacts(scala="2.12", delta="3.3.2", cache=".cache/jars"),
    "4.1": DeltaArtifacts(scala="2.13", delta="4.2.0", cache=".cache/jars-spark4"),
}


def delta_artifacts(spark_version: str = pyspark.__version__) -> DeltaArtifacts:
    """The Delta artifacts for a pyspark version: ``"4.1.1"`` -> delta-spark_2.13 4.2.0."""
    return _by_spark_line(DELTA_BY_SPARK_LINE, spark_version, "Delta")


def _by_spark_line(table: Mapping[str, _T], spark_version: str, what: str) -> _T:
    line = ".".join(spark_version.split(".")[:2])
    if line not in table:
        raise GlueReplayError(
            f"no {what} artifacts for pyspark {spark_version}: "
            f"the Spark lines known are {', '.join(table)}"
        )
    return table[line]


#: JDBC drivers of a local session, beside the Delta jars (scripts/fetch_jars.py fetches them).
JDBC_DRIVER_PACKAGES = ("org.postgresql:postgresql:42.7.14",)
JDBC_DRIVER_JARS = ("postgresql-42.7.14.jar",)
JARS_DIR_ENV = "GLUE_REPLAY_JARS_DIR"


@dataclass(frozen=True)
class S3aArtifacts:
    """Hadoop's S3A connector for one Spark line: hadoop-aws of the Hadoop that line's pyspark
    bundles, the AWS SDK bundle (``group:artifact:version``) that hadoop-aws was built against,
    and the credential providers S3A is given, in order."""

    hadoop: str
    sdk: str
    credential_providers: tuple[str, ...]

    @property
    def packages(self) -> tuple[str, str]:
        return (f"org.apache.hadoop:hadoop-aws:{self.hadoop}", self.sdk)

    @property
    def jars(self) -> tuple[str, str]:
        _, artifact, version = self.sdk.split(":")
        return (f"hadoop-aws-{self.hadoop}.jar", f"{artifact}-{version}.jar")


#: S3A's own configuration keys (``fs.s3a.access.key``, ``.secret.key``, ``.session.token``)
#: first, as S3A's default list has them, on both lines.
S3A_KEY_PROVIDERS = (
    "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
    "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
)
#: Hadoop's S3A connector by the installed pyspark's major.minor, cached beside the line's Delta
#: jars (scripts/fetch_jars.py mirrors this table): pyspark 3.5.6 bundles Hadoop 3.3.4
#: (hadoop-client-api), whose S3A is built on the AWS SDK v1 (``aws-java-sdk.version`` in
#: hadoop-project 3.3.4's POM); pyspark 4.1.1 bundles Hadoop 3.4.2, whose S3A is built on the
#: AWS SDK v2 (``aws-java-sdk-v2.version`` in hadoop-project 3.4.2's POM). A hadoop-aws of
#: another Hadoop does not load (3.3.4's reads 3.4.2's ``60s``-style durations as numbers).
#: After S3A's keys, each SDK's whole default chain instead of its environment provider alone.
#: S3A 3.4 takes SDK v2 providers by their static ``create()``; DefaultCredentialsProvider's is
#: one JVM-wide instance, which an S3A file system's ``close()`` closes for every other one (web
#: identity then fails with "Connection pool shut down"; environment keys and profiles do not).
#: Spark and Delta take S3A file systems from Hadoop's cache, which closes them as the JVM exits.
S3A_BY_SPARK_LINE = {
    "3.5": S3aArtifacts(
        hadoop="3.3.4",
        sdk="com.amazonaws:aws-java-sdk-bundle:1.12.262",
        credential_providers=(
            *S3A_KEY_PROVIDERS,
            "com.amazonaws.auth.DefaultAWSCredentialsProviderChain",
        ),
    ),
    "4.1": S3aArtifacts(
        hadoop="3.4.2",
        sdk="software.amazon.awssdk:bundle:2.29.52",
        credential_providers=(
            *S3A_KEY_PROVIDERS,
            "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
        ),
    ),
}


def s3a_artifacts(spark_version: str = pyspark.__version__) -> S3aArtifacts:
    """The S3A connector for a pyspark version: ``"4.1.1"`` -> hadoop-aws 3.4.2, SDK v2."""
    return _by_spark_line(S3A_BY_SPARK_LINE, spark_version, "S3A")


S3A_FILE_SYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"
#: A local session's S3 file systems, as Glue has them: ``s3://`` and ``s3a://`` through S3A.
S3A_SETTINGS = {
    "spark.hadoop.fs.s3.impl": S3A_FILE_SYSTEM,
    "spark.hadoop.fs.s3a.impl": S3A_FILE_SYSTEM,
}

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
    app_name: str = "glue-replay",
    extra_settings: dict[str, str] | None = None,
    *,
    warehouse: str | None = None,
) -> SparkSession:
    """The session for a job: the GlueContext's on Glue, else a local Delta-enabled one.

    ``warehouse`` is where the job's tables are: a local session for an ``s3://`` warehouse
    refuses to start (:class:`GlueReplayError`) when the S3A jars are not cached.
    """
    started = time.monotonic()
    if running_on_glue():
        spark = _glue_session()
    else:
        spark = _local_session(app_name, extra_settings, warehouse)
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)
    log.info("spark session ready in %.1fs", time.monotonic() - started)
    return spark


def _glue_session() -> SparkSession:
    from awsglue.context import GlueContext
    from pyspark import SparkContext  # pyspark.context on 3.5, pyspark.core.context on 4

    glue_context: Any = GlueContext(SparkContext.getOrCreate())
    session: SparkSession = glue_context.spark_session
    return session


def _local_session(
    app_name: str, extra_settings: dict[str, str] | None, warehouse: str | None
) -> SparkSession:
    # Python hands timestamps to Spark in the process's local zone: make that UTC as well.
    os.environ["TZ"] = "UTC"
    time.tzset()
    builder = SparkSession.builder.master(os.environ.get("GLUE_REPLAY_SPARK_MASTER", "local[*]"))
    builder = builder.appName(app_name)
    # Python workers run this interpreter (the one glue_replay is installed in), not whatever
    # `python3` comes first on the PATH: sources fetch on the executors.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {**LOCAL_SETTINGS, **s3a_settings(), **(extra_settings or {})}
    for key, value in settings.items():
        builder = builder.config(key, value)
    jars = find_delta_jars() or []
    packages: list[str] = []
    if not jars:
        log.warning("Delta jars not cached (%s); resolving them from Maven Central", _fetch_hint())
        packages += delta_artifacts().packages
    for package, name in zip(JDBC_DRIVER_PACKAGES, JDBC_DRIVER_JARS, strict=True):
        cached = jars[0].parent / name if jars else None
        if cached is not None and cached.is_file():
            jars.append(cached)
        else:
            log.warning("%s not cached (%s); resolving it from Maven Central", name, _fetch_hint())
            packages.append(package)
    s3a_classpath = _s3a_classpath(jars[0].parent if jars else None, warehouse, settings)
    for key, value in s3a_classpath.items():
        builder = builder.config(key, value)
    if jars:
        builder = builder.config("spark.jars", ",".join(str(jar) for jar in jars))
    if packages:
        builder = builder.config("spark.jars.packages", ",".join(packages))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def s3a_settings(
    environ: Mapping[str, str] | None = None, spark_version: str = pyspark.__version__
) -> dict[str, str]:
    """A local session's S3A settings: :data:`S3A_SETTINGS`, the credential providers of the
    pyspark line's S3A (:data:`S3A_BY_SPARK_LINE`), and what the standard AWS environment
    (``environ``, default ``os.environ``) says about the endpoint and the region. Never a
    credential: the AWS SDK reads those from where they are.

        s3a_settings({"AWS_ENDPOINT_URL": "https://127.0.0.1:9000", "AWS_REGION": "eu-west-1"})
        -> {..., "spark.hadoop.fs.s3a.endpoint": "https://127.0.0.1:9000",
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": "true",
            "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1"}
    """
    env = os.environ if environ is None else environ
    providers = s3a_artifacts(spark_version).credential_providers
    settings = {**S3A_SETTINGS, "spark.hadoop.fs.s3a.aws.credentials.provider": ",".join(providers)}
    ignore_endpoints = env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true"
    endpoint = (
        ""
        if ignore_endpoints
        else (env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "").strip()
    )
    if endpoint:
        settings["spark.hadoop.fs.s3a.endpoint"] = endpoint
        settings["spark.hadoop.fs.s3a.path.style.access"] = "true"
        secure = not endpoint.lower().startswith("http://")
        settings["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(secure).lower()
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
    if region:
        settings["spark.hadoop.fs.s3a.endpoint.region"] = region
    return settings


def _s3a_classpath(
    folder: Path | None, warehouse: str | None, settings: Mapping[str, str]
) -> dict[str, str]:
    """The installed line's cached S3A jars in ``folder`` (the Delta jars' own) as the JVMs'
    extra class path, as Glue has them: on the class path from the start, and not in
    ``spark.jars``, which would copy the SDK bundle (280 MB; 640 MB for SDK v2) into every
    session's temporary folder. Without them, a warning, or an error when ``warehouse`` is on S3."""
    names = s3a_artifacts().jars
    jars = [folder / name for name in names] if folder is not None else []
    if jars and all(jar.is_file() for jar in jars):
        return {
            key: os.pathsep.join([*map(str, jars), *filter(None, [settings.get(key)])])
            for key in ("spark.driver.extraClassPath", "spark.executor.extraClassPath")
        }
    where = str(folder) if folder is not None else "the jar cache"
    if warehouse is not None and warehouse.lower().startswith(("s3://", "s3a://")):
        raise GlueReplayError(
            f"the warehouse {warehouse} is on S3 but {where} does not hold "
            f"{' and '.join(names)} (Hadoop's S3A file system); {_fetch_hint()}"
        )
    log.warning(
        "%s not in %s (%s): s3:// and s3a:// paths will not work in this session",
        " and ".join(names),
        where,
        _fetch_hint(),
    )
    return {}


def _fetch_hint(spark_version: str = pyspark.__version__) -> str:
    """How to fill the jar cache for the installed pyspark line (the Makefile's targets)."""
    line = ".".join(spark_version.split(".")[:2])
    if line == "3.5":
        return "run `make setup`"
    fetch = f"python scripts/fetch_jars.py --spark {line} <jar folder>"
    return f"run `{fetch}`, as `make test-spark4` does"


def find_delta_jars() -> list[Path] | None:
    """The cached Delta jars of the installed pyspark's line: ``$GLUE_REPLAY_JARS_DIR``, else its
    cache (``.cache/jars`` for Spark 3.5) in the working directory or the checkout."""
    artifacts = delta_artifacts()
    candidates = [
        os.environ.get(JARS_DIR_ENV),
        str(Path.cwd() / artifacts.cache),
        str(Path(__file__).resolve().parents[3] / artifacts.cache),
    ]
    for folder in filter(None, candidates):
        jars = [Path(folder) / name for name in artifacts.jars]
        if all(jar.is_file() for jar in jars):
            return jars
    if os.environ.get(JARS_DIR_ENV):
        raise GlueReplayError(
            f"{JARS_DIR_ENV}={os.environ[JARS_DIR_ENV]} does not hold {', '.join(artifacts.jars)}; "
            f"{_fetch_hint()} or unset it"
        )
    return None
