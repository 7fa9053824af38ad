"""Fetch the JVM artifacts of a local session from Maven Central into a local cache, once.

Spark on AWS Glue 5.1 gets Delta from ``--datalake-formats delta`` and ships a PostgreSQL JDBC
driver; locally we put the same artifacts (io.delta:delta-spark_2.12:3.3.2,
io.delta:delta-storage:3.3.2) and the PostgreSQL driver the JDBC source is tested with
(org.postgresql:postgresql:42.7.14) on Spark's classpath. Every jar is checked against the SHA-1
that Maven Central publishes beside it.

    python scripts/fetch_jars.py [DEST [group:artifact:version ...]]   # default: .cache/jars
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import urllib.request
from pathlib import Path

MAVEN_CENTRAL = os.environ.get("MAVEN_CENTRAL_URL", "https://repo1.maven.org/maven2")
ARTIFACTS = [
    ("io.delta", "delta-spark_2.12", "3.3.2"),
    ("io.delta", "delta-storage", "3.3.2"),
    ("org.postgresql", "postgresql", "42.7.14"),
]


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


def fetch(dest: Path, artifacts: list[tuple[str, str, str]] | None = None) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    jars = []
    for group, artifact, version in artifacts or ARTIFACTS:
        jar = dest / f"{artifact}-{version}.jar"
        jars.append(jar)
        if jar.exists():
            continue
        url = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}/{jar.name}"
        print(f"fetch_jars: {group}:{artifact}:{version} <- {url}", flush=True)
        body = _get(url)
        expected = _get(url + ".sha1").decode().split()[0].strip()
        actual = hashlib.sha1(body).hexdigest()  # noqa: S324 - Maven Central publishes SHA-1
        if actual != expected:
            raise SystemExit(
                f"fetch_jars: checksum mismatch for {jar.name}: {actual} != {expected}"
            )
        partial = jar.with_suffix(".part")
        partial.write_bytes(body)
        partial.rename(jar)
    return jars


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".cache/jars")
    coordinates = [tuple(c.split(":")) for c in sys.argv[2:]]
    if any(len(c) != 3 for c in coordinates):
        raise SystemExit("fetch_jars: coordinates are group:artifact:version")
    for path in fetch(target, coordinates or None):  # type: ignore[arg-type]
        print(f"fetch_jars: ok {path}")
