"""Fetch an Apache Kafka broker (3.9.2, KRaft mode) from Maven Central into a local cache, once.

The Kafka sink's tests (tests/test_sinks_kafka.py) start a real broker from these jars: no
Docker, no apache.org download. ``org.apache.kafka:kafka_2.13:3.9.2`` and its compile and runtime
dependencies as its POMs on Maven Central list them (walked breadth-first, nearest version wins,
optional and test scopes and the POMs' exclusions left out), plus ``org.slf4j:slf4j-simple`` as the
logging binding (the Kafka distribution ships slf4j-reload4j; any binding does). ZooKeeper and
Netty are in the closure because ``kafka.Kafka`` still links them in 3.9; a KRaft broker never
opens a ZooKeeper session. 56 jars, 47.6 MB.

Each jar is checked against the SHA-1 pinned below (the one Maven Central publishes beside it),
written under a temporary name and renamed, so a jar in the cache is always whole. The last step
writes ``classpath.txt`` (the jar names, one a line): the broker fixture reads it, and its
presence means the fetch finished. Running again downloads only what is missing.

    python scripts/fetch_kafka.py [DEST]   # default: .cache/kafka (or $GLUE_REPLAY_KAFKA_DIR)
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import urllib.request
from pathlib import Path

MAVEN_CENTRAL = os.environ.get("MAVEN_CENTRAL_URL", "https://repo1.maven.org/maven2")
KAFKA_VERSION = "3.9.2"
#: group:artifact:version and the SHA-1 of its jar, as Maven Central publishes it.
PINNED = """
org.apache.kafka:kafka_2.13:3.9.2 a671d4c2c65740d4a564687d9313ca50be6c10e5
org.apache.kafka:kafka-clients:3.9.2 a06edbaa01458ed2e8cf1be69a18c2f231fda6e0
org.scala-lang:scala-library:2.13.15 ed6f1d58968b16c5f9067d5cac032d952552de58
org.apache.kafka:kafka-server-common:3.9.2 e6fe2cdafd5b2a0b07db07cf692863e0b9335625
org.apache.kafka:kafka-group-coordinator-api:3.9.2 7a69f2be4047f3f55554c403fe78680d54a26480
org.apache.kafka:kafka-group-coordinator:3.9.2 416c1dbcdd1e141707dd89dfe04328a9ce870264
org.apache.kafka:kafka-transaction-coordinator:3.9.2 b001c1f9e45521be560d9a2a9e6d337a1b3a82c9
org.apache.kafka:kafka-metadata:3.9.2 01a266d85e89f1216e1325955942c3037da21d3b
org.apache.kafka:kafka-storage-api:3.9.2 8fa32fee158c900bd2d3d87d09d5838bd5a8813f
org.apache.kafka:kafka-tools-api:3.9.2 d1b40695ba813f5647fe5bcd5960628cd1ef9a77
org.apache.kafka:kafka-raft:3.9.2 5b72980224762aef91766a8fb047a03640905700
org.apache.kafka:kafka-storage:3.9.2 a8a997893c4cb8cc3093c71720b3c33f1e03cade
org.apache.kafka:kafka-server:3.9.2 e3d11d66ce497bfc3572d9e095280b4a893d16fa
net.sourceforge.argparse4j:argparse4j:0.7.0 6f0621d0c3888de39e0f06d01f37ba53a798e657
commons-validator:commons-validator:1.10.1 cdf5c2a69aad509c4db54786f19f1e1ccc471bcf
com.fasterxml.jackson.core:jackson-databind:2.16.2 7fda67535b54d74eebf6157682b835c847410932
com.fasterxml.jackson.module:jackson-module-scala_2.13:2.16.2 c16b5aa1cbcf5efae84cba582591bed8b3356765
com.fasterxml.jackson.dataformat:jackson-dataformat-csv:2.16.2 589c61739a773f581845d3505622007f26b38c2a
com.fasterxml.jackson.datatype:jackson-datatype-jdk8:2.16.2 02c3593b299fcd1a6b8197876f95da82d7aa7340
net.sf.jopt-simple:jopt-simple:5.0.4 4fdac2fbe92dfad86aa6e9301736f6b4342a3f5c
org.bitbucket.b_c:jose4j:0.9.6 357a3836bb5da16f314f3a1e954518e5468cd915
com.yammer.metrics:metrics-core:2.2.0 f82c035cfa786d3cbec362c38c22a5f5b1bc8724
org.scala-lang.modules:scala-collection-compat_2.13:2.10.0 2464528d14329ff2b44bceff918d6c00300adcf4
org.scala-lang.modules:scala-java8-compat_2.13:1.0.2 5b54f60ccf03e41e24c466462a72475ee918c304
org.scala-lang:scala-reflect:2.13.15 355927b10366563a8f1b56c1f34ff376f2f7c8c5
com.typesafe.scala-logging:scala-logging_2.13:3.9.5 d5a0f61168371d8cff1c510f55407aa46bea8366
org.slf4j:slf4j-api:1.7.36 6c62681a2f655b49963a5983b8b0950a6120ae14
commons-io:commons-io:2.14.0 a4c6e1f6c196339473cd2e1b037f0eb97c62755b
io.dropwizard.metrics:metrics-core:4.1.12.1 cb2f351bf4463751201f43bb99865235d5ba07ca
org.apache.zookeeper:zookeeper:3.8.4 6638e37b887b5a279044afbdc9928e19f678eb2e
commons-cli:commons-cli:1.4 c51c00206bb913cd8612b24abd9fa98ae89719b1
com.github.luben:zstd-jni:1.5.6-4 ba9e303e0b5e94cdd0017390d7d8c06f47fd61f7
at.yawk.lz4:lz4-java:1.10.1 f541d7f910fe3d76f38f799c507c48cc81b12ecb
org.xerial.snappy:snappy-java:1.1.10.5 ac605269f3598506196e469f1fb0d7ed5c55059e
org.pcollections:pcollections:4.0.1 059f3bf5fb28c5f5386804dcf129267416b75d7c
com.github.ben-manes.caffeine:caffeine:2.9.3 b162491f768824d21487551873f9b3b374a7fe19
commons-beanutils:commons-beanutils:1.11.0 ac03ea606d13de04c2e4508227680faff151f491
commons-digester:commons-digester:2.1 73a8001e7a54a255eef0f03521ec1805dc738ca0
commons-logging:commons-logging:1.3.5 a3fcc5d3c29b2b03433aa2d2f2d2c1b1638924a1
commons-collections:commons-collections:3.2.2 8ad72fe39fa8c91eaaf12aadb21e0c3661fe26d5
com.fasterxml.jackson.core:jackson-annotations:2.16.2 dfcd11c847ea7276aa073c25f5fe8ee361748d7f
com.fasterxml.jackson.core:jackson-core:2.16.2 b4f588bf070f77b604c645a7d60b71eae2e6ea09
com.thoughtworks.paranamer:paranamer:2.8 619eba74c19ccf1da8ebec97a2d7f8ba05773dd6
org.apache.zookeeper:zookeeper-jute:3.8.4 de7b8a41bbe1ccdfc009de51fa6d160db3ca8025
org.apache.yetus:audience-annotations:0.12.0 e0efa60318229590103e31c69ebdaae56d903644
io.netty:netty-handler:4.1.105.Final 7e997e63d0a445c4b352bcd38474d50f06f2eaf1
io.netty:netty-transport-native-epoll:4.1.105.Final cb57e2ef48fe68ca5a90ffd456c4b36147bdd175
com.google.errorprone:error_prone_annotations:2.10.0 9bc20b94d3ac42489cf6ce1e42509c86f6f861a1
io.netty:netty-common:4.1.105.Final 8438fc1de4c10301bb53ceb49ed8db74bd40cc2c
io.netty:netty-resolver:4.1.105.Final e69687e013ded60f3f9054164e121c2702200711
io.netty:netty-buffer:4.1.105.Final c1c1b4d2c89d2f74c80a2701c124ecfde1ecf067
io.netty:netty-transport:4.1.105.Final 5184e1308ed7d853d7061b4e21e47e8de43a28df
io.netty:netty-transport-native-unix-common:4.1.105.Final 8bb8ab3a8f1e730c6e7d1d1cf8fc24221eacc6cd
io.netty:netty-codec:4.1.105.Final 4733830b4b2b9111e9bf8136691d07b20027cd51
io.netty:netty-transport-classes-epoll:4.1.105.Final e006d3b0cfd5b8133c9fcebfa05d9ae80a721e80
org.slf4j:slf4j-simple:1.7.36 a41f9cfe6faafb2eb83a1c7dd2d0dfd844e2a936
"""  # noqa: E501 - one coordinate and its SHA-1 a line
#: (group, artifact, version, sha1)
ARTIFACTS: list[tuple[str, str, str, str]] = [
    (*coordinate.split(":"), sha1)  # type: ignore[misc]
    for coordinate, sha1 in (line.split() for line in PINNED.strip().splitlines())
]
CLASSPATH_FILE = "classpath.txt"


def _get(url: str, attempts: int = 4) -> bytes:
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return bytes(response.read())
        except OSError as exc:
            if attempt == attempts:
                raise SystemExit(f"fetch_kafka: could not download {url}: {exc}") from exc
            time.sleep(2**attempt)
    raise AssertionError("unreachable")


def jar_name(group: str, artifact: str, version: str) -> str:
    # Two artifacts are named metrics-core (yammer's 2.2.0 and dropwizard's 4.1.12.1): the group
    # keeps their file names apart.
    return f"{group}.{artifact}-{version}.jar"


def fetch(dest: Path) -> list[Path]:
    """Every jar of :data:`ARTIFACTS` in ``dest``, checked; then ``dest/classpath.txt``."""
    dest.mkdir(parents=True, exist_ok=True)
    jars = []
    for group, artifact, version, sha1 in ARTIFACTS:
        jar = dest / jar_name(group, artifact, version)
        jars.append(jar)
        if jar.exists():
            continue
        folder = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}"
        url = f"{folder}/{artifact}-{version}.jar"
        print(f"fetch_kafka: {group}:{artifact}:{version} <- {url}", flush=True)
        body = _get(url)
        actual = hashlib.sha1(body).hexdigest()  # noqa: S324 - Maven Central publishes SHA-1
        if actual != sha1:
            raise SystemExit(f"fetch_kafka: checksum mismatch for {jar.name}: {actual} != {sha1}")
        partial = jar.with_name(jar.name + ".part")
        partial.write_bytes(body)
        partial.rename(jar)
    listing = dest / CLASSPATH_FILE
    partial = listing.with_name(listing.name + ".part")
    partial.write_text("".join(f"{jar.name}\n" for jar in jars))
    partial.rename(listing)
    return jars


if __name__ == "__main__":
    default = os.environ.get("GLUE_REPLAY_KAFKA_DIR", ".cache/kafka")
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(default)
    fetched = fetch(target)
    total = sum(jar.stat().st_size for jar in fetched)
    print(
        f"fetch_kafka: ok, Kafka {KAFKA_VERSION}: {len(fetched)} jars, {total:,} bytes in {target}"
    )
