"""Fetch the JVM artifacts of a local session from Maven Central into a local cache, once.

Spark on AWS Glue 5.1 gets Delta from ``--datalake-formats delta`` and ships a PostgreSQL JDBC
driver; locally we put the same artifacts (io.delta:delta-spark_2.12:3.3.2,
io.delta:delta-storage:3.3.2) and the PostgreSQL driver the JDBC source is tested with
(org.postgresql:postgresql:42.7.14) on Spark's classpath. For a warehouse on S3 (``s3://`` read and
written through Hadoop's S3A, as Glue 5.1 does), the S3A connector matching the Hadoop that
pyspark 3.5.6 bundles (hadoop-client-api 3.3.4): org.apache.hadoop:hadoop-aws:3.3.4 and the AWS
SDK it was built against (com.amazonaws:aws-java-sdk-bundle:1.12.262, ``aws-java-sdk.version``
in hadoop-project 3.3.4's POM; the bundle is ~280 MB). Every jar is checked against the SHA-1
that Maven Central publishes beside it.

``--spark 4.1`` fetches the artifacts of AWS Glue 6.0's Spark line instead, for
`make test-spark4`: Delta io.delta:delta-spark_2.13:4.2.0 and io.delta:delta-storage:4.2.0, and
the S3A connector matching the Hadoop that pyspark 4.1.1 bundles (hadoop-client-api 3.4.2):
org.apache.hadoop:hadoop-aws:3.4.2 and the AWS SDK v2 it was built against
(software.amazon.awssdk:bundle:2.29.52, ``aws-java-sdk-v2.version`` in hadoop-project 3.4.2's
POM; the bundle is ~640 MB). ``DELTA_BY_SPARK_LINE`` and ``S3A_BY_SPARK_LINE`` mirror
``glue_replay.runtime.spark``'s tables of the same names (a test checks that they agree): this
script runs before any venv exists, without pyspark.

    python scripts/fetch_jars.py [--spark 3.5|4.1] [DEST [group:artifact:version ...]]
    # default: --spark 3.5 .cache/jars
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import urllib.request
from pathlib import Path

MAVEN_CENTRAL = os.environ.get("MAVEN_CENTRAL_URL", "https://repo1.maven.org/maven2")
#: Spark line -> (Scala version, Delta version): AWS Glue 5.1's and AWS Glue 6.0's.
DELTA_BY_SPARK_LINE = {"3.5": ("2.12", "3.3.2"), "4.1": ("2.13", "4.2.0")}
#: Spark line -> (hadoop-aws, the AWS SDK bundle it was built against): Hadoop's S3A connector
#: for the Hadoop that line's pyspark bundles (3.3.4 with SDK v1; 3.4.2 with SDK v2).
S3A_BY_SPARK_LINE = {
    "3.5": ("3.3.4", "com.amazonaws:aws-java-sdk-bundle:1.12.262"),
    "4.1": ("3.4.2", "software.amazon.awssdk:bundle:2.29.52"),
}
DEFAULT_SPARK_LINE = "3.5"
#: Fetched beside each line's Delta and S3A artifacts.
ARTIFACTS = [("org.postgresql", "postgresql", "42.7.14")]


def _known(spark_line: str, table: dict[str, tuple[str, str]], what: str) -> tuple[str, str]:
    if spark_line not in table:
        raise SystemExit(
            f"fetch_jars: no {what} artifacts for Spark {spark_line}; known: {', '.join(table)}"
        )
    return table[spark_line]


def delta_artifacts(spark_line: str) -> list[tuple[str, str, str]]:
    """The Delta artifacts of a Spark line: ``"4.1"`` -> delta-spark_2.13, delta-storage 4.2.0."""
    scala, delta = _known(spark_line, DELTA_BY_SPARK_LINE, "Delta")
    return [("io.delta", f"delta-spark_{scala}", delta), ("io.delta", "delta-storage", delta)]


def s3a_artifacts(spark_line: str) -> list[tuple[str, str, str]]:
    """The S3A artifacts of a Spark line: ``"4.1"`` -> hadoop-aws 3.4.2, the SDK v2 bundle."""
    hadoop, sdk = _known(spark_line, S3A_BY_SPARK_LINE, "S3A")
    group, artifact, version = sdk.split(":")
    return [("org.apache.hadoop", "hadoop-aws", hadoop), (group, artifact, version)]


def line_artifacts(spark_line: str) -> list[tuple[str, str, str]]:
    """Everything a local session of a Spark line loads: Delta, the JDBC driver, S3A."""
    return [*delta_artifacts(spark_line), *ARTIFACTS, *s3a_artifacts(spark_line)]


def _get(url: str, attempts: int = 4) -> bytes:
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return bytes(response.read())
        except OSError as exc:
            if attempt == attempts:
                raise SystemExit(f"fetch_jars: could not download {url}: {exc}") from exc
            time.sleep(2**attempt)
    raise AssertionError("unreachable")


def _download(url: str, target: Path, attempts: int = 4) -> str:
    """Stream ``url`` into ``target`` (a jar may be hundreds of MB); return its SHA-1."""
    for attempt in range(1, attempts + 1):
        digest = hashlib.sha1()  # noqa: S324 - Maven Central publishes SHA-1
        try:
            with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            return digest.hexdigest()
        except OSError as exc:
            if attempt == attempts:
                target.unlink(missing_ok=True)
                raise SystemExit(f"fetch_jars: could not download {url}: {exc}") from exc
            time.sleep(2**attempt)
    raise AssertionError("unreachable")


def fetch(dest: Path, artifacts: list[tuple[str, str, str]] | None = None) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    jars = []
    for group, artifact, version in artifacts or line_artifacts(DEFAULT_SPARK_LINE):
        jar = dest / f"{artifact}-{version}.jar"
        jars.append(jar)
        if jar.exists():
            continue
        url = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}/{jar.name}"
        print(f"fetch_jars: {group}:{artifact}:{version} <- {url}", flush=True)
        expected = _get(url + ".sha1").decode().split()[0].strip()
        partial = jar.with_suffix(".part")
        actual = _download(url, partial)
        if actual != expected:
            partial.unlink(missing_ok=True)
            raise SystemExit(
                f"fetch_jars: checksum mismatch for {jar.name}: {actual} != {expected}"
            )
        partial.rename(jar)
    return jars


if __name__ == "__main__":
    argv = sys.argv[1:]
    spark_line = DEFAULT_SPARK_LINE
    if argv[:1] == ["--spark"] and len(argv) > 1:
        spark_line, argv = argv[1], argv[2:]
    target = Path(argv[0]) if argv else Path(".cache/jars")
    coordinates = [tuple(c.split(":")) for c in argv[1:]]
    if any(len(c) != 3 for c in coordinates):
        raise SystemExit("fetch_jars: coordinates are group:artifact:version")
    for path in fetch(target, coordinates or line_artifacts(spark_line)):  # type: ignore[arg-type]
        print(f"fetch_jars: ok {path}")
